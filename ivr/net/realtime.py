"""Real-time scheduling for the thread that carries every call's audio.

One event-loop thread paces all calls of a process. On a busy machine the kernel's fair
scheduler shares the cores among threads, not processes: a neighbour with hundreds of threads
(a load generator, a PBX) then delays each 20 ms beat by whole time slices, and every call hears
it. Media servers therefore offer a real-time priority (Asterisk ``-p``, FreeSWITCH ``-rp``);
this is ours. ``SCHED_RR`` at a modest priority lets the loop run as soon as a beat is due; the
kernel's real-time throttling still keeps 5 % of each core for everything else, and the flag
``SCHED_RESET_ON_FORK`` keeps the threads the loop starts later (store writes, speech decoding)
at normal priority, so only the pacing thread jumps the queue.
"""

from __future__ import annotations

import os

MAX_PRIORITY = 50  # below the kernel's own real-time threads (interrupt handlers run at 50+)


def make_loop_thread_realtime(priority: int) -> str | None:
    """Give the calling thread ``SCHED_RR`` at ``priority`` (1..MAX_PRIORITY).

    Returns None when done, else why not (no permission, not Linux): the server then runs at
    normal priority and says so, it never refuses to start over it.
    """
    if not 1 <= priority <= MAX_PRIORITY:
        raise ValueError(f"real-time priority must be 1..{MAX_PRIORITY}, not {priority}")
    policy = getattr(os, "SCHED_RR", None)
    reset = getattr(os, "SCHED_RESET_ON_FORK", 0)
    if policy is None or not hasattr(os, "sched_setscheduler"):
        return "real-time scheduling is not available on this system"
    try:
        os.sched_setscheduler(0, policy | reset, os.sched_param(priority))
    except PermissionError:
        return "not permitted (needs root, CAP_SYS_NICE or an RLIMIT_RTPRIO of at least the priority)"
    except OSError as error:
        return f"refused: {error}"
    return None


def current_policy() -> tuple[int, int]:
    """(policy, priority) of the calling thread, the reset-on-fork flag masked off."""
    reset = getattr(os, "SCHED_RESET_ON_FORK", 0)
    return os.sched_getscheduler(0) & ~reset, os.sched_getparam(0).sched_priority
