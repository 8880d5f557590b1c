"""The virtual queue: live callers on hold and booked callbacks, in one line.

Order is the time a caller entered the queue, and nothing else. A caller who waits and then takes a
callback keeps their entry time (``to_callback``), so the callback is served before everyone who
came later and never before anyone who was already waiting when they came. A callback booked
without waiting (straight from the menu) enters at its booking time. Ties keep arrival order.

An entry competes with the entries for the same agents: same language, same skill. That is the
line an agent of that kind serves; "callers ahead" for the estimate counts only those. (Agents with
several skills serve several lines; the estimate treats the lines as independent, which errs on the
long side when such agents help out. An honest over-estimate, never an under-estimate.)

Callbacks that may not be dialed yet (a chosen window later, or a retry spacing) keep their place
but do not count as ahead of anyone until they are due: a "tomorrow morning" booking does not
lengthen today's wait.

Waiting callers are told their position and estimate every ``announce_every`` seconds, and offered
the callback again when the expected wait exceeds ``offer_callback_over`` (the flow's limit), at most
every ``reoffer_every`` seconds. The queue is pure: the shell asks ``announcements(now, ...)`` when
``get_timer()`` says, and plays them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from ivr.handoff.agents import Agent, primary_language
from ivr.handoff.estimator import WaitEstimate
from ivr.wording.handoff import say_place_in_line

# "remote": a live caller waiting on another worker process (--workers); served there, but in the
# one line with everyone else, so callers are served in order across workers and told so.
EntryKind = Literal["live", "callback", "remote"]


@dataclass(frozen=True)
class RemoteWaiter:
    key: str
    entered_at: float
    language: str
    skill: str | None


@dataclass
class Entry:
    key: str  # the call id of a live caller, "callback:<id>" for a callback
    kind: EntryKind
    entered_at: float
    language: str
    skill: str | None
    seq: int
    callback_id: int | None = None
    not_before: float = 0.0  # callbacks: not dialed before this (window start, retry spacing)
    next_announce_at: float = float("inf")
    offered_at: float | None = None
    first_estimate: WaitEstimate | None = None  # what the caller heard first (for the CDR)
    skip_agents: set[str] = field(default_factory=set)  # agents who did not answer for this caller

    @property
    def line(self) -> tuple[str, str | None]:
        return primary_language(self.language), self.skill

    def sort_key(self) -> tuple[float, int]:
        return self.entered_at, self.seq


@dataclass(frozen=True)
class QueueConfig:
    announce_every: float = 60.0
    offer_callback_over: float = 600.0  # seconds of expected wait before the callback is offered again
    reoffer_every: float = 300.0


@dataclass(frozen=True)
class Announcement:
    key: str
    position: int  # 1 = next
    estimate: WaitEstimate
    offer_callback: bool

    def text(self, language: str) -> str:
        return say_place_in_line(self.position, self.estimate.speak(language), self.estimate.known, language)


class VirtualQueue:
    def __init__(self, config: QueueConfig | None = None) -> None:
        self.config = config or QueueConfig()
        self._entries: dict[str, Entry] = {}
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self._entries.values(), key=Entry.sort_key))

    def get(self, key: str) -> Entry | None:
        return self._entries.get(key)

    def join(self, key: str, now: float, language: str, skill: str | None) -> Entry:
        """A live caller starts waiting (after the first announcement, which the flow plays)."""
        if key in self._entries:
            raise ValueError(f"{key} is in the queue already")
        entry = Entry(key, "live", now, language, skill, next(self._seq))
        entry.next_announce_at = now + self.config.announce_every
        self._entries[key] = entry
        return entry

    def add_callback(
        self, callback_id: int, entered_at: float, language: str, skill: str | None, not_before: float = 0.0
    ) -> Entry:
        """A booked callback (at booking, or when loading the store after a restart)."""
        key = f"callback:{callback_id}"
        existing = self._entries.get(key)
        if existing is not None:
            # A second booking from the same number: the store kept the earlier place; so do we.
            existing.entered_at = min(existing.entered_at, entered_at)
            existing.not_before = not_before
            existing.language, existing.skill = language, skill
            return existing
        entry = Entry(key, "callback", entered_at, language, skill, next(self._seq), callback_id, not_before)
        self._entries[key] = entry
        return entry

    def to_callback(self, key: str, callback_id: int, not_before: float = 0.0) -> Entry:
        """A waiting caller took a callback: same place in line, now as a callback."""
        live = self._entries.pop(key)
        entry = self.add_callback(callback_id, live.entered_at, live.language, live.skill, not_before)
        entry.seq = min(entry.seq, live.seq)
        entry.first_estimate = live.first_estimate
        return entry

    def sync_remote(self, waiting: Iterable[RemoteWaiter]) -> None:
        """Make the entries of callers waiting on other workers match what those last published."""
        seen = set()
        for waiter in waiting:
            if waiter.key in self._entries and self._entries[waiter.key].kind != "remote":
                continue  # our own caller (published before it moved here: never, but harmless)
            seen.add(waiter.key)
            if waiter.key not in self._entries:
                self._entries[waiter.key] = Entry(
                    waiter.key, "remote", waiter.entered_at, waiter.language, waiter.skill, next(self._seq)
                )
        for entry in list(self._entries.values()):
            if entry.kind == "remote" and entry.key not in seen:
                del self._entries[entry.key]

    def leave(self, key: str) -> Entry | None:
        """Served, hung up, or a callback finished/cancelled."""
        return self._entries.pop(key, None)

    def ahead(self, key: str, now: float) -> int:
        """Entries before ``key`` in its line that could be served now."""
        me = self._entries[key]
        mine = me.sort_key()
        return sum(
            1
            for e in self._entries.values()
            if e is not me and e.line == me.line and e.sort_key() < mine and e.not_before <= now
        )

    def position(self, key: str, now: float) -> int:
        return self.ahead(key, now) + 1

    def line_length(self, language: str, skill: str | None, now: float) -> int:
        """How many are waiting in a line (what a new caller would have ahead of them)."""
        line = (primary_language(language), skill)
        return sum(1 for e in self._entries.values() if e.line == line and e.not_before <= now)

    def next_for(
        self, agent: Agent, now: float, eligible: Callable[[Entry], bool] | None = None
    ) -> Entry | None:
        """The first entry this agent can serve now (language and skill), in line order."""
        for entry in self:
            if entry.not_before > now or agent.id in entry.skip_agents:
                continue
            if not agent.serves(entry.language, entry.skill):
                continue
            if eligible is None or eligible(entry):
                return entry
        return None

    def announcements(self, now: float, estimate: Callable[[Entry, int], WaitEstimate]) -> list[Announcement]:
        """Due re-announcements for live callers; ``estimate(entry, ahead)`` gives the wait."""
        out = []
        for entry in self:
            if entry.kind != "live" or entry.next_announce_at > now:
                continue
            ahead = self.ahead(entry.key, now)
            est = estimate(entry, ahead)
            if entry.first_estimate is None:
                entry.first_estimate = est
            long_wait = not est.known or est.seconds > self.config.offer_callback_over
            offer = long_wait and (
                entry.offered_at is None or now - entry.offered_at >= self.config.reoffer_every
            )
            if offer:
                entry.offered_at = now
            entry.next_announce_at = now + self.config.announce_every
            out.append(Announcement(entry.key, ahead + 1, est, offer))
        return out

    def announced(self, key: str, now: float, estimate: WaitEstimate, offered: bool) -> None:
        """The flow announced on its own (on joining): restart the interval from here."""
        entry = self._entries[key]
        entry.next_announce_at = now + self.config.announce_every
        if entry.first_estimate is None:
            entry.first_estimate = estimate
        if offered:
            entry.offered_at = now

    def get_timer(self) -> float | None:
        times = [e.next_announce_at for e in self._entries.values() if e.kind == "live"]
        return min(times, default=None)
