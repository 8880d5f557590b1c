"""How a thread spent a stretch of time, as the kernel saw it: on a CPU, waiting for one, or asleep.

A stalled event loop shows the same Python stack whether its thread was running C code, waiting
for a CPU that another process held, or asleep on a lock (the GIL) or a disk; the kernel's
per-thread scheduler statistics (/proc/<pid>/task/<tid>/schedstat: nanoseconds on a CPU, nanoseconds
runnable but waiting) and the machine's steal time (a virtual machine's vCPU held by its host,
/proc/stat) tell these apart. Linux only: elsewhere every reading is None and reports omit it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class ThreadSample:
    on_cpu: float  # seconds the thread has run, since it started
    runnable: float  # seconds it was ready to run but waited for a CPU
    steal: float  # seconds the host took from this machine's vCPUs, all of them, since boot
    state: str  # the kernel's state letter now: R running/runnable, S asleep, D disk wait
    waiting_in: str  # the kernel function it sleeps in ("futex_wait...": a lock such as the GIL)


@dataclass(frozen=True)
class TimeSpent:
    """Where the seconds of a stretch went; ``asleep`` is the rest: blocked, not wanting a CPU."""

    seconds: float
    on_cpu: float
    runnable: float
    steal: float

    @property
    def asleep(self) -> float:
        return max(0.0, self.seconds - self.on_cpu - self.runnable)

    def as_ms(self) -> dict[str, int]:
        return {
            "on_cpu_ms": round(self.on_cpu * 1000),
            "waiting_for_cpu_ms": round(self.runnable * 1000),
            "asleep_ms": round(self.asleep * 1000),
            "machine_steal_ms": round(self.steal * 1000),
        }


def spent_between(before: ThreadSample, after: ThreadSample, seconds: float) -> TimeSpent:
    return TimeSpent(
        seconds=seconds,
        on_cpu=max(0.0, after.on_cpu - before.on_cpu),
        runnable=max(0.0, after.runnable - before.runnable),
        steal=max(0.0, after.steal - before.steal),
    )


def parse_schedstat(text: str) -> tuple[float, float]:
    """'<ns on cpu> <ns waiting on a run queue> <timeslices>' -> seconds on a CPU, seconds waiting."""
    on_cpu, runnable = text.split()[:2]
    return int(on_cpu) / 1e9, int(runnable) / 1e9


def parse_state(stat: str) -> str:
    """The state letter of /proc/.../stat; the command name before it may hold spaces or ')'."""
    return stat[stat.rindex(")") + 2 :].split()[0]


def parse_steal(proc_stat: str) -> float:
    """Steal seconds of all vCPUs together, from /proc/stat's first ('cpu ') line."""
    fields = proc_stat.split("\n", 1)[0].split()
    return int(fields[8]) / _TICKS_PER_SECOND if len(fields) > 8 and fields[0] == "cpu" else 0.0


def sample(native_thread_id: int) -> ThreadSample | None:
    """The thread's figures now, or None where /proc does not have them."""
    task = f"/proc/self/task/{native_thread_id}"
    try:
        on_cpu, runnable = parse_schedstat(_read(f"{task}/schedstat"))
        state = parse_state(_read(f"{task}/stat"))
        waiting_in = _read(f"{task}/wchan").strip() or "-"
        steal = parse_steal(_read("/proc/stat"))
    except (OSError, ValueError, IndexError):
        return None
    return ThreadSample(on_cpu, runnable, steal, state, waiting_in)


def _read(path: str) -> str:
    with open(path) as file:
        return file.read()
