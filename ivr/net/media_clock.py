"""The one 20 ms clock that paces the outgoing audio of every call in this process.

Deadlines are absolute (start + n * 20 ms) so lateness never accumulates into drift, and
one timer wakes the loop once per frame for all calls instead of one sleep loop per call.
When the loop was held up for longer than a frame, the missed frames are sent at once (up to
``max_catch_up``) so that the receiver's playout stays continuous; beyond that the clock
re-anchors, because a burst of stale audio is worse than a short gap.

The clock also drives the receive side: ``receive(now)`` (the RTP poller's drain) runs at the
start of every frame, before the tickers, and ``receives_per_frame - 1`` more times in between.
Reading every socket in one pass a few times per frame costs a handful of wake-ups a frame
whatever the number of calls, where a callback per datagram cost one per packet; the passes in
between keep a key press from waiting for the next frame (5 ms at most with the default 4).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from ivr.logs import get_logger

FRAME_SECONDS = 0.020

Ticker = Callable[[float], None]
Receiver = Callable[[float], None]


@dataclass
class ClockStats:
    ticks: int = 0
    late_ticks: int = 0
    reanchors: int = 0
    ticker_errors: int = 0
    max_lateness: float = 0.0


class MediaClock:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        max_catch_up: int = 3,
        receive: Receiver | None = None,
        receives_per_frame: int = 4,
    ) -> None:
        self._loop = loop
        self._tickers: dict[int, Ticker] = {}
        self._next_id = 0
        self._start = 0.0
        self._slot = 0  # wake-ups since the start: receives_per_frame of them per frame
        self._handle: asyncio.TimerHandle | None = None
        self._max_catch_up = max_catch_up
        self._receive = receive
        self._slots = receives_per_frame if receive is not None else 1
        self._slot_seconds = FRAME_SECONDS / self._slots
        self.stats = ClockStats()

    def add(self, ticker: Ticker) -> int:
        """Register a per-frame callback; returns a key for ``remove``. Starts the clock."""
        key = self._next_id
        self._next_id += 1
        self._tickers[key] = ticker
        if self._handle is None:
            self._start = self._loop.time()
            self._slot = 0
            self._arm()
        return key

    def remove(self, key: int) -> None:
        self._tickers.pop(key, None)
        if not self._tickers and self._handle is not None:
            # No call left: stop waking the loop 50 times a second for nothing.
            self._handle.cancel()
            self._handle = None

    @property
    def active(self) -> int:
        return len(self._tickers)

    def _arm(self) -> None:
        self._slot += 1
        self._handle = self._loop.call_at(self._start + self._slot * self._slot_seconds, self._on_timer)

    def _on_timer(self) -> None:
        now = self._loop.time()
        if self._receive is not None:
            try:
                self._receive(now)
            except Exception:
                get_logger().exception("media receive pass failed")
        if self._slot % self._slots:
            # A receive-only wake-up between frames. When it ran so late that the frame is due,
            # the frame's wake-up comes next, at once, and deals with the lateness.
            frame_slot = (self._slot // self._slots + 1) * self._slots
            if now >= self._start + frame_slot * self._slot_seconds:
                self._slot = frame_slot - 1
            self._arm()
            return
        frame = self._slot // self._slots
        due = self._start + frame * FRAME_SECONDS
        lateness = now - due
        frames = 1
        if lateness >= FRAME_SECONDS:
            self.stats.late_ticks += 1
            missed = int(lateness / FRAME_SECONDS)
            if missed > self._max_catch_up:
                # Too far behind: start a new timeline now; the streams see the gap as a gap.
                self.stats.reanchors += 1
                self._start = now - frame * FRAME_SECONDS
                due = now
            else:
                frames += missed
                frame += missed
                self._slot += missed * self._slots
        self.stats.max_lateness = max(self.stats.max_lateness, lateness)
        first = frame - frames + 1
        for index in range(frames):
            # Each frame is ticked at its own scheduled time, so a frame sent late to catch up
            # still carries its own timestamp (+160 each), not the lateness twice over.
            frame_time = due if frames == 1 else self._start + (first + index) * FRAME_SECONDS
            self.stats.ticks += 1
            # A copy: tickers may remove themselves (call ended) while we iterate.
            for key, ticker in list(self._tickers.items()):
                try:
                    ticker(frame_time)
                except Exception:
                    # One broken call must not silence every other call: drop its ticker.
                    self.stats.ticker_errors += 1
                    self._tickers.pop(key, None)
                    get_logger().exception("media ticker failed; removed")
        if self._tickers:
            self._arm()
        else:
            self._handle = None
