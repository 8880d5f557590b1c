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


def test_a_stall_says_how_the_kernel_saw_the_loop_thread_and_where_other_threads_were() -> None:
    # A sleep in the loop thread: the kernel has it asleep, not on a CPU and not waiting for one.
    watch = StallWatch(threshold=0.1)
    asyncio.run(scenario(watch))
    (stall,) = watch.stalls
    assert stall.kernel is not None and stall.kernel.state == "S"
    assert stall.spent is not None
    assert stall.spent.asleep > 0.2 and stall.spent.on_cpu < 0.1
    assert "stall-watch" not in stall.others  # the watcher does not report itself


def busy_for(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_a_loop_thread_busy_on_a_cpu_is_told_apart_from_one_asleep() -> None:
    async def busy(watch: StallWatch) -> None:
        watch.start()
        try:
            await asyncio.sleep(0.1)
            busy_for(0.4)
            await asyncio.sleep(0.2)
        finally:
            watch.stop()

    watch = StallWatch(threshold=0.1)
    asyncio.run(busy(watch))
    (stall,) = watch.stalls
    assert stall.spent is not None
    # Running Python, the loop thread was on a CPU or waiting for one (the watcher takes the GIL).
    assert stall.spent.on_cpu + stall.spent.runnable > stall.spent.asleep
