"""Does the machine itself stop? A probe beside a soak that the soak's load cannot delay.

Pinned to one vCPU at SCHED_FIFO (start it with ``chrt -f 50``), it wakes every millisecond and
writes down each wake-up more than 20 ms late, with the wall time (to set against the capture's
pauses) and that vCPU's steal time since its last line (/proc/stat: the host of a virtual machine
running something else on it). Nothing on the machine below its priority can delay it, so a late
wake-up is the kernel's or the host's. Run one per vCPU:

    for cpu in 0 1; do chrt -f 50 python -m bench.pause_probe pauses.txt $cpu & done
"""

from __future__ import annotations

import os
import sys
import time

LATE = 0.020


def steal_ticks(cpu: int) -> int:
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith(f"cpu{cpu} "):
                return int(line.split()[8])
    return 0


def main() -> None:
    path, cpu = sys.argv[1], int(sys.argv[2])
    os.sched_setaffinity(0, {cpu})
    with open(path, "a", buffering=1) as out:
        last, stolen = time.monotonic(), steal_ticks(cpu)
        while True:
            time.sleep(0.001)
            now = time.monotonic()
            if now - last > LATE:
                ticks = steal_ticks(cpu)
                out.write(f"cpu{cpu} {time.time():.3f} late_ms={(now - last) * 1000:.1f} steal_ticks={ticks - stolen}\n")
                stolen = ticks
            last = now


if __name__ == "__main__":
    main()
