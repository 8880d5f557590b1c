"""What the handoff needs from the world, as small protocols: a clock, a voice, a dialer, call legs.

The handoff decides who is rung, what the caller hears and when a callback is dialled; it does not
know how a call is placed. The application layer passes in adapters over the call engine
(``ivr.app.handoff_adapters``); tests may pass fakes. The durable state comes through the store's
protocols (``ivr.store.base``).

A ``Leg`` is one call as the handoff drives it: the caller waiting for an agent, an agent's phone,
a customer called back. Its awaited methods raise ``LegGone`` once the far end has hung up, so
the handoff never keeps talking into a dead line.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt
import structlog

# 16-bit linear PCM at 8 kHz, what prompts and hold music are made of.
Frames = npt.NDArray[np.int16]
AudioListener = Callable[[Frames], None]


class Clock(Protocol):
    def now(self) -> float:
        """Wall time, UNIX seconds: what the store, the agents and the promises keep."""
        ...

    def monotonic(self) -> float:
        """Seconds that never jump, for intervals (announcements, recovery rounds)."""
        ...


class SystemClock:
    """The machine's clocks; the only place in the handoff that reads them."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class Voice(Protocol):
    async def text(self, text: str, language: str = "en") -> Frames:
        """``text`` spoken in ``language``, ready to play."""
        ...


class LegGone(Exception):
    """The call ended (far end hung up, cancelled, or the server is stopping)."""


class NotAnswered(Exception):
    """A dialled number did not answer; ``status`` is the final SIP status (408, 480, 486, ...)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


class Leg(Protocol):
    @property
    def call_id(self) -> str: ...

    @property
    def caller(self) -> str:
        """Who is calling on this leg (caller ID as it came in)."""
        ...

    @property
    def started_at(self) -> float:
        """Wall time the call began."""
        ...

    @property
    def active(self) -> bool: ...

    @property
    def end_reason(self) -> str | None: ...

    @property
    def log(self) -> structlog.typing.FilteringBoundLogger:
        """A logger with the call id bound."""
        ...

    async def play(self, frames: Frames, *, interruptible: bool = True) -> None:
        """Play and wait until it finished or a key cut it short (barge-in)."""
        ...

    def start_playing(self, frames: Frames, *, interruptible: bool) -> int:
        """Play in the background (hold music); returns what ``stop_playing`` takes."""
        ...

    def stop_playing(self, item: int) -> None: ...

    @property
    def playing(self) -> bool:
        """Something is being played to this leg right now."""
        ...

    def flush_keys(self) -> list[str]:
        """Take every key pressed so far (type-ahead) and return the digits."""
        ...

    async def collect_digits(
        self, max_digits: int, *, first_timeout: float, inter_digit_timeout: float = 3, terminator: str | None
    ) -> str:
        """Up to ``max_digits`` keys, type-ahead included; fewer when the caller stops or ends with
        ``terminator``."""
        ...

    def hear(self, listener: AudioListener | None) -> None:
        """Send what the far end says, frame by frame, to ``listener`` (None: stop)."""
        ...

    def hangup(self, reason: str) -> None: ...


class Dialer(Protocol):
    @property
    def stopping(self) -> bool:
        """The server is stopping: no new calls, the waiting ones should be wound up."""
        ...

    async def dial(self, uri: str, *, headers: Sequence[tuple[str, str]] = (), timeout: float) -> Leg:
        """Call ``uri``; the answered leg, or ``NotAnswered`` after ``timeout`` or a refusal."""
        ...

    async def refer(self, leg: Leg, uri: str) -> int:
        """Blind transfer: ask ``leg``'s side to call ``uri``; the final status it reported."""
        ...

    async def bridge(
        self, caller: Leg, agent: Leg, *, whisper: Frames | None = None, hold: Frames | None = None
    ) -> str:
        """Join the two until one hangs up, then hang up the other; who hung up first ("caller",
        "agent"). With ``whisper``, the agent hears it first while the caller hears ``hold``."""
        ...
