"""What the other workers published, read back: calls and callers on hold, bad rows skipped."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from ivr.app.flow_application import FlowApplication
from ivr.handoff.queue import RemoteWaiter, VirtualQueue
from ivr.ops.live_view import LiveView
from ivr.store.sqlite import SqliteStore
from ivr.store.thread import StoreThread


def view(
    store: SqliteStore, thread: StoreThread, owner: str, queue: VirtualQueue | None = None
) -> LiveView:
    flows = FlowApplication.__new__(FlowApplication)  # only its table of live calls is used
    flows.live = {}
    return LiveView(flows, store, thread, owner=owner, run="run-1", queue=queue)


def test_workers_read_each_others_calls_and_callers_on_hold(tmp_path: Path) -> None:
    async def scenario() -> None:
        with SqliteStore(tmp_path / "ivr.db") as store:
            queue = VirtualQueue()
            queue.join("held-at-1", 1000.0, "en", "support")
            # Both "workers" share one store thread here, as they share one connection: the
            # connection may be used from one thread at a time, and in this order the
            # first publication (queued at once) is written before the first read.
            thread = StoreThread()
            one = view(store, thread, "worker-1", queue)
            stop = asyncio.Event()
            publishing = asyncio.ensure_future(one.publish(stop, interval=60.0))
            try:
                await asyncio.sleep(0)  # the first publication is queued at once
                zero = view(store, thread, "worker-0")
                assert await zero.others_waiting() == [RemoteWaiter("held-at-1", 1000.0, "en", "support")]
                assert await one.others_waiting() == []  # a worker does not count its own callers twice
            finally:
                stop.set()
                await publishing
            # Its last word, on stopping: nothing carried, nobody on hold.
            assert await zero.others() == [{"calls": [], "waiting": []}]
            thread.shutdown()

    asyncio.run(scenario())


def test_a_row_that_cannot_be_read_is_skipped_not_fatal(tmp_path: Path) -> None:
    async def scenario() -> None:
        with SqliteStore(tmp_path / "ivr.db") as store:
            good = {"calls": [{"call_id": "c1", "caller": "+4930"}, "junk"], "waiting": [{"key": "k"}]}
            store.live_publish("worker-1", "run-1", 1e12, json.dumps(good))
            store.live_publish("worker-2", "run-1", 1e12, "{not json")
            store.live_publish("worker-3", "run-1", 1e12, json.dumps({"calls": 5}))
            zero = view(store, StoreThread(), "worker-0")
            assert await zero.all() == [{"call_id": "c1", "caller": "+4930"}]
            assert await zero.find("c1") == {"call_id": "c1", "caller": "+4930"}
            assert await zero.others_waiting() == []  # the entry without its fields is left out

    asyncio.run(scenario())
