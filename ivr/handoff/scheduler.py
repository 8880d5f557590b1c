"""The callback scheduler: who serves whom next, retries, final outcomes, and promise tracking.

Pure: given ``now`` (UNIX seconds), the virtual queue, the agent pool and the store's records, it
returns decisions; the SIP shell carries them out and commits each through the store, whose
compare-and-set makes a stale decision fail harmlessly (see ``ivr.store.base``).

Serving order. A free agent takes the first entry of the virtual queue they can serve (language and
skill), live caller or callback alike, so a callback keeps its caller's place. A callback is
eligible when its record is pending, due (``next_attempt_at``, ``window_start``), inside business
hours (no calls outside them, whatever the queue says), and its number still passes the number
policy (patterns may have been tightened since booking). Agents are offered in longest-idle order.

Agent-first dialing. For a callback the shell claims it (``store.claim``), rings the agent, plays
the whisper, and only when the agent is on the line commits ``agent_answered`` and dials the
customer; ``after_customer`` turns the customer leg's result into the next state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ivr.flow.hours import HoursLike, NoOpenTime, is_open, next_open
from ivr.handoff.agents import AgentPool, AgentState
from ivr.handoff.numbers import NumberPolicy, NumberRejected, approve
from ivr.handoff.queue import Entry, VirtualQueue
from ivr.store.base import ACTIVE_STATES, CallbackRecord, CallbackState

CustomerResult = Literal["answered", "no_answer", "busy", "rejected", "machine", "invalid_number", "failed"]
# Results after which calling again cannot help: the number does not exist or is not reachable.
FINAL_RESULTS = frozenset({"invalid_number"})


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    spacing: float = 600.0  # seconds between customer attempts

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.spacing < 0:
            raise ValueError("attempts >= 1 and spacing >= 0")


@dataclass(frozen=True)
class Serve:
    """Connect ``agent`` with ``entry``: bridge a live caller, or claim and dial a callback."""

    agent: str
    entry: str
    kind: Literal["live", "callback", "remote"]
    callback_id: int | None = None
    version: int | None = None  # the callback's version, for the claim's compare-and-set


@dataclass(frozen=True)
class Decision:
    """The store transition to commit: ``store.transition(id, event, now, owner=..., changes=...)``."""

    event: Literal["customer_answered", "retry", "give_up", "agent_missed"]
    changes: Mapping[str, Any] = field(default_factory=dict)
    detail: str = ""


PromiseStatus = Literal["on_track", "at_risk", "overdue", "kept", "late", "not_reached", "cancelled"]


@dataclass(frozen=True)
class PromiseStats:
    kept: int
    late: int
    not_reached: int
    open_on_track: int
    open_at_risk: int
    open_overdue: int

    @property
    def share_kept(self) -> float | None:
        done = self.kept + self.late
        return self.kept / done if done else None


def _aware(now: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(now, dt.UTC)


class Scheduler:
    def __init__(
        self,
        policy: RetryPolicy,
        hours: HoursLike | None = None,
        numbers: NumberPolicy | None = None,
        at_risk_margin: float = 300.0,
    ) -> None:
        self.policy = policy
        self.hours = hours
        self.numbers = numbers
        self.at_risk_margin = at_risk_margin

    # -- who next ---------------------------------------------------------------------------------

    def dialable(self, record: CallbackRecord, now: float) -> bool:
        """May this callback be dialed now? (state, due time, business hours, number policy)"""
        if record.state is not CallbackState.PENDING:
            return False
        if record.next_attempt_at > now or record.window_start > now:
            return False
        if not is_open(self.hours, _aware(now)):
            return False
        if self.numbers is not None:
            try:
                approve(record.number, self.numbers)
            except NumberRejected:
                return False
        return True

    def plan(
        self, now: float, queue: VirtualQueue, pool: AgentPool, callbacks: Mapping[int, CallbackRecord]
    ) -> list[Serve]:
        """One ``Serve`` per free agent who has someone to serve; no entry or agent twice."""
        taken: set[str] = set()
        out: list[Serve] = []

        def eligible(entry: Entry) -> bool:
            if entry.key in taken:
                return False
            if entry.kind != "callback":
                return True  # a caller on hold (here or on another worker) is served by their own wait
            record = callbacks.get(entry.callback_id or -1)
            return record is not None and self.dialable(record, now)

        free = sorted((a for a in pool if a.state is AgentState.AVAILABLE), key=lambda a: (a.since, a.id))
        for agent in free:
            entry = queue.next_for(agent, now, eligible)
            if entry is None:
                continue
            taken.add(entry.key)
            if entry.kind != "callback":
                out.append(Serve(agent.id, entry.key, entry.kind))
            else:
                record = callbacks[entry.callback_id or -1]
                out.append(Serve(agent.id, entry.key, "callback", record.id, record.version))
        return out

    def sync_queue(self, queue: VirtualQueue, records: Iterable[CallbackRecord]) -> None:
        """Make the queue's callback entries match the store (at start-up and after changes)."""
        seen = set()
        for record in records:
            key = f"callback:{record.id}"
            if record.state in ACTIVE_STATES and record.state is not CallbackState.VERIFY:
                seen.add(key)
                queue.add_callback(
                    record.id,
                    record.queue_entered_at,
                    record.language,
                    record.skill,
                    max(record.next_attempt_at, record.window_start),
                )
            else:
                queue.leave(key)
        for entry in list(queue):
            if entry.kind == "callback" and entry.key not in seen:
                queue.leave(entry.key)

    # -- outcomes ---------------------------------------------------------------------------------

    def next_attempt_time(self, now: float) -> float:
        """After the spacing, and inside business hours."""
        at = _aware(now + self.policy.spacing)
        try:
            return next_open(self.hours, at).timestamp()
        except NoOpenTime:
            return at.timestamp()  # no hours configured ahead: the dialer's hours check still holds

    def after_customer(self, record: CallbackRecord, result: CustomerResult, now: float) -> Decision:
        """The customer leg of attempt ``record.attempts`` ended with ``result``."""
        if result == "answered":
            return Decision(
                "customer_answered", {"connected_at": now, "last_outcome": "connected"}, "connected"
            )
        if result in FINAL_RESULTS:
            return Decision("give_up", {"last_outcome": result}, f"{result}: not retried")
        if record.attempts >= record.max_attempts:
            return Decision(
                "give_up", {"last_outcome": result}, f"{result} on the last attempt ({record.attempts})"
            )
        # A machine counts as not reached: the caller asked for a person, not for a message.
        at = self.next_attempt_time(now)
        return Decision(
            "retry",
            {"last_outcome": result, "next_attempt_at": at, "agent": None},
            f"{result} on attempt {record.attempts}; next at {_aware(at).isoformat()}",
        )

    def after_agent_missed(self, record: CallbackRecord, now: float, reason: str) -> Decision:
        """The agent did not take the callback: back in line at once, no customer attempt used."""
        return Decision(
            "agent_missed", {"next_attempt_at": now, "agent": None}, f"agent {record.agent}: {reason}"
        )

    # -- promises ---------------------------------------------------------------------------------

    def promise_status(
        self, record: CallbackRecord, now: float, expected_wait: float | None
    ) -> PromiseStatus:
        """Where a promise stands; ``expected_wait`` is the estimate for this callback (None: no agent)."""
        if record.state is CallbackState.CONNECTED:
            return "kept" if (record.connected_at or now) <= record.promised_by else "late"
        if record.state is CallbackState.FAILED:
            return "not_reached"
        if record.state is CallbackState.CANCELLED:
            return "cancelled"
        if now > record.promised_by:
            return "overdue"
        if expected_wait is None or now + expected_wait + self.at_risk_margin > record.promised_by:
            return "at_risk"
        return "on_track"

    def promise_stats(
        self, records: Iterable[CallbackRecord], now: float, expected_wait: float | None
    ) -> PromiseStats:
        counts = {
            "kept": 0,
            "late": 0,
            "not_reached": 0,
            "on_track": 0,
            "at_risk": 0,
            "overdue": 0,
            "cancelled": 0,
        }
        for record in records:
            counts[self.promise_status(record, now, expected_wait)] += 1
        return PromiseStats(
            counts["kept"],
            counts["late"],
            counts["not_reached"],
            counts["on_track"],
            counts["at_risk"],
            counts["overdue"],
        )
