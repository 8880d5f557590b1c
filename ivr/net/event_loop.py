"""Which asyncio event loop runs a server: uvloop where it is installed, else the standard one.

uvloop (libuv under the asyncio API) runs the loop's own machinery in C: timers, the selector
pass and the SIP socket's datagram callbacks cost less than in the standard loop, and all of
that is time every call's audio waits for. The standard loop stays the fallback and the
reference (tests run on it unless told otherwise).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")
LoopKind = Literal["auto", "uvloop", "asyncio"]
LOOP_KINDS: tuple[LoopKind, ...] = ("auto", "uvloop", "asyncio")


def uvloop_available() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def loop_factory(kind: LoopKind) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory for ``kind``; None means the standard loop. 'uvloop' without it raises."""
    if kind == "asyncio" or (kind == "auto" and not uvloop_available()):
        return None
    import uvloop  # an optional extension module, not a package of ours

    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], kind: LoopKind = "auto") -> T:
    """``asyncio.run`` on the loop ``kind`` names (``asyncio.Runner``: Python 3.11 has no
    ``loop_factory`` argument to ``asyncio.run``)."""
    with asyncio.Runner(loop_factory=loop_factory(kind)) as runner:
        return runner.run(main)


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
