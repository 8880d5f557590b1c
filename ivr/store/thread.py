"""The store's own thread: every store call of a server process runs there, one at a time.

Store methods are blocking (a commit is an fsync, a few milliseconds), so the event loop hands
them to this thread. One thread, not a pool: an SQLite connection belongs to one thread at a time,
and calls that run in the order they were made never race each other (a publication queued
before a read is written before that read). The handoff service, the agent board, the HTTP API
and the live view of several workers share one ``StoreThread`` per process.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from ivr.logs import get_logger

P = ParamSpec("P")
T = TypeVar("T")

log = get_logger()


class StoreThread:
    def __init__(self, executor: Executor | None = None) -> None:
        """``executor``: one that runs a job at a time in order (by default a thread of its own)."""
        self.executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)`` on the store's thread: its result, or the exception it raised."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))

    def post(self, failure: str, fn: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> None:
        """Fire and forget, in order with every other call; a failure is logged as ``failure``.

        Outside an event loop (a tool or a test driving the caller directly) it runs at once.
        """
        try:
            future = asyncio.get_running_loop().run_in_executor(
                self.executor, functools.partial(fn, *args, **kwargs)
            )
        except RuntimeError:
            fn(*args, **kwargs)
            return
        future.add_done_callback(functools.partial(_log_failure, failure))

    async def barrier(self) -> None:
        """Wait until every call posted so far has run."""
        await self.run(_nothing)

    def shutdown(self) -> None:
        self.executor.shutdown()


def _nothing() -> None:
    return None


def _log_failure(failure: str, future: asyncio.Future[object]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error(failure, error=str(future.exception()))
