"""Real-time priority for the loop thread: set on that thread only, refused cleanly elsewhere."""

from __future__ import annotations

import os
import threading

import pytest

from ivr.net.realtime import current_policy, make_loop_thread_realtime


def _in_thread(body: object) -> dict[str, object]:
    """Run ``body(result)`` on a fresh thread, so pytest's own thread keeps its policy."""
    result: dict[str, object] = {}
    thread = threading.Thread(target=body, args=(result,))  # type: ignore[arg-type]
    thread.start()
    thread.join(5)
    return result


def test_the_calling_thread_gets_round_robin_and_the_threads_it_starts_do_not() -> None:
    def body(result: dict[str, object]) -> None:
        result["refused"] = make_loop_thread_realtime(10)
        result["own"] = current_policy()
        child: dict[str, object] = {}
        started = threading.Thread(target=lambda: child.update(policy=current_policy()))
        started.start()
        started.join(5)
        result["child"] = child["policy"]

    result = _in_thread(body)
    if os.geteuid() != 0:
        # Without the privilege the answer is a reason, and nothing changed.
        assert isinstance(result["refused"], str) and result["own"] == (os.SCHED_OTHER, 0)
        return
    assert result["refused"] is None
    assert result["own"] == (os.SCHED_RR, 10)
    # SCHED_RESET_ON_FORK: store and decoding threads started by the loop run at normal priority.
    assert result["child"] == (os.SCHED_OTHER, 0)
    assert current_policy() == (os.SCHED_OTHER, 0)  # this thread was never touched


def test_a_priority_out_of_range_is_a_clear_error() -> None:
    for priority in (0, 51, -3):
        with pytest.raises(ValueError, match=r"1\.\.50"):
            make_loop_thread_realtime(priority)
