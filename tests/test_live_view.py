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


def view(store: SqliteStore, owner: str, queue: VirtualQueue | None = None) -> LiveView:
    flows = FlowApplication.__new__(FlowApplication)  # only its table of live calls is used
    flows.live = {}
    return LiveView(flows, store, StoreThread(), owner=owner, run="run-1", queue=queue)


def test_workers_read_each_others_calls_and_callers_on_hold(tmp_path: Path) -> None:
    async def scenario() -> None:
        with SqliteStore(tmp_path / "ivr.db") as store:
            queue = VirtualQueue()
            queue.join("held-at-1", 1000.0, "en", "support")
            one = view(store, "worker-1", queue)
            stop = asyncio.Event()
            publishing = asyncio.ensure_future(one.publish(stop, interval=60.0))
            await asyncio.sleep(0)  # the first publication is made at once
            zero = view(store, "worker-0")
            assert await zero.others_waiting() == [RemoteWaiter("held-at-1", 1000.0, "en", "support")]
            assert await one.others_waiting() == []  # a worker does not count its own callers twice
            stop.set()
            await publishing
            # Its last word, on stopping: nothing carried, nobody on hold.
            assert await zero.others() == [{"calls": [], "waiting": []}]

    asyncio.run(scenario())


def test_a_row_that_cannot_be_read_is_skipped_not_fatal(tmp_path: Path) -> None:
    async def scenario() -> None:
        with SqliteStore(tmp_path / "ivr.db") as store:
            good = {"calls": [{"call_id": "c1", "caller": "+4930"}, "junk"], "waiting": [{"key": "k"}]}
            store.live_publish("worker-1", "run-1", 1e12, json.dumps(good))
            store.live_publish("worker-2", "run-1", 1e12, "{not json")
            store.live_publish("worker-3", "run-1", 1e12, json.dumps({"calls": 5}))
            zero = view(store, "worker-0")
            assert await zero.all() == [{"call_id": "c1", "caller": "+4930"}]
            assert await zero.find("c1") == {"call_id": "c1", "caller": "+4930"}
            assert await zero.others_waiting() == []  # the entry without its fields is left out

    asyncio.run(scenario())
