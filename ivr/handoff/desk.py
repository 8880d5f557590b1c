"""What the three jobs of the handoff share: its configuration, its state and the few moves they
all make (say, ask, estimate, claim and ring an agent, run a store call off the event loop).

``ivr.handoff.service.Handoff`` puts the jobs together: the live transfer (``live_transfer``), the
booking dialogue (``callback_booking``) and the callback dialer (``callback_dialer``), each a
``Desk`` of its own module.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from ivr.handoff.agents import Agent, AgentEvent, AgentPool
from ivr.handoff.asking import Answer, Dialogue, ask_by_voice
from ivr.handoff.board import AgentBoard
from ivr.handoff.estimator import HandleTimes, WaitEstimate, estimate_wait
from ivr.handoff.ports import Clock, Dialer, Frames, Leg, NotAnswered, SystemClock, Voice
from ivr.handoff.queue import RemoteWaiter, VirtualQueue
from ivr.logs import get_logger
from ivr.media.prompts import silence, tone
from ivr.store.base import CallRecord, Store
from ivr.store.thread import StoreThread
from ivr.wording.handoff import say
from ivr.wording.numbers import digits_apart

T = TypeVar("T")
log = get_logger(component="handoff")


@dataclass
class HandoffConfig:
    ring_timeout: float = 20.0  # an agent's phone rings this long before the next agent is tried
    max_agent_tries: int = 3
    customer_uri: str = "sip:{number}@127.0.0.1:5060"  # where callbacks are dialled (trunk/PBX)
    customer_timeout: float = 30.0
    lease: float = 120.0  # a claimed callback belongs to this process this long (renewed)
    dial_interval: float = 1.0
    announce_every: float = 30.0  # waiting callers hear position and estimate this often
    wait_limit: float = 600.0  # beyond this expected wait, the callback is offered again
    retry_spacing: float = 600.0  # between attempts on a customer who did not answer
    timezone: str = "Europe/Berlin"
    default_country: str = "49"
    owner: str = field(default_factory=lambda: f"ivr-{os.getpid()}-{int(SystemClock().now())}")
    run: str = ""  # this start of the server, shared by its worker processes ("" = owner)


def hold_music() -> Frames:
    """A soft two-tone pattern: the caller hears that the line is alive."""
    return np.concatenate([tone(440, 300, 0.08), tone(554, 300, 0.08), silence(1400)])


def context_headers(call_id: str, caller: str, context: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What the IVR learned, for softphones and CRM screen-pops (and the whisper)."""
    payload = {"call_id": call_id, "caller": caller, **{k: v for k, v in context.items() if _plain(v)}}
    body = json.dumps(payload, ensure_ascii=True, separators=(",", ":"), default=str)[:900]
    # RFC 7433 User-to-User: a short hex reference the receiving system can look up.
    return [("X-IVR-Context", body), ("User-to-User", call_id.encode()[:64].hex() + ";encoding=hex")]


def _plain(value: object) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


# What an agent wants to hear first, in this order; the whisper stays a few seconds long.
WHISPER_FACTS = ("intent", "transcript", "postcode", "order_number", "digits", "last")


def facts_text(context: Mapping[str, Any], language: str, limit: int = 3) -> str:
    facts = [
        f"{key.replace('_', ' ')} {context[key]}"
        for key in WHISPER_FACTS
        if _plain(context.get(key)) and str(context.get(key, "")).strip() and len(str(context[key])) <= 60
    ]
    return ". ".join(facts[:limit]) or say("no_details", language)


def summary_text(caller: str, context: Mapping[str, Any], language: str) -> str:
    spoken = digits_apart(caller) if caller.lstrip("+").isdigit() else caller
    return say("whisper", language, caller=spoken, facts=facts_text(context, language))


class Desk:
    """The handoff's state (agents, the line, promises kept and waits told) and its common moves."""

    def __init__(
        self,
        pool: AgentPool,
        store: Store,
        prompts: Voice,
        config: HandoffConfig | None = None,
        *,
        executor: Executor | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.pool = pool
        self.store = store
        self.prompts = prompts
        self.config = config or HandoffConfig()
        self.queue = VirtualQueue()
        self.handle_times = HandleTimes()
        self.clock: Clock = clock or SystemClock()
        self.dialer: Dialer | None = None  # set once the engine exists (it needs our handlers)
        # One thread owns all store calls: SQLite connections belong to a thread, and commits
        # (an fsync each) then never block the event loop nor race each other.
        self.store_thread = StoreThread(executor)
        # Several worker processes agree on the agents through the store (see board.py).
        run = self.config.run or self.config.owner
        self.board = AgentBoard(pool, store, self.store_thread, self.config.owner, run)
        self._entered: dict[str, float] = {}  # call id -> when the caller joined the line
        self._busy: set[int] = set()  # callbacks being served by this process
        self.served_callbacks = 0
        self.on_connected: Callable[[float], None] | None = None  # seconds to a human, for metrics
        self.on_waited: Callable[[float, float], None] | None = None  # (announced, actual wait)
        # With several workers: the callers on hold at the others, so that one line runs across
        # all of them (order of service, positions and estimates); see ivr.ops.live_view.
        self.remote_waiting: Callable[[], Awaitable[list[RemoteWaiter]]] | None = None
        # call id -> (announced wait, actual wait or None); taken by the call record at the end.
        self.waits: dict[str, tuple[float, float | None]] = {}

    # -- helpers ------------------------------------------------------------------------------

    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Store calls fsync (a few ms): off the event loop, on the store's thread."""
        return await self.store_thread.run(fn, *args, **kwargs)

    async def _say(
        self, call: Leg, key: str, language: str, interruptible: bool = True, **values: Any
    ) -> None:
        text = say(key, language, **values)
        call.log.info("say", text=text)
        await call.play(await self.prompts.text(text, language), interruptible=interruptible)

    async def _ask_key(self, call: Leg, key: str, language: str, timeout: float = 6.0, **values: Any) -> str:
        call.flush_keys()
        await self._say(call, key, language, **values)
        return await call.collect_digits(1, first_timeout=timeout, terminator=None)

    async def _ask(
        self,
        call: Leg,
        key: str,
        language: str,
        dialogue: Dialogue | None,
        *,
        extra: Sequence[str] = (),
        **values: Any,
    ) -> Answer:
        """One question: by key, and by voice too when ``dialogue`` can hear the caller."""
        if dialogue is None:
            digit = await self._ask_key(call, key, language, **values)
            return Answer(digit, heard=bool(digit))
        call.flush_keys()
        text = say(key, language, speech=True, **values)
        return await ask_by_voice(dialogue, text, key, language, extra=extra)

    def _estimate(self, language: str, skill: str | None, ahead: int) -> WaitEstimate:
        return estimate_wait(
            ahead,
            self.pool.working(language, skill),
            self.pool.available(language, skill),
            self.handle_times.mean(skill),
        )

    def _record_hangup(self, agent: Agent, skill: str | None) -> None:
        change = self.pool.apply(agent.id, AgentEvent.HANGUP, self.clock.now())
        if change.handle_time is not None:
            self.handle_times.observe(skill, change.handle_time)

    async def _claim(self, agent: Agent) -> bool:
        """Reserve ``agent`` on the agent board before ringing; False if another worker has them."""
        if await self.board.claim(agent.id, self.clock.now()):
            return True
        log.info("agent taken by another worker", agent=agent.id)
        return False

    async def _ring(self, agent: Agent, headers: list[tuple[str, str]]) -> Leg | None:
        """Ring a claimed agent; None when they did not answer (and they are skipped for this caller)."""
        assert self.dialer is not None
        self.pool.apply(agent.id, AgentEvent.RING, self.clock.now())
        try:
            answered = await self.dialer.dial(
                agent.sip_uri, headers=headers, timeout=self.config.ring_timeout
            )
        except NotAnswered as failure:
            event = AgentEvent.NO_ANSWER if failure.status in (408, 480, 487) else AgentEvent.REJECTED
            self.pool.apply(agent.id, event, self.clock.now())
            log.info("agent did not answer", agent=agent.id, status=failure.status, reason=failure.reason)
            return None
        self.pool.apply(agent.id, AgentEvent.ANSWERED, self.clock.now())
        return answered

    async def record_call(self, record: CallRecord) -> None:
        await self._db(self.store.record_call, record)
