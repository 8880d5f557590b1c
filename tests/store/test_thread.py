"""The store's thread: calls run there one at a time and in order; posted failures are logged."""

from __future__ import annotations

import asyncio
import threading

import pytest
from structlog.testing import capture_logs

from ivr.store.thread import StoreThread


def test_calls_run_off_the_loop_in_the_order_they_were_made() -> None:
    thread = StoreThread()
    seen: list[tuple[str, str]] = []

    def note(what: str, *, by: str = "") -> str:
        seen.append((what, threading.current_thread().name))
        return what + by

    async def scenario() -> None:
        thread.post("not noted", note, "posted")
        assert await thread.run(note, "run", by="!") == "run!"
        thread.post("not noted", note, "last")
        await thread.barrier()

    asyncio.run(scenario())
    thread.shutdown()
    assert [what for what, _ in seen] == ["posted", "run", "last"]
    assert all(name.startswith("store") for _, name in seen)


def test_an_exception_reaches_the_awaiting_caller() -> None:
    thread = StoreThread()

    def fail() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        asyncio.run(thread.run(fail))
    thread.shutdown()


def test_a_posted_failure_is_logged_not_raised() -> None:
    thread = StoreThread()

    def fail() -> None:
        raise OSError("disk full")

    async def scenario() -> None:
        thread.post("agent board not updated", fail)
        await thread.barrier()
        await asyncio.sleep(0)  # the done callback runs on the loop

    with capture_logs() as logs:
        asyncio.run(scenario())
    thread.shutdown()
    assert [(e["event"], e["error"]) for e in logs] == [("agent board not updated", "disk full")]


def test_outside_an_event_loop_a_post_runs_at_once() -> None:
    thread = StoreThread()
    seen: list[str] = []
    thread.post("not noted", seen.append, "now")
    assert seen == ["now"]
    thread.shutdown()
