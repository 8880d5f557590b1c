"""Names what held up the event loop: every call's 20 ms audio waits while anything blocks it.

The loop beats a heartbeat every ``beat`` seconds; a watcher thread notices when the beat is
``threshold`` late and takes the loop thread's stack right then, while it is still stuck, and
logs it once per stall (then how long the stall lasted). The watcher needs the GIL to look: it
sees stalls in which the loop thread waits (blocking I/O, a lock, a sleep) or runs Python code,
and can miss those in which it holds the GIL in C code throughout, such as a garbage collection;
those show in ``ivr_gc_pause_seconds`` on /metrics instead.

A stack that shows only the loop's own ``run`` means the thread was in C code: running, waiting
for a CPU, or asleep on the GIL. So each stall also says, from the kernel, how the loop thread
spent it (on a CPU, waiting for one, asleep, and the machine's steal time: the host taking a
virtual machine's vCPUs), its kernel state when the stall was seen, and where the process's other
threads were in their Python code then (one of them may hold the GIL).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from ivr.logs import get_logger
from ivr.ops.thread_clock import ThreadSample, TimeSpent, sample, spent_between


@dataclass
class Stall:
    started: float  # monotonic time of the last beat before the stall
    stack: list[str]  # the loop thread's frames, innermost last: "file:line in function"
    lasted: float | None = None  # seconds (to within a beat), once the loop beat again
    kernel: ThreadSample | None = None  # the loop thread as the kernel saw it when it was noticed
    others: dict[str, str] = field(default_factory=dict)  # other threads: name -> innermost frame
    spent: TimeSpent | None = None  # noticed -> over: on a CPU, waiting for one, asleep, steal
    noticed: float = 0.0  # monotonic time the watcher saw it


@dataclass
class StallWatch:
    threshold: float = 0.1
    beat: float = 0.025
    on_over: Callable[[float], None] | None = None  # a stall's length once it is over (metrics)
    stalls: list[Stall] = field(default_factory=list)  # the most recent ones
    keep: int = 20

    def __post_init__(self) -> None:
        self._last_beat = time.monotonic()
        self._loop_thread = 0
        self._loop_native_id = 0
        self._handle: asyncio.TimerHandle | None = None
        self._stop = threading.Event()
        self.report_errors = 0
        self._thread: threading.Thread | None = None
        self._log = get_logger(component="stall-watch")

    def start(self) -> None:
        """Call from the event loop's thread."""
        self._loop_thread = threading.get_ident()
        self._loop_native_id = threading.get_native_id()
        self._loop = asyncio.get_running_loop()
        self._last_beat = time.monotonic()
        self._handle = self._loop.call_later(self.beat, self._beat)
        self._thread = threading.Thread(target=self._watch, name="stall-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._handle is not None:
            self._handle.cancel()
        if self._thread is not None:
            self._thread.join(1.0)

    def _beat(self) -> None:
        self._last_beat = time.monotonic()
        self._handle = self._loop.call_later(self.beat, self._beat)

    def _watch(self) -> None:
        current: Stall | None = None
        while not self._stop.wait(self.beat):
            last = self._last_beat
            late = time.monotonic() - last
            if current is None and late >= self.threshold:
                noticed = time.monotonic()
                kernel = sample(self._loop_native_id)
                others = self._other_threads()
                current = Stall(last, self._loop_stack(), kernel=kernel, others=others, noticed=noticed)
                self._report_safely(current)
            elif current is not None and last > current.started:
                current.lasted = last - current.started
                after = sample(self._loop_native_id)
                if current.kernel is not None and after is not None:
                    current.spent = spent_between(current.kernel, after, time.monotonic() - current.noticed)
                self._report_safely(current)
                current = None

    def _report_safely(self, stall: Stall) -> None:
        try:
            self._report(stall)
        except Exception:  # a diagnostic must never end: the next stall matters as much
            self.report_errors += 1

    def _loop_stack(self) -> list[str]:
        frame = sys._current_frames().get(self._loop_thread)
        if frame is None:
            return []
        frames = traceback.extract_stack(frame)
        return [f"{entry.filename}:{entry.lineno} in {entry.name}" for entry in frames]

    def _other_threads(self) -> dict[str, str]:
        names = {thread.ident: thread.name for thread in threading.enumerate()}
        others: dict[str, str] = {}
        for ident, frame in sys._current_frames().items():
            if ident in (self._loop_thread, threading.get_ident()):
                continue
            entry = traceback.extract_stack(frame, limit=1)[-1]
            others[names.get(ident, str(ident))] = f"{entry.filename}:{entry.lineno} in {entry.name}"
        return others

    def _report(self, stall: Stall) -> None:
        if stall.lasted is None:
            self.stalls.append(stall)
            del self.stalls[: -self.keep]
            # The innermost frames say what blocked; the outer ones are the loop itself.
            after_ms = round(self.threshold * 1000)
            # Innermost first ("stack" is a key structlog keeps for itself).
            where = " <- ".join(reversed(stall.stack[-8:]))
            kernel = {}
            if stall.kernel is not None:
                kernel = {"thread_state": stall.kernel.state, "waiting_in": stall.kernel.waiting_in}
            self._log.warning(
                "event loop stalled", after_ms=after_ms, where=where, others=stall.others, **kernel
            )
            return
        spent = stall.spent.as_ms() if stall.spent is not None else {}
        # "spent" covers noticed -> over (the part past the threshold), not the whole stall.
        self._log.warning("event loop stall over", lasted_ms=round(stall.lasted * 1000), **spent)
        if self.on_over is not None:
            self.on_over(stall.lasted)
