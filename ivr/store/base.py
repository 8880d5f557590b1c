"""The store interface and the callback state machine.

Callback states
---------------
::

    pending ──claim──▶ dialing_agent ──agent_answered──▶ dialing_customer ──customer_answered──▶ connected
       ▲                 │  agent_missed / lease lost        │  no_answer, busy, machine: retry ─▶ pending
       │                 └────────────▶ pending              │  attempts used up ──────────────▶ failed
       └──────────── operator retry ◀── failed / verify      │  lease lost (crash): pending/failed/verify
    pending / verify ──cancel──▶ cancelled

Every change is one transaction that first checks the expected state, owner and version
(compare-and-set). If another worker or a recovery moved the callback meanwhile, the change fails
with ``StaleState`` and the caller of the store must drop the legs it holds.

The exactly-once rule (what a crash can and cannot do)
-----------------------------------------------------
Placing a call is a side effect outside the database, so it cannot be in the same transaction. The
rule is *write ahead, dial once, never re-dial an attempt*:

1. ``claim`` commits ``pending -> dialing_agent`` with an owner id and a lease (expiry time). Only
   after the commit may the owner ring the agent.
2. ``agent_answered`` commits ``dialing_agent -> dialing_customer`` and increments ``attempts`` in
   the same transaction. Only after that commit may the owner dial the customer, once, for that
   attempt number, and only while its lease is valid (renew it while legs ring).
3. The result commits ``connected`` (customer answered and bridged), or a retry/failure.

After a crash (``recover``), any callback in a dialing state whose lease expired is resolved
without dialing anything:

- ``dialing_agent``: the customer was never dialed (step 2 not committed), so the callback goes
  back to ``pending`` at once with no attempt used. An agent phone may have rung for nothing.
- ``dialing_customer``: the customer may have been rung, may even have answered before the crash
  cut the bridge. The attempt counts (it was counted in step 2). By default the callback is
  retried after the normal spacing (``failed`` if that was the last attempt): a cut-off call is
  better followed by a call back than by silence. With ``unknown_leg="verify"`` it goes to
  ``verify`` instead, for an operator to decide (``ivr callbacks retry|cancel``).

Guarantees: a booked callback (``book`` returned) is never lost; no attempt number is dialed
twice; a connected callback is never dialed again; each callback reaches one terminal state once.
Not guaranteed: that an agent phone never rings twice for one callback (step 1 may be repeated),
nor that a customer never gets a second call after a crash in step 2/3 (that is a new attempt,
counted, within the retry policy). A worker paused longer than its lease could still dial after a
recovery; leases are therefore many times longer than the gap between commit and INVITE.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol


class StoreError(Exception):
    """The store cannot do its job (disk full, locked too long, corrupt): take the graceful path."""


class StaleState(StoreError):
    """The compare-and-set failed: the callback is no longer in the state this change expected."""


class CallbackState(enum.Enum):
    PENDING = "pending"
    DIALING_AGENT = "dialing_agent"
    DIALING_CUSTOMER = "dialing_customer"
    CONNECTED = "connected"
    FAILED = "failed"
    CANCELLED = "cancelled"
    VERIFY = "verify"


C = CallbackState
ACTIVE_STATES = frozenset({C.PENDING, C.DIALING_AGENT, C.DIALING_CUSTOMER, C.VERIFY})
TERMINAL_STATES = frozenset({C.CONNECTED, C.FAILED, C.CANCELLED})

# (from, event) -> to. Events name what happened; the store refuses anything else.
TRANSITIONS: dict[tuple[CallbackState, str], CallbackState] = {
    (C.PENDING, "claim"): C.DIALING_AGENT,
    (C.DIALING_AGENT, "agent_answered"): C.DIALING_CUSTOMER,
    (C.DIALING_AGENT, "agent_missed"): C.PENDING,
    (C.DIALING_AGENT, "lease_expired"): C.PENDING,
    (C.DIALING_CUSTOMER, "customer_answered"): C.CONNECTED,
    (C.DIALING_CUSTOMER, "retry"): C.PENDING,
    (C.DIALING_CUSTOMER, "give_up"): C.FAILED,
    (C.DIALING_CUSTOMER, "lease_expired"): C.PENDING,
    (C.DIALING_CUSTOMER, "lease_expired_final"): C.FAILED,
    (C.DIALING_CUSTOMER, "lease_expired_verify"): C.VERIFY,
    (C.PENDING, "cancel"): C.CANCELLED,
    (C.VERIFY, "cancel"): C.CANCELLED,
    (C.PENDING, "operator_retry"): C.PENDING,
    (C.FAILED, "operator_retry"): C.PENDING,
    (C.VERIFY, "operator_retry"): C.PENDING,
    (C.PENDING, "rebook"): C.PENDING,
    (C.PENDING, "reschedule"): C.PENDING,
}


@dataclass(frozen=True)
class CallbackRecord:
    id: int
    number: str  # E.164, approved by ivr.handoff.numbers
    language: str
    context: Mapping[str, Any]
    created_at: float
    queue_entered_at: float  # the caller's place in line (virtual hold)
    window_start: float  # not before (business hours / chosen window)
    promised_by: float  # the deadline the caller heard
    state: CallbackState
    attempts: int  # customer dials started (attempt numbers used)
    max_attempts: int
    next_attempt_at: float
    last_outcome: str | None
    agent: str | None
    connected_at: float | None
    owner: str | None
    lease_until: float | None
    version: int
    skill: str | None = None
    promise_text: str = ""
    flow: str = ""
    retry_spacing: float | None = None  # the flow's spacing between attempts; None: the server's


@dataclass(frozen=True)
class CallbackEvent:
    callback_id: int
    at: float
    old: CallbackState | None
    new: CallbackState
    event: str
    detail: str


@dataclass(frozen=True)
class Booking:
    """What ``book`` needs; ``number`` must come from ``ivr.handoff.numbers.approve``."""

    number: str
    language: str
    queue_entered_at: float
    window_start: float
    promised_by: float
    max_attempts: int
    skill: str | None = None
    context: Mapping[str, Any] = field(default_factory=dict)
    promise_text: str = ""
    flow: str = ""
    retry_spacing: float | None = None  # seconds between customer attempts; None: the server's


@dataclass(frozen=True)
class CallRecord:
    call_id: str
    started_at: float
    ended_at: float | None
    caller: str
    called: str
    flow: str = ""
    flow_version: str = ""
    path: Sequence[str] = ()
    inputs: Sequence[Mapping[str, Any]] = ()
    handoff: str | None = None  # "agent:<id>", "callback:<id>", "refer:<uri>" or None
    outcome: str = ""
    announced_wait: float | None = None
    actual_wait: float | None = None


UnknownLeg = Literal["retry", "verify"]


# The store's jobs, one protocol each: a user types against the concerns it needs, so that a
# second backend (PostgreSQL for many nodes) implements them all and a test may fake just one.
# Every method commits before it returns, or raises ``StoreError``.


class CallbackStore(Protocol):
    """Callbacks and their state machine (module docstring): book, claim, move, recover."""

    def book(self, booking: Booking, now: float) -> tuple[CallbackRecord, bool]:
        """Store a callback; (record, created). A pending one for the same number is updated."""
        ...

    def get(self, callback_id: int) -> CallbackRecord | None: ...

    def list_callbacks(
        self, states: frozenset[CallbackState] | None = None, limit: int = 1000
    ) -> list[CallbackRecord]: ...

    def due(self, now: float, limit: int = 100) -> list[CallbackRecord]:
        """Pending callbacks whose window and next attempt have come, in virtual-hold order."""
        ...

    def transition(
        self,
        callback_id: int,
        event: str,
        now: float,
        *,
        expect_version: int | None = None,
        owner: str | None = None,
        lease_until: float | None = None,
        detail: str = "",
        changes: Mapping[str, Any] | None = None,
    ) -> CallbackRecord:
        """Apply ``event`` if the table allows it from the current state (and version/owner)."""
        ...

    def claim(
        self, callback_id: int, version: int, owner: str, agent: str, now: float, lease: float
    ) -> CallbackRecord: ...

    def renew(self, callback_id: int, owner: str, now: float, lease: float) -> CallbackRecord: ...

    def recover(
        self, now: float, unknown_leg: UnknownLeg = "retry", retry_spacing: float = 600.0
    ) -> list[CallbackRecord]: ...

    def cancel(self, callback_id: int, now: float, detail: str = "operator") -> CallbackRecord: ...

    def operator_retry(self, callback_id: int, now: float, detail: str = "operator") -> CallbackRecord:
        """At least one more attempt, now (attempt numbers only grow)."""
        ...

    def reschedule(
        self, callback_id: int, window_start: float, promised_by: float, now: float, detail: str = "operator"
    ) -> CallbackRecord:
        """Move a pending callback to a new window (and promise); only while nobody dials it."""
        ...

    def events(self, callback_id: int) -> list[CallbackEvent]: ...


class CallRecordStore(Protocol):
    """One call detail record per call."""

    def record_call(self, record: CallRecord) -> None: ...

    def calls(self, start: float, end: float) -> list[CallRecord]: ...


# An agent on the board: (agent, state, since, owner, version); see ivr.handoff.board.
BoardRow = tuple[str, str, float, str, int]


class AgentBoardStore(Protocol):
    """The agents as every worker process of one run sees them (ivr.handoff.board)."""

    def board_join(self, run: str, owner: str, agents: Sequence[tuple[str, str, float]]) -> None:
        """Start this run's board (rows of earlier runs go); agents are added as (id, state, since)."""
        ...

    def board_claim(self, agent: str, owner: str, run: str, now: float) -> bool:
        """Reserve an available agent for ``owner``; False when someone else was first."""
        ...

    def board_publish(self, agent: str, state: str, since: float, owner: str) -> None: ...

    def board_read(self) -> list[BoardRow]: ...


class LiveStateStore(Protocol):
    """What each worker carries right now (calls, callers on hold), for the others: ivr.ops.live_view."""

    def live_publish(self, owner: str, run: str, now: float, calls: str) -> None:
        """Replace ``owner``'s publication (JSON); rows of earlier runs go."""
        ...

    def live_read(self, run: str, fresh_after: float) -> list[tuple[str, str]]:
        """(owner, JSON) of this run's workers that published after ``fresh_after``."""
        ...


class Store(CallbackStore, CallRecordStore, AgentBoardStore, LiveStateStore, Protocol):
    """The whole durable store, as a server opens it."""

    def close(self) -> None: ...


def spacing_of(record: CallbackRecord, default: float) -> float:
    """Seconds between customer attempts for ``record``: its flow's spacing, else ``default``."""
    return record.retry_spacing if record.retry_spacing is not None else default
