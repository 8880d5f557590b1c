"""The handoff service over fake ports: no engine, no sockets, and time from a fake clock.

What the application layer gives the handoff (a clock, a voice, a dialer and call legs) is all it
uses: a transfer rings agents through the dialer and bridges through it, and a booking's times
come from the clock it was given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import structlog

from ivr.flow.port import CallbackRequest, TransferRequest
from ivr.handoff.agents import Agent, AgentPool, AgentState, PoolConfig
from ivr.handoff.ports import AudioListener, Frames, Leg, NotAnswered
from ivr.handoff.service import Handoff, HandoffConfig
from ivr.store.base import ACTIVE_STATES
from ivr.store.sqlite import SqliteStore

T = TypeVar("T")
T0 = 1_750_000_000.0
NUMBER = "+4930123456"


class FakeClock:
    def __init__(self, now: float) -> None:
        self.wall = now

    def now(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.wall - T0


class SilentVoice:
    async def text(self, text: str, language: str = "en") -> Frames:
        return np.zeros(160, dtype=np.int16)


class FakeLeg:
    def __init__(self, call_id: str, caller: str, keys: Sequence[str] = ()) -> None:
        self.call_id = call_id
        self.caller = caller
        self.started_at = T0
        self.log = structlog.get_logger("test", call_id=call_id)
        self.active = True
        self.end_reason: str | None = None
        self.playing = False
        self.keys = list(keys)  # what the caller types, one answer per question
        self.played = 0

    async def play(self, frames: Frames, *, interruptible: bool = True) -> None:
        self.played += 1

    def start_playing(self, frames: Frames, *, interruptible: bool) -> int:
        self.playing = True
        return 1

    def stop_playing(self, item: int) -> None:
        self.playing = False

    def flush_keys(self) -> list[str]:
        return []

    async def collect_digits(
        self, max_digits: int, *, first_timeout: float, inter_digit_timeout: float = 3, terminator: str | None
    ) -> str:
        return self.keys.pop(0) if self.keys else ""

    def hear(self, listener: AudioListener | None) -> None:
        pass

    def hangup(self, reason: str) -> None:
        self.active, self.end_reason = False, reason


class FakeDialer:
    """Agents in ``answering`` pick up; everyone else is busy."""

    def __init__(self, answering: set[str]) -> None:
        self.answering = answering
        self.dialled: list[tuple[str, dict[str, str]]] = []
        self.bridged: list[tuple[str, str]] = []
        self.stopping = False

    async def dial(self, uri: str, *, headers: Sequence[tuple[str, str]] = (), timeout: float) -> Leg:
        self.dialled.append((uri, dict(headers)))
        if uri not in self.answering:
            raise NotAnswered(480, "Temporarily Unavailable")
        return FakeLeg(f"to-{uri}", "ivr")

    async def refer(self, leg: Leg, uri: str) -> int:
        return 202

    async def bridge(
        self, caller: Leg, agent: Leg, *, whisper: Frames | None = None, hold: Frames | None = None
    ) -> str:
        self.bridged.append((caller.call_id, agent.call_id))
        agent.hangup("agent hung up")
        return "agent"


def agent(name: str) -> Agent:
    return Agent(
        name, name, f"sip:{name}@agents", frozenset({"en"}), frozenset(), AgentState.AVAILABLE, T0 - 60
    )


def handoff(tmp_path: Path, pool: AgentPool, clock: FakeClock) -> Handoff:
    store = SqliteStore(tmp_path / "ivr.db")
    return Handoff(pool, store, SilentVoice(), HandoffConfig(owner="w1", timezone="UTC"), clock=clock)


async def settled(service: Handoff, job: Awaitable[T]) -> T:
    """``job``'s result once the store has written what it was asked to (the agent board's
    publications are fire and forget): the store may then be closed."""
    result = await job
    await service.store_thread.barrier()
    return result


def close(service: Handoff) -> None:
    service.store_thread.shutdown()
    service.store.close()


def test_a_transfer_rings_through_the_dialer_and_skips_who_does_not_answer(tmp_path: Path) -> None:
    # anna has been idle longest, so she is rung first; she does not answer, bob does.
    pool = AgentPool([agent("anna"), agent("bob")], PoolConfig(wrap_up_timeout=30))
    pool.get("anna").since = T0 - 120
    clock = FakeClock(T0)
    service = handoff(tmp_path, pool, clock)
    dialer = FakeDialer({"sip:bob@agents"})
    service.dialer = dialer
    caller = FakeLeg("call-1", NUMBER)
    request = TransferRequest(
        skill=None, queue=None, language="en", mode="bridge", context={"intent": "billing"}
    )

    outcome = asyncio.run(settled(service, service.transfer(caller, request)))

    assert outcome.connected and outcome.agent == "bob" and outcome.detail == "agent hung up"
    assert [uri for uri, _ in dialer.dialled] == ["sip:anna@agents", "sip:bob@agents"]
    assert '"intent":"billing"' in dialer.dialled[0][1]["X-IVR-Context"]
    assert dialer.bridged == [("call-1", "to-sip:bob@agents")]
    # The agents' states changed at the fake clock's time, not the machine's.
    assert pool.get("bob").state is AgentState.WRAP_UP and pool.get("bob").since == T0
    close(service)


def test_a_booking_keeps_the_times_of_the_clock_it_was_given(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    service = handoff(tmp_path, AgentPool(), clock)
    caller = FakeLeg("call-2", NUMBER, keys=["1", "1"])  # the number is right; as soon as possible
    request = CallbackRequest(
        number=NUMBER, language="en", attempts=3, spacing=None,
        allowed_numbers=(r"^\+49[1-9][0-9]{6,13}$",), windows=("mon-sun 00:00-24:00",),
    )  # fmt: skip

    outcome = asyncio.run(settled(service, service.offer_callback(caller, request)))

    assert outcome.booked and outcome.number == NUMBER
    (record,) = service.store.list_callbacks(ACTIVE_STATES)
    assert record.created_at == T0 and record.queue_entered_at == T0
    assert T0 <= record.window_start < record.promised_by
    close(service)
