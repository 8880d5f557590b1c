"""Agents, their states, and who gets the next call.

Theory of operation
-------------------
An agent is ``offline`` until logged in, then ``available``. Offering a call reserves the agent
(``reserved``: their phone rings, nobody else may ring it). If they answer they are ``busy``; when
the call ends they are in ``wrap_up`` (notes, CRM) until they say they are done or the wrap-up
timeout passes. An agent who does not answer or rejects (486/603, timeout) goes back to
``available`` at the end of the line of idle agents, and the caller's own session remembers to skip
them. Several unanswered rings in a row log the agent out (an abandoned desk must not swallow every
caller's first ring; contact centres call this "ring, no answer" protection).

The state machine is a table of ``(state, event) -> state``, as in h11: a pair not in the table is
an ``InvalidTransition`` for the API to answer with an error, never a crash. ``pick`` chooses the
longest-idle available agent who speaks the language and has the skill, which is the usual fair
rule and spreads the load.

Times are UNIX seconds passed in; nothing here reads a clock.
"""

from __future__ import annotations

import enum
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class AgentState(enum.Enum):
    OFFLINE = "offline"
    AVAILABLE = "available"
    RESERVED = "reserved"  # ringing for one caller
    BUSY = "busy"
    WRAP_UP = "wrap_up"


class AgentEvent(enum.Enum):
    LOGIN = "login"
    LOGOUT = "logout"
    RING = "ring"
    ANSWERED = "answered"
    NO_ANSWER = "no_answer"
    REJECTED = "rejected"
    CANCELLED = "cancelled"  # the caller left (or was served elsewhere) while the agent's phone rang
    HANGUP = "hangup"
    WRAP_UP_DONE = "wrap_up_done"
    WRAP_UP_TIMEOUT = "wrap_up_timeout"


S, E = AgentState, AgentEvent
TRANSITIONS: dict[tuple[AgentState, AgentEvent], AgentState] = {
    (S.OFFLINE, E.LOGIN): S.AVAILABLE,
    (S.AVAILABLE, E.LOGIN): S.AVAILABLE,  # idempotent: a second click in the agent's UI
    (S.AVAILABLE, E.LOGOUT): S.OFFLINE,
    (S.WRAP_UP, E.LOGOUT): S.OFFLINE,
    (S.RESERVED, E.LOGOUT): S.OFFLINE,  # the shell cancels the ring
    (S.OFFLINE, E.LOGOUT): S.OFFLINE,
    (S.AVAILABLE, E.RING): S.RESERVED,
    (S.RESERVED, E.ANSWERED): S.BUSY,
    (S.RESERVED, E.NO_ANSWER): S.AVAILABLE,
    (S.RESERVED, E.REJECTED): S.AVAILABLE,
    (S.RESERVED, E.CANCELLED): S.AVAILABLE,
    (S.BUSY, E.HANGUP): S.WRAP_UP,
    (S.WRAP_UP, E.WRAP_UP_DONE): S.AVAILABLE,
    (S.WRAP_UP, E.WRAP_UP_TIMEOUT): S.AVAILABLE,
}


class InvalidTransition(Exception):
    def __init__(self, agent: str, state: AgentState, event: AgentEvent) -> None:
        super().__init__(f"agent {agent}: cannot {event.value} while {state.value}")
        self.agent, self.state, self.event = agent, state, event


class AgentConfigError(Exception):
    """agents.yaml is wrong; the message names the file, the agent and the field."""


def primary_language(tag: str) -> str:
    """'de-DE' and 'de' both mean German for routing."""
    return tag.split("-")[0].strip().lower()


@dataclass
class Agent:
    id: str
    name: str
    sip_uri: str
    languages: frozenset[str]
    skills: frozenset[str]
    state: AgentState = AgentState.OFFLINE
    since: float = 0.0  # when the current state began; for AVAILABLE, how long they have been idle
    calls_handled: int = 0
    handle_times: deque[float] = field(default_factory=lambda: deque(maxlen=50))
    answered_at: float | None = None
    missed_in_row: int = 0
    # The state was set by another worker process (see ivr.handoff.board): its timers are theirs.
    elsewhere: bool = False

    def speaks(self, language: str) -> bool:
        return primary_language(language) in self.languages

    def serves(self, language: str, skill: str | None) -> bool:
        return self.speaks(language) and (skill is None or skill in self.skills)


@dataclass(frozen=True)
class PoolConfig:
    wrap_up_timeout: float = 60.0  # seconds; then the agent is available again without a click
    max_missed: int = 3  # unanswered rings in a row before the agent is logged out


@dataclass(frozen=True)
class Change:
    """A state change, for logs, metrics and the estimator (``handle_time`` on hangup)."""

    agent: str
    old: AgentState
    new: AgentState
    event: AgentEvent
    at: float
    handle_time: float | None = None


class AgentPool:
    def __init__(self, agents: Iterable[Agent] = (), config: PoolConfig | None = None) -> None:
        self.config = config or PoolConfig()
        self._agents: dict[str, Agent] = {}
        self.on_change: Callable[[Change], None] | None = None  # every applied event, e.g. to publish it
        for agent in agents:
            self.add(agent)

    def add(self, agent: Agent) -> None:
        if agent.id in self._agents:
            raise ValueError(f"agent {agent.id!r} exists already")
        self._agents[agent.id] = agent

    def __iter__(self) -> Iterator[Agent]:
        return iter(self._agents.values())

    def __len__(self) -> int:
        return len(self._agents)

    def get(self, agent_id: str) -> Agent:
        return self._agents[agent_id]

    def pick(self, language: str, skill: str | None, exclude: Iterable[str] = ()) -> Agent | None:
        """The longest-idle available agent for this language/skill, skipping ``exclude`` (ids)."""
        skipped = set(exclude)
        free = [
            a
            for a in self._agents.values()
            if a.state is AgentState.AVAILABLE and a.id not in skipped and a.serves(language, skill)
        ]
        return min(free, key=lambda a: (a.since, a.id), default=None)

    def working(self, language: str, skill: str | None) -> int:
        """Agents logged in who could take this caller (the service capacity the estimate uses)."""
        return sum(
            1
            for a in self._agents.values()
            if a.state is not AgentState.OFFLINE and a.serves(language, skill)
        )

    def available(self, language: str, skill: str | None) -> int:
        return sum(
            1 for a in self._agents.values() if a.state is AgentState.AVAILABLE and a.serves(language, skill)
        )

    def apply(self, agent_id: str, event: AgentEvent, now: float) -> Change:
        """Apply one event; raises ``InvalidTransition`` for a pair not in the table."""
        agent = self._agents[agent_id]
        new = TRANSITIONS.get((agent.state, event))
        if new is None:
            raise InvalidTransition(agent_id, agent.state, event)
        old = agent.state
        handle_time = None
        if event is E.ANSWERED:
            agent.answered_at = now
            agent.missed_in_row = 0
        elif event in (E.NO_ANSWER, E.REJECTED):
            agent.missed_in_row += 1
            if agent.missed_in_row >= self.config.max_missed:
                new = S.OFFLINE
        elif event in (E.WRAP_UP_DONE, E.WRAP_UP_TIMEOUT) and agent.answered_at is not None:
            # Handle time runs from answer to the end of wrap-up: both keep the agent from the next caller.
            handle_time = max(0.0, now - agent.answered_at)
            agent.handle_times.append(handle_time)
            agent.calls_handled += 1
            agent.answered_at = None
        elif event is E.LOGOUT and old is S.WRAP_UP and agent.answered_at is not None:
            handle_time = max(0.0, now - agent.answered_at)
            agent.handle_times.append(handle_time)
            agent.calls_handled += 1
            agent.answered_at = None
        elif event is E.LOGIN and old is S.OFFLINE:
            agent.missed_in_row = 0
        if new is not old or event is not E.LOGIN:
            agent.state = new
            agent.since = now
        agent.elsewhere = False
        change = Change(agent_id, old, new, event, now, handle_time)
        if self.on_change is not None:
            self.on_change(change)
        return change

    def adopt(self, agent_id: str, state: AgentState, since: float) -> None:
        """Take a state another worker process set (no event, no handle time: those are theirs)."""
        agent = self._agents[agent_id]
        agent.state, agent.since, agent.elsewhere = state, since, True
        if state is not S.BUSY and state is not S.WRAP_UP:
            agent.answered_at = None

    def tick(self, now: float) -> list[Change]:
        """Time-driven transitions: wrap-up that ran out."""
        changes = []
        for agent in self._agents.values():
            if agent.elsewhere:
                continue  # the worker that set the wrap-up ends it
            if agent.state is S.WRAP_UP and now >= agent.since + self.config.wrap_up_timeout:
                changes.append(self.apply(agent.id, E.WRAP_UP_TIMEOUT, now))
        return changes

    def get_timer(self) -> float | None:
        """When ``tick`` next has something to do."""
        deadlines = [
            a.since + self.config.wrap_up_timeout
            for a in self._agents.values()
            if a.state is S.WRAP_UP and not a.elsewhere
        ]
        return min(deadlines, default=None)


# -- agents.yaml ----------------------------------------------------------------------------------

_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_URI = re.compile(r"^sips?:[^\s@]+@[^\s@]+$|^sips?:[^\s@]+$", re.IGNORECASE)


def load_agents(path: str | Path, now: float = 0.0) -> AgentPool:
    """Read agents.yaml into a pool; agents start ``available`` unless ``logged_in: false``."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise AgentConfigError(f"{where}: cannot read: {exc.strerror or exc}") from exc
    return parse_agents(text, where, now)


def parse_agents(text: str, where: str = "agents.yaml", now: float = 0.0) -> AgentPool:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AgentConfigError(f"{where}: not valid YAML: {exc}") from exc
    items = data.get("agents") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise AgentConfigError(f"{where}: expected a list of agents (under 'agents:')")
    pool = AgentPool()
    uris: set[str] = set()
    for index, item in enumerate(items, 1):
        agent = _agent(item, f"{where}: agent {index}")
        if agent.id in {a.id for a in pool}:
            raise AgentConfigError(f"{where}: agent {index}: id {agent.id!r} is used twice")
        if agent.sip_uri.lower() in uris:
            raise AgentConfigError(f"{where}: agent {index}: uri {agent.sip_uri!r} is used twice")
        uris.add(agent.sip_uri.lower())
        logged_in = item.get("logged_in", True)
        if not isinstance(logged_in, bool):
            raise AgentConfigError(f"{where}: agent {index}: 'logged_in' must be true or false")
        agent.state = AgentState.AVAILABLE if logged_in else AgentState.OFFLINE
        agent.since = now
        pool.add(agent)
    return pool


def _agent(item: Any, label: str) -> Agent:
    if not isinstance(item, dict):
        raise AgentConfigError(f"{label}: expected a mapping with name, uri, languages, skills")
    unknown = set(item) - {"id", "name", "uri", "languages", "skills", "logged_in"}
    if unknown:
        raise AgentConfigError(f"{label}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    name = item.get("name")
    if not isinstance(name, str) or not name.strip():
        raise AgentConfigError(f"{label}: 'name' is missing")
    label = f"{label} ({name})"
    uri = item.get("uri")
    if not isinstance(uri, str) or not _URI.match(uri.strip()):
        raise AgentConfigError(f"{label}: 'uri' must be a sip: or sips: URI, e.g. sip:anna@10.0.0.5")
    agent_id = item.get("id", re.sub(r"[^A-Za-z0-9_.-]+", "-", name.strip().lower()))
    if not isinstance(agent_id, str) or not _ID.match(agent_id):
        raise AgentConfigError(f"{label}: 'id' must be letters, digits, '.', '_' or '-'")
    languages = _words(item.get("languages"), f"{label}: 'languages'", required=True)
    skills = _words(item.get("skills", []), f"{label}: 'skills'", required=False)
    return Agent(
        id=agent_id,
        name=name.strip(),
        sip_uri=uri.strip(),
        languages=frozenset(primary_language(x) for x in languages),
        skills=frozenset(skills),
    )


def _words(value: Any, label: str, required: bool) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise AgentConfigError(f"{label} must be a list of words")
    if required and not value:
        raise AgentConfigError(f"{label} must name at least one")
    return [v.strip() for v in value]
