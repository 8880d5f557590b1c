"""Capacity with callers that behave like phones, every figure taken from a capture on the wire.

The workload a user measured Asterisk 20 with, so that the two can be set side by side:

- SIPp (sipp/bench_real_caller.xml) with ``-l N -r N/6 -m 5N``: N calls up at once for tens of
  seconds, a new call replacing each that ends;
- each caller sends RTP for the whole call, as a phone does: 6 s of speech (PCMU), the key "1"
  (RFC 4733, in the same stream), then more speech until the IVR hangs up; SIPp replays it from
  sipp/audio/real-caller.pcap (bench/caller_pcap.py);
- the IVR (bench/flows/real_caller.yaml): a 4.9 s recorded prompt, one key within 5 s, hang up;
- tcpdump on ``lo``, a process apart from both ends, records SIP and RTP; setup, RTP spacing,
  key -> BYE and the calls up at once come from that capture (bench/wire_calls.py).

Each level gets a fresh ``ivr serve``. Its CPU and peak RSS come from /proc. A level passes when
no call failed (by SIPp's counters and by the capture) and RTP spacing p99 < 25 ms. Targets,
reported and not judged here: spacing p99.9 < 40 ms, setup p99 <= 20 ms, key -> BYE p99 <= 20 ms,
<= 1.0 ms server CPU per call-second, <= 0.5 MB RSS per call.

    python -m bench.real_callers --levels 200 400 600 [--workers 1] [--append BENCHMARKS.md]
        [--server-args "--stall-ms 100"] [--calls M] [--keep]

tcpdump needs root or CAP_NET_RAW, SIPp's pcap replay too (bash run.sh sets that up).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.capacity import _cpu_seconds, _PeakRss, _rss_mb, _server_pids
from bench.wire_calls import analyse
from bench.wire_capture import call_captures, read_pcap, stop_captures
from tests.server import REPO, ivr_server
from tests.sipp_runner import SIPP_DIR, start_sipp

SCENARIO = SIPP_DIR / "bench_real_caller.xml"
FLOWS = REPO / "bench" / "flows"
FLOW = "real_caller"
TURNOVER = 6.0  # -r N/6: a call lasts about 6.2 s, so N/6 new calls a second keep N up
RTP_PORTS = 2000  # ivr_server gives the server rtp_base .. rtp_base + 1998


def run_level(
    level: int,
    workdir: Path,
    *,
    workers: int = 1,
    calls: int | None = None,
    server_args: tuple[str, ...] = (),
    rtp_base: int = 24000,
) -> dict[str, float]:
    """One level: a fresh server, the captures, SIPp to the end, the figures."""
    calls = calls if calls is not None else 5 * level
    rate = level / TURNOVER
    workdir.mkdir(parents=True, exist_ok=True)
    # --workers as one token: tests/server.py then waits for OPTIONS only, not for every worker's
    # "listening" line, which --log-level warning never writes; the second below covers the
    # workers still starting when the first one answers (they start within tens of ms).
    options = [f"--workers={workers}", "--flows", str(FLOWS), "--flow", FLOW, "--keypad-only"]
    options += ["--log-level", "warning", *server_args]
    with ivr_server(workdir, *options, rtp_base=rtp_base) as server:
        time.sleep(1.0)  # workers started, prompt converted and cached
        pids = _server_pids(server.process.pid)
        idle_rss = _rss_mb(pids)
        sip_capture, rtp_capture = call_captures(
            workdir, server.address[1], (rtp_base, rtp_base + RTP_PORTS - 1)
        )
        sip_capture.start()
        rtp_capture.start()
        try:
            cpu0, started = _cpu_seconds(pids), time.monotonic()
            with _PeakRss(pids) as memory:
                sipp = start_sipp(
                    SCENARIO,
                    f"{server.address[0]}:{server.address[1]}",
                    calls=calls,
                    rate=rate,
                    limit=level,
                    timeout=calls / rate + 60,
                    service=FLOW,
                    workdir=workdir / "sipp",
                )
                result = sipp.wait()
            wall = time.monotonic() - started
            busy = _cpu_seconds(pids) - cpu0
        finally:
            sip_counts, rtp_counts = stop_captures(sip_capture, rtp_capture)
        alive = server.process.poll() is None
    report = analyse(
        read_pcap(sip_capture.path.read_bytes()), read_pcap(rtp_capture.path.read_bytes()), server.address
    )
    row = dict(report.summary)
    attempted = int(result.stats.get("TotalCallCreated") or result.stats.get("OutgoingCall(C)") or 0)
    row.update(
        level=float(level),
        placed=float(attempted),
        sipp_succeeded=float(result.successful),
        sipp_failed=float(result.failed + max(0, calls - attempted)),  # never started: failed too
        capture_dropped=float(sip_counts.dropped + rtp_counts.dropped),
        rtp_packets=float(rtp_counts.captured),
        server_alive=float(alive),
        cpu_core_share=busy / wall,
        cpu_ms_per_call_second=1000 * busy / row["call_seconds"] if row["call_seconds"] else float("nan"),
        rss_mb=memory.peak,
        mb_per_call=(memory.peak - idle_rss) / level,
    )
    row["passed"] = float(
        row["sipp_failed"] == 0
        and row["failed"] == 0
        and row["calls"] == calls
        and row["spacing_p99_ms"] < 25
    )
    return row


def _commit() -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO)
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, cwd=REPO
    )
    dirty = " with uncommitted changes" if changed.stdout.strip() else ""  # not exactly that commit
    return (commit.stdout.strip() or "unknown") + dirty


def header_line(workers: int, command: str) -> str:
    return (
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"date {time.strftime('%Y-%m-%d')}; commit {_commit()}; "
        f"workers {workers}{' (one per core)' if workers == 0 else ''}; command `{command}`"
    )


def markdown(rows: list[dict[str, float]], header: str) -> str:
    lines = [
        header,
        "",
        "| calls held | placed | failed SIPp / capture | held max / median | setup p50/p99 ms "
        "| RTP spacing p50/p99/p99.9/max ms | > 30 ms | key end -> BYE p50/p99 ms "
        "| server CPU (share of a core) | CPU ms per call-second | RSS MB peak | MB per call "
        "| capture drops | pass |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['level']:.0f} | {r['placed']:.0f} | {r['sipp_failed']:.0f} / {r['failed']:.0f} "
            f"| {r['held_max']:.0f} / {r['held_median']:.0f} "
            f"| {r['setup_p50_ms']:.1f} / {r['setup_p99_ms']:.1f} "
            f"| {r['spacing_p50_ms']:.1f} / {r['spacing_p99_ms']:.1f} / {r['spacing_p999_ms']:.1f} "
            f"/ {r['spacing_max_ms']:.1f} | {r['spacing_over_30ms_pct']:.3f} % "
            f"| {r['key_to_bye_p50_ms']:.1f} / {r['key_to_bye_p99_ms']:.1f} "
            f"| {r['cpu_core_share']:.2f} | {r['cpu_ms_per_call_second']:.2f} | {r['rss_mb']:.0f} "
            f"| {r['mb_per_call']:.2f} | {r['capture_dropped'] + r['seq_gaps']:.0f} "
            f"| {'yes' if r['passed'] else 'no'} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--levels", type=int, nargs="+", default=[200, 400, 600], help="calls held at once")
    parser.add_argument("--workers", type=int, default=1, help="ivr serve --workers (0: one per core)")
    parser.add_argument(
        "--calls", type=int, default=None, help="calls per level (SIPp -m; default 5 x level)"
    )
    parser.add_argument("--server-args", default="", help='more ivr serve options, e.g. "--stall-ms 100"')
    parser.add_argument("--rtp-base", type=int, default=24000, help="first RTP port of the server")
    parser.add_argument("--append", type=Path, default=None, help="append the table to this file")
    parser.add_argument("--keep", action="store_true", help="keep the captures and logs")
    args = parser.parse_args()
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"ivr-real-callers-{os.getpid()}"
    header = header_line(args.workers, f"python -m bench.real_callers {shlex.join(sys.argv[1:])}")
    rows = []
    for level in args.levels:
        workdir = tmp / f"level-{level}"
        row = run_level(
            level,
            workdir,
            workers=args.workers,
            calls=args.calls,
            server_args=tuple(shlex.split(args.server_args)),
            rtp_base=args.rtp_base,
        )
        rows.append(row)
        print({k: round(v, 3) for k, v in row.items()}, flush=True)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    table = markdown(rows, header)
    print(table)
    if args.keep:
        print(f"captures and logs: {tmp}")
    if args.append is not None:
        with open(args.append, "a", encoding="utf-8") as out:
            out.write(
                f"\n### Real callers (speech, one key, the IVR hangs up), timed on the wire, "
                f"{time.strftime('%Y-%m-%d %H:%M')}\n\n{table}\n"
            )
    return 0 if all(r["passed"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
