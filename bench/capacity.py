"""Keypad-call capacity of one ``ivr serve`` process, measured from the caller's side.

Every call hears the demo flow's prompt and presses the RFC 4733 keys "1#" 4 s into it (the
prompt is cut and the read-back starts). For each concurrency level that many calls start at a
fixed rate (100 per second by default), so all of them are up at once near the end of the ramp.
Two ways to place them (``--load``):

sipp (default)
    SIPp (sipp/bench_keypad.xml, driven by bench/sipp_load.py) does the signalling. Its counters
    give calls attempted, succeeded and failed; its message log gives setup time INVITE->200 per
    call. The SDP of every SIPp call points at one independent receiver (bench/rtp_sink.py), the
    calls' media side: it stamps each of the IVR's RTP packets in the kernel on arrival (spacing,
    over the prompt before the keys), sends the keys and times the reply (from the last key packet
    to the first packet of the reply), for every call. Each call waits for the IVR to hang up after
    its read-back, about 8 s after the answer; a call the IVR does not end in time fails.
probe
    All calls come from the hand-written probe (tests/rtp_probe.py), which measures everything
    (spacing stamped in user space); each call hangs up after ``--hold`` seconds.

Both modes report the server's CPU and memory (from /proc). A level passes when no call failed,
RTP p99 spacing < 25 ms and reply p95 < 300 ms; in sipp mode a call SIPp completed whose audio
never reached the receiver counts as failed too. Capacity is the highest level that passed.

    python -m bench.capacity [--load sipp|probe] --levels 100 200 400 600 [--workers 2]
        [--append BENCHMARKS.md] [--plot f.png]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.rtp_sink import RtpSink, stream_summary
from bench.sipp_load import CALL_SECONDS, finish_load, start_load
from tests.rtp_probe import percentile, probe_calls, summary
from tests.server import ivr_server

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def _server_pids(parent: int) -> list[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    return [parent, *map(int, children)]


def run_level(
    server_pids: list[int], target: tuple[str, int], level: int, rate: float, hold: float
) -> dict[str, float]:
    cpu0, rss0 = _cpu_seconds(server_pids), _rss_mb(server_pids)
    started = time.monotonic()
    records = probe_calls(
        target,
        calls=level,
        hold=hold,
        start_interval=1.0 / rate,
        keys="1#",
        keys_at=4.0,
        deadline=hold + level / rate + 60,
    )
    wall = time.monotonic() - started
    figures = summary(records)
    busy = _cpu_seconds(server_pids) - cpu0
    figures.update(
        level=level,
        cpu_core_share=busy / wall,
        cpu_ms_per_call_second=1000 * busy / (level * hold),
        rss_mb=_rss_mb(server_pids),
        rss_mb_delta=_rss_mb(server_pids) - rss0,
    )
    figures["passed"] = float(
        figures["answered"] == level and figures["spacing_p99_ms"] < 25 and figures["reply_p95_ms"] < 300
    )
    return figures


class _PeakRss:
    """The server's highest RSS while a level runs, sampled twice a second in a thread."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak = _rss_mb(pids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, _rss_mb(self.pids))

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb(self.pids))


def run_level_sipp(
    server_pids: list[int],
    target: tuple[str, int],
    level: int,
    rate: float,
    idle_rss: float,
    workdir: Path,
) -> dict[str, float]:
    """One level with SIPp placing the calls and the receiver doing their media."""
    sink = RtpSink()
    port = sink.start()
    cpu0 = _cpu_seconds(server_pids)
    started = time.monotonic()
    with _PeakRss(server_pids) as memory:
        load = finish_load(
            start_load(target, workdir / f"level-{level}", calls=level, rate=rate, receiver_port=port)
        )
    wall = time.monotonic() - started
    busy = _cpu_seconds(server_pids) - cpu0
    figures = stream_summary(sink.stop())
    # A call SIPp completed whose audio never reached the receiver failed all the same.
    silent = max(0, load.succeeded - int(figures["streams"]))
    failed = load.failed + silent + max(0, level - load.attempted)  # never started: failed too
    figures.update(
        level=level,
        attempted=load.attempted,
        succeeded=load.succeeded - silent,
        failed=failed,
        setup_p50_ms=percentile(load.setup_ms, 50),
        setup_p99_ms=percentile(load.setup_ms, 99),
        setup_max_ms=max(load.setup_ms, default=float("nan")),
        cpu_core_share=busy / wall,
        cpu_ms_per_call_second=1000 * busy / (level * CALL_SECONDS),
        rss_mb=memory.peak,
        kb_per_call=1024 * (memory.peak - idle_rss) / level,
    )
    figures["passed"] = float(
        failed == 0
        and figures["replies"] == level
        and figures["spacing_p99_ms"] < 25
        and figures["reply_p95_ms"] < 300
    )
    return figures


def _machine_line(args: argparse.Namespace) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    )
    if changed.stdout.strip():
        commit += " with uncommitted changes"  # what ran is not exactly that commit
    return (
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"date {time.strftime('%Y-%m-%d')}; commit {commit}; workers {args.workers}; load {args.load}"
    )


def markdown_sipp(rows: list[dict[str, float]], args: argparse.Namespace) -> str:
    lines = [
        _machine_line(args),
        "",
        "| calls | attempted | succeeded | failed | setup p50/p99/max ms | RTP spacing p50/p99/max ms "
        "| streams heard / replies | reply p50/p95 ms | server CPU (share of a core) "
        "| CPU ms per call-second | RSS MB peak | KB per call | pass |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['level']:.0f} | {r['attempted']:.0f} | {r['succeeded']:.0f} | {r['failed']:.0f} "
            f"| {r['setup_p50_ms']:.1f} / {r['setup_p99_ms']:.1f} / {r['setup_max_ms']:.1f} "
            f"| {r['spacing_p50_ms']:.1f} / {r['spacing_p99_ms']:.1f} / {r['spacing_max_ms']:.1f} "
            f"| {r['streams']:.0f} / {r['replies']:.0f} | {r['reply_p50_ms']:.1f} / {r['reply_p95_ms']:.1f} "
            f"| {r['cpu_core_share']:.2f} | {r['cpu_ms_per_call_second']:.2f} | {r['rss_mb']:.0f} "
            f"| {r['kb_per_call']:.0f} | {'yes' if r['passed'] else 'no'} |"
        )
    return "\n".join(lines)


def markdown(rows: list[dict[str, float]], args: argparse.Namespace) -> str:
    lines = [
        _machine_line(args),
        "",
        "| calls | answered | setup p50/p99 ms | RTP spacing p50/p99/max ms | reply p50/p95 ms "
        "| server CPU (share of a core) | CPU ms per call-second | RSS MB | pass |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['level']:.0f} | {r['answered']:.0f} "
            f"| {r['setup_p50_ms']:.1f} / {r['setup_p99_ms']:.1f} "
            f"| {r['spacing_p50_ms']:.1f} / {r['spacing_p99_ms']:.1f} / {r['spacing_max_ms']:.1f} "
            f"| {r['reply_p50_ms']:.1f} / {r['reply_p95_ms']:.1f} | {r['cpu_core_share']:.2f} "
            f"| {r['cpu_ms_per_call_second']:.2f} | {r['rss_mb']:.0f} "
            f"| {'yes' if r['passed'] else 'no'} |"
        )
    return "\n".join(lines)


def plot(rows: list[dict[str, float]], path: Path, label: str) -> None:
    """Latency and spacing against concurrency, with the pass lines, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display: render straight to the file
    import matplotlib.pyplot as plt

    levels = [r["level"] for r in rows]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    top.plot(levels, [r["spacing_p50_ms"] for r in rows], "o-", label="RTP spacing p50")
    top.plot(levels, [r["spacing_p99_ms"] for r in rows], "o-", label="RTP spacing p99")
    top.axhline(25, color="red", linestyle="--", linewidth=1, label="p99 limit 25 ms")
    top.set_ylabel("ms")
    top.set_title(f"Keypad calls, {label}: what callers receive")
    top.legend()
    bottom.plot(levels, [r["setup_p99_ms"] for r in rows], "o-", label="setup p99 (INVITE to 200)")
    bottom.plot(levels, [r["reply_p95_ms"] for r in rows], "o-", label="reply p95 (key to first RTP)")
    bottom.axhline(300, color="red", linestyle="--", linewidth=1, label="reply limit 300 ms")
    bottom.set_xlabel("concurrent calls")
    bottom.set_ylabel("ms")
    bottom.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", type=int, nargs="+", default=[50, 100, 200, 300, 400, 500, 600])
    parser.add_argument("--load", choices=["sipp", "probe"], default="sipp", help="who places the calls")
    parser.add_argument("--rate", type=float, default=100.0, help="new calls per second")
    parser.add_argument(
        "--hold",
        type=float,
        default=8.0,
        help="seconds each call lasts (probe load; in sipp mode the IVR ends calls at ~8 s)",
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--append", type=Path, default=None, help="append the table to this file")
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG of latency and spacing")
    args = parser.parse_args()
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"ivr-capacity-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    rows = []
    with ivr_server(tmp, "--workers", str(args.workers), "--log-level", "warning", rtp_base=20000) as server:
        time.sleep(1.0)
        pids = _server_pids(server.process.pid)
        idle_rss = _rss_mb(pids)
        for level in args.levels:
            if args.load == "sipp":
                row = run_level_sipp(pids, server.address, level, args.rate, idle_rss, tmp)
            else:
                row = run_level(pids, server.address, level, args.rate, args.hold)
            rows.append(row)
            print({k: round(v, 3) for k, v in row.items()}, flush=True)
            time.sleep(2.0)
    table = markdown_sipp(rows, args) if args.load == "sipp" else markdown(rows, args)
    capacity = max((r["level"] for r in rows if r["passed"]), default=0)
    print(table)
    print(f"capacity: {capacity:.0f} concurrent keypad calls (0 failed, RTP p99 < 25 ms, reply p95 < 300 ms)")
    load = "SIPp" if args.load == "sipp" else "probe"
    if args.append is not None:
        with open(args.append, "a", encoding="utf-8") as out:
            out.write(
                f"\n### Keypad capacity, {args.workers} worker(s), load from {load}, "
                f"{time.strftime('%Y-%m-%d %H:%M')}\n\n"
            )
            out.write(f"Command: `python -m bench.capacity {' '.join(sys.argv[1:])}`\n\n{table}\n")
            out.write(f"\nCapacity found: {capacity:.0f} concurrent calls.\n")
    if args.plot is not None:
        plot(rows, args.plot, f"{args.workers} worker(s), load from {load}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
