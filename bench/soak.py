"""Soak run: keypad calls at a steady concurrency for a long time; memory must stay flat.

New calls start at a constant rate (concurrency / hold per second), so about ``--calls`` calls are
up at any moment. Each call is the capacity bench's keypad call (prompt, RFC 4733 keys after 4 s,
8 s in all), placed and measured by the independent receiver (tests/rtp_probe.py). The run is cut
into rounds (the receiver keeps every packet's arrival time, so a round bounds its memory); between
rounds the load drains for a few seconds. Per round: calls placed, answered, failed, setup p99,
RTP spacing p99/max, reply p95, and the server's RSS and CPU. The server's RSS is also sampled
every ``--sample`` seconds during the whole run.

    python -m bench.soak --calls 300 --minutes 60 [--append BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench.capacity import _cpu_seconds, _rss_mb, _server_pids
from tests.rtp_probe import probe_calls, summary
from tests.server import ivr_server

HOLD = 8.0


def _sample_rss(pids: list[int], every: float, stop: threading.Event, out: list[tuple[float, float]]) -> None:
    begin = time.monotonic()
    while not stop.wait(every):
        out.append((time.monotonic() - begin, _rss_mb(pids)))


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=300, help="concurrent calls to hold")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--round", type=float, default=5.0, help="minutes per round")
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between RSS samples")
    parser.add_argument("--append", type=Path, default=None, help="append the table to this file")
    args = parser.parse_args()
    interval = HOLD / args.calls
    per_round = int(args.round * 60 / interval)
    rounds = max(1, round(args.minutes / args.round))
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"ivr-soak-{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, float]] = []
    samples: list[tuple[float, float]] = []
    begin = time.monotonic()
    commit = _commit()  # the code the server runs: taken now, the tree may move during the hour
    with ivr_server(tmp, "--log-level", "warning", rtp_base=20000) as server:
        time.sleep(1.0)
        pids = _server_pids(server.process.pid)
        rss_start = _rss_mb(pids)
        stop = threading.Event()
        sampler = threading.Thread(target=_sample_rss, args=(pids, args.sample, stop, samples), daemon=True)
        sampler.start()
        try:
            for number in range(1, rounds + 1):
                cpu0, started = _cpu_seconds(pids), time.monotonic()
                records = probe_calls(
                    server.address, calls=per_round, hold=HOLD, start_interval=interval,
                    keys="1#", keys_at=4.0, deadline=args.round * 60 + HOLD + 60,
                )  # fmt: skip
                wall = time.monotonic() - started
                row = summary(records)
                row.update(
                    round=number,
                    failed=row["calls"] - row["answered"],
                    cpu_core_share=(_cpu_seconds(pids) - cpu0) / wall,
                    rss_mb=_rss_mb(pids),
                    minute=(time.monotonic() - begin) / 60,
                )
                rows.append(row)
                print({k: round(v, 2) for k, v in row.items()}, flush=True)
        finally:
            stop.set()
            sampler.join()
        alive = server.process.poll() is None
        stalls = stall_summary(server.log_lines())
    table = _markdown(rows)
    failed = sum(int(r["failed"]) for r in rows)
    rss = [mb for _, mb in samples] or [rss_start]
    verdict = (
        f"Server alive at the end: {'yes' if alive else 'NO'}. Calls: {sum(int(r['calls']) for r in rows)},"
        f" failed: {failed}. RSS: {rss_start:.0f} MB before the load, {min(rss):.0f}-{max(rss):.0f} MB"
        f" during it ({len(rss)} samples every {args.sample:.0f} s), {rss[-1]:.0f} MB at the end."
    )
    verdict += f" {stalls}"
    print(table)
    print(verdict)
    if args.append is not None:
        with open(args.append, "a", encoding="utf-8") as out:
            out.write(
                f"\n### Soak, {args.calls} concurrent keypad calls for {args.minutes:.0f} minutes,"
                f" {time.strftime('%Y-%m-%d %H:%M')}\n\n"
                f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()};"
                f" commit {commit}\n\nCommand: `python -m bench.soak {' '.join(sys.argv[1:])}`\n\n"
                f"{table}\n\n{verdict}\n"
            )
    return 0 if alive and failed == 0 else 1


def stall_summary(log: list[dict[str, object]]) -> str:
    """What the server's stall watch logged: how often the loop stopped, how long, and where."""
    lasted = [float(str(line["lasted_ms"])) for line in log if line.get("event") == "event loop stall over"]
    where = collections.Counter(
        str(line.get("where", "?")).split(" <- ")[0].rsplit("/", 1)[-1]
        for line in log
        if line.get("event") == "event loop stalled"
    )
    if not lasted and not where:
        return "Event loop stalls (100 ms or more): none."
    places = "; ".join(f"{place} ({count}x)" for place, count in where.most_common(3))
    return (
        f"Event loop stalls (100 ms or more): {max(len(lasted), sum(where.values()))},"
        f" longest {max(lasted, default=0):.0f} ms; caught in: {places}."
    )


def _markdown(rows: list[dict[str, float]]) -> str:
    lines = [
        "| round | ended at min | calls | answered | failed | setup p99 ms | RTP p99/max ms"
        " | longest pause in / between prompts ms, lost | reply p95 ms | server CPU (core) | RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['round']:.0f} | {r['minute']:.1f} | {r['calls']:.0f} | {r['answered']:.0f}"
            f" | {r['failed']:.0f}"
            f" | {r['setup_p99_ms']:.1f} | {r['spacing_p99_ms']:.1f} / {r['spacing_max_ms']:.1f}"
            f" | {r['within_max_ms']:.1f} / {r['between_max_ms']:.1f}, {r['lost_packets']:.0f}"
            f" | {r['reply_p95_ms']:.1f} | {r['cpu_core_share']:.2f} | {r['rss_mb']:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
