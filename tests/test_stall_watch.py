"""The stall watch names the code that blocked the event loop, while it was blocking."""

from __future__ import annotations

import asyncio
import time

from ivr.ops.stall_watch import StallWatch


def blocking_lookup() -> None:
    time.sleep(0.4)  # what a synchronous DNS lookup or a slow disk does to every call


async def scenario(watch: StallWatch) -> None:
    watch.start()
    try:
        await asyncio.sleep(0.2)  # a healthy loop: no stall
        assert watch.stalls == []
        blocking_lookup()
        await asyncio.sleep(0.2)  # the loop beats again: the stall is over
    finally:
        watch.stop()


def test_a_blocked_loop_is_reported_with_the_blocking_frame_and_its_length() -> None:
    lasted: list[float] = []
    watch = StallWatch(threshold=0.1, on_over=lasted.append)
    asyncio.run(scenario(watch))
    (stall,) = watch.stalls
    assert any("in blocking_lookup" in frame for frame in stall.stack), stall.stack
    assert stall.stack[-1].endswith("in blocking_lookup")  # the innermost frame is the culprit
    # Once over, its length is known: at least the part past the threshold, and about the sleep.
    (length,) = lasted
    assert stall.lasted == length and 0.3 <= length < 5.0
