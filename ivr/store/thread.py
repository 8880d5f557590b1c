"""Store calls from the event loop: one thread runs them all, one at a time, in order.

SQLite connections belong to the thread that made them, and each commit is an fsync (a few ms):
run on the event loop, it would stall every call's audio. One thread owning all store calls of a
process keeps them off the loop, and they never race each other. Everything that reaches the
store from async code (the handoff, the agent board, the API, the live view) goes through one
``StoreThread``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class StoreThread:
    def __init__(self, executor: Executor | None = None) -> None:
        self.executor = executor or ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on the store's thread; its result or its exception."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, lambda: fn(*args, **kwargs))

    def post(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Queue ``fn(*args)`` behind the calls before it, without waiting for it. Raises
        ``RuntimeError`` when no event loop runs (the caller may then call ``fn`` itself)."""
        return asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)
