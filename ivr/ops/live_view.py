"""Calls in progress and callers on hold: this process's, and with ``--workers`` everyone's.

Each worker carries its own calls; only worker 0 serves the API, and each worker keeps its own
callers on hold. So every worker publishes what it carries to the store about once a second (one
row per worker, replaced each time): the calls, for worker 0's API, and the callers on hold, which
every worker adds to its line so that callers are served in the order they came, whichever worker
holds them, and are told their place in the one line. A worker that stops publishing (it died)
drops out after ``FRESH_SECONDS``; the calls it carried ended with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from ivr.app.flow_application import FlowApplication, LiveCall
from ivr.handoff.queue import RemoteWaiter, VirtualQueue
from ivr.logs import get_logger
from ivr.store.base import LiveStateStore, StoreError
from ivr.store.thread import StoreThread

PUBLISH_SECONDS = 1.0
FRESH_SECONDS = 5.0

log = get_logger(component="live-view")


def describe(live: LiveCall) -> dict[str, Any]:
    """One call as the API and the supervisor page show it (plain JSON values only)."""
    context = {
        key: value
        for key, value in live.interpreter.vars.items()
        if isinstance(value, (str, int, float, bool)) or value is None
    }
    return {
        "call_id": live.call.call_id,
        "caller": live.call.info.caller,
        "called": live.call.info.called,
        "flow": live.flow,
        "step": live.step,
        "started_at": live.call.started_at,
        "listening": live.port.listening,
        "listens": live.port.listens,
        # What the recogniser makes of the caller's words so far (this turn, or the last one).
        "partial": live.port.partial,
        "context": context,
    }


class LiveView:
    def __init__(
        self,
        flows: FlowApplication,
        store: LiveStateStore | None = None,
        store_thread: StoreThread | None = None,
        *,
        owner: str = "",
        run: str = "",
        queue: VirtualQueue | None = None,
    ) -> None:
        """Without a store (one worker) only this process's calls are seen."""
        self.flows = flows
        self.queue = queue
        self._store = store
        self._store_thread = store_thread
        self._owner = owner
        self._run = run

    def local(self) -> list[dict[str, Any]]:
        return [describe(live) for live in list(self.flows.live.values())]

    def waiting(self) -> list[dict[str, Any]]:
        if self.queue is None:
            return []
        return [
            {"key": e.key, "entered_at": e.entered_at, "language": e.language, "skill": e.skill}
            for e in self.queue
            if e.kind == "live"
        ]

    async def others(self) -> list[dict[str, Any]]:
        """What the other workers published lately: {"calls": [...], "waiting": [...]} each."""
        if self._store is None or self._store_thread is None:
            return []
        try:
            rows = await self._store_thread.run(self._store.live_read, self._run, time.time() - FRESH_SECONDS)
        except StoreError as error:
            log.warning("calls of other workers not readable", error=str(error))
            return []
        out = []
        for owner, published in rows:
            if owner == self._owner:
                continue
            try:
                other = json.loads(published)
                calls = [c for c in other["calls"] if isinstance(c, dict) and "call_id" in c]
                out.append({"calls": calls, "waiting": list(other["waiting"])})
            except (ValueError, TypeError, KeyError):  # a row this version cannot read: skip it
                log.warning("unreadable publication of another worker", owner=owner)
        return out

    async def all(self) -> list[dict[str, Any]]:
        calls = self.local()
        for other in await self.others():
            calls.extend(other["calls"])
        return calls

    async def others_waiting(self) -> list[RemoteWaiter]:
        waiting = []
        for other in await self.others():
            for w in other["waiting"]:
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    waiting.append(
                        RemoteWaiter(str(w["key"]), float(w["entered_at"]), str(w["language"]), w["skill"])
                    )
        return waiting

    async def find(self, call_id: str) -> dict[str, Any] | None:
        live = self.flows.live.get(call_id)
        if live is not None:
            return describe(live)
        return next((call for call in await self.all() if call["call_id"] == call_id), None)

    async def publish(self, stop: asyncio.Event, interval: float = PUBLISH_SECONDS) -> None:
        """Publish this worker's calls until ``stop``; the last publication says "none"."""
        assert self._store is not None and self._store_thread is not None
        while True:
            mine = (
                {"calls": [], "waiting": []}
                if stop.is_set()
                else {"calls": self.local(), "waiting": self.waiting()}
            )
            try:
                await self._store_thread.run(
                    self._store.live_publish, self._owner, self._run, time.time(), json.dumps(mine)
                )
            except StoreError as error:  # the calls go on; the API misses them for a moment
                log.warning("calls not published", error=str(error))
            if stop.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
