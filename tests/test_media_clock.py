"""The shared 20 ms clock: absolute deadlines, catch-up frames at their own times, re-anchoring."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from ivr.net.media_clock import FRAME_SECONDS, MediaClock


def _run(block_at: int, block_for: float, frames: int = 30) -> tuple[list[float], MediaClock]:
    times: list[float] = []

    async def scenario() -> MediaClock:
        clock = MediaClock(asyncio.get_running_loop(), max_catch_up=3)
        done = asyncio.Event()

        def ticker(now: float) -> None:
            times.append(now)
            if len(times) == block_at:
                time.sleep(block_for)  # a stalled event loop (GC, a slow handler)
            if len(times) >= frames:
                clock.remove(key)
                done.set()

        key = clock.add(ticker)
        await asyncio.wait_for(done.wait(), 5)
        return clock

    return times, asyncio.run(scenario())


def test_late_frames_are_sent_at_once_each_with_its_own_time() -> None:
    times, clock = _run(block_at=10, block_for=0.065)
    steps = [b - a for a, b in itertools.pairwise(times)]
    # Every frame is one frame after the previous one: no drift, no double counting of lateness.
    assert steps == pytest.approx([FRAME_SECONDS] * len(steps), abs=1e-9)
    assert clock.stats.late_ticks >= 1 and clock.stats.reanchors == 0


def test_a_long_stall_starts_a_new_timeline_instead_of_a_burst() -> None:
    times, clock = _run(block_at=5, block_for=0.2)
    steps = [b - a for a, b in itertools.pairwise(times)]
    assert clock.stats.reanchors == 1
    assert max(steps) > 0.15  # the gap stays a gap
    assert sum(1 for s in steps if s < FRAME_SECONDS / 2) == 0  # and no burst of stale frames


def test_the_clock_stops_when_no_call_needs_it() -> None:
    async def scenario() -> bool:
        clock = MediaClock(asyncio.get_running_loop())
        key = clock.add(lambda now: None)
        await asyncio.sleep(0.05)
        clock.remove(key)
        return clock._handle is None and clock.active == 0

    assert asyncio.run(scenario())
