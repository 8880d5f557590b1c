"""Calls in progress as the API shows them: this process's, and with ``--workers`` everyone's.

Each worker carries its own calls; only worker 0 serves the API. So every other worker publishes
what it carries to the store about once a second (one row per worker, replaced each time), and
worker 0 adds the rows that are fresh to its own calls. A worker that stops publishing (it died)
drops out of the list after ``FRESH_SECONDS``; the calls it carried ended with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ivr.logs import get_logger
from ivr.serve import FlowApplication, LiveCall
from ivr.store.base import StoreError
from ivr.store.sqlite import SqliteStore

PUBLISH_SECONDS = 1.0
FRESH_SECONDS = 5.0
StoreCall = Callable[..., Awaitable[Any]]

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
        store: SqliteStore | None = None,
        store_call: StoreCall | None = None,
        *,
        owner: str = "",
        run: str = "",
    ) -> None:
        """Without a store (one worker) only this process's calls are seen."""
        self.flows = flows
        self._store = store
        self._store_call = store_call
        self._owner = owner
        self._run = run

    def local(self) -> list[dict[str, Any]]:
        return [describe(live) for live in list(self.flows.live.values())]

    async def all(self) -> list[dict[str, Any]]:
        calls = self.local()
        if self._store is None or self._store_call is None:
            return calls
        try:
            rows = await self._store_call(self._store.live_read, self._run, time.time() - FRESH_SECONDS)
        except StoreError as error:
            log.warning("calls of other workers not readable", error=str(error))
            return calls
        for owner, published in rows:
            if owner != self._owner:
                calls.extend(json.loads(published))
        return calls

    async def find(self, call_id: str) -> dict[str, Any] | None:
        live = self.flows.live.get(call_id)
        if live is not None:
            return describe(live)
        return next((call for call in await self.all() if call["call_id"] == call_id), None)

    async def publish(self, stop: asyncio.Event, interval: float = PUBLISH_SECONDS) -> None:
        """Publish this worker's calls until ``stop``; the last publication says "none"."""
        assert self._store is not None and self._store_call is not None
        while True:
            calls = [] if stop.is_set() else self.local()
            try:
                await self._store_call(
                    self._store.live_publish, self._owner, self._run, time.time(), json.dumps(calls)
                )
            except StoreError as error:  # the calls go on; the API misses them for a moment
                log.warning("calls not published", error=str(error))
            if stop.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
