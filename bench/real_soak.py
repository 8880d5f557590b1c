"""A soak under the real-caller load: one ``ivr serve`` for an hour, callers that behave like
phones, and every figure of every minute taken from the wire.

The load is bench/real_callers.py's, held for the whole soak:

- one ``ivr serve`` throughout: the bench flow (a 4.9 s prompt, one key, hang up), --keypad-only,
  ``--log-format json`` (its stall watch's warnings are counted), and ``--http-port`` with an API
  token, so that /metrics can be read: ``ivr_gc_pause_seconds`` and ``ivr_event_loop_stall_seconds``;
- one SIPp throughout (sipp/bench_real_caller.xml, ``-l N -r N/6``, ``-m`` more than the soak can
  place): N calls up at once, a new one replacing each that ends; at the end SIGUSR1, SIPp's
  smooth quit (no new calls, those running end as usual). SIPp runs an hour without trouble;
  restarting it in rounds would empty the server and ramp it up again every round, which is not
  a soak;
- tcpdump on ``lo``, SIP whole and RTP cut to its headers, each rotating to a new file every few
  seconds (-G): one capture handle for the hour, so a rotation loses no packet.

The soak's time is cut into windows (60 s by default) back to back from SIPp's start, with no gap.
A window holds the calls whose INVITE came inside it, followed to their end
(bench/soak_window.py). Each is analysed once its files are closed, in a child process at
``nice -n 19``, one at a time, while the soak goes on; then the files no window needs any more are
deleted. At each window's end the soak reads the server's CPU time and RSS (/proc), the machine's
CPU time (/proc/stat: another process taking the cores shows here), SIPp's counters (its
-trace_stat file), /metrics and the new lines of the server's log; /metrics also every
``--scrape`` seconds in between, so that a pause inside a prompt can be set against what the
collector did within seconds of it. Table and verdict: bench/soak_verdict.py.

    python -m bench.real_soak --calls 200 --minutes 60 [--window 60] [--append BENCHMARKS.md]
        [--server-args "--stall-ms 50"] [--scrape 5] [--rows rows.jsonl] [--keep]

tcpdump needs root or CAP_NET_RAW, SIPp's pcap replay too (bash run.sh sets that up).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.capacity import _cpu_seconds, _rss_mb, _server_pids
from bench.real_callers import FLOW, FLOWS, RTP_PORTS, SCENARIO, TURNOVER, header_line
from bench.soak import stall_summary
from bench.soak_metrics import (
    STALL_OVER,
    STALLED,
    Scrape,
    StallLine,
    pauses_between,
    stall_lines,
    stalls_between,
)
from bench.soak_verdict import WindowRow, markdown, verdict
from bench.soak_window import (
    RETRANSMITTED,
    TAIL,
    Firsts,
    Pause,
    Window,
    spent,
    window_files,
    windows,
    written_past,
)
from bench.wire_capture import Tcpdump, call_captures, first_stamp, stop_captures
from tests.server import REPO, RunningServer, ivr_server
from tests.sipp_runner import SippProcess, find_free_udp_port, parse_stat_csv, start_sipp

TICK = 0.25  # seconds between the soak's looks at the clock, the server and the analysis


@dataclass(frozen=True)
class SoakConfig:
    calls: int  # held at once
    minutes: float
    window: float = 60.0  # seconds
    scrape: float = 5.0  # seconds between reads of /metrics
    tail: float = TAIL
    server_args: tuple[str, ...] = ()
    rtp_base: int = 22000  # 22000-23998: apart from bench/real_callers.py (24000) and the tests

    @property
    def count(self) -> int:
        return max(1, round(self.minutes * 60 / self.window))

    @property
    def rotate(self) -> int:
        """Seconds per capture file: a third of a window (at most 20), so a window reads little
        more than itself and its tail."""
        return max(2, min(20, int(self.window // 3)))


@dataclass(frozen=True)
class Mark:
    """What the soak read at a window's edge."""

    at: float
    server_cpu: float  # seconds
    machine: tuple[float, float]  # busy and all CPU time of the machine (/proc/stat jiffies)
    sipp: tuple[int, int]  # successful and failed calls so far
    scrape: Scrape


@dataclass
class SoakResult:
    rows: list[WindowRow]
    scrapes: list[Scrape]
    stalls: list[StallLine]
    stall_log: list[dict[str, object]]
    alive: bool
    sipp_created: int


def _busy_port(first: int, count: int) -> int | None:
    """A UDP port of the range that something holds (another server's calls), if any: two
    servers on one range would take each other's ports and share the RTP capture."""
    for port in range(first, first + count):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return port
    return None


def _machine_cpu() -> tuple[float, float]:
    fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle and iowait
    return sum(fields) - idle, sum(fields)


def _sipp_counts(stat: Path) -> tuple[int, int, int]:
    """Successful, failed and created calls from SIPp's -trace_stat file (its header and last row)."""
    try:
        with open(stat, "rb") as file:
            header = file.readline()
            file.seek(max(0, file.seek(0, os.SEEK_END) - 65536))
            rows = [row for row in file.read().splitlines() if row.strip()]
    except FileNotFoundError:
        return 0, 0, 0
    if not rows or rows[-1] == header.strip():
        return 0, 0, 0
    values = parse_stat_csv((header + rows[-1]).decode(errors="replace"))

    def number(name: str) -> int:
        return int(values.get(name) or 0)

    return number("SuccessfulCall(C)"), number("FailedCall(C)"), number("TotalCallCreated")


class _LogTail:
    """The server's JSON log, read on from where the last read stopped."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0

    def new_lines(self) -> list[dict[str, object]]:
        with open(self.path, "rb") as file:
            file.seek(self.offset)
            text = file.read()
        complete = text[: text.rfind(b"\n") + 1]
        self.offset += len(complete)
        lines = []
        for raw in complete.splitlines():
            with contextlib.suppress(json.JSONDecodeError, UnicodeDecodeError):
                line = json.loads(raw)
                if isinstance(line, dict):
                    lines.append(line)
        return lines


class _Files:
    """A rotated capture's files with their first stamps (read once each has one)."""

    def __init__(self, capture: Tcpdump) -> None:
        self.capture = capture
        self._first: dict[Path, float] = {}

    def firsts(self) -> Firsts:
        found: Firsts = []
        for path in self.capture.rotated_files():
            if path not in self._first:
                with contextlib.suppress(FileNotFoundError), open(path, "rb") as file:
                    stamp = first_stamp(file.read(40))
                    if stamp is not None:
                        self._first[path] = stamp
            found.append((path, self._first.get(path)))
        return found

    def delete(self, paths: list[Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)
            self._first.pop(path, None)


@dataclass
class _Analysis:
    """The child process reading one window."""

    window: Window
    process: subprocess.Popen[bytes]
    out: Path
    err: Path


@dataclass
class _Soak:
    config: SoakConfig
    workdir: Path
    server: RunningServer
    http_port: int
    keep: bool = False
    pids: list[int] = field(default_factory=list)
    scrapes: list[Scrape] = field(default_factory=list)
    stalls: list[StallLine] = field(default_factory=list)
    stall_log: list[dict[str, object]] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    extra: dict[int, dict[str, float]] = field(default_factory=dict)  # per window: CPU, RSS, SIPp, GC
    rows: list[WindowRow] = field(default_factory=list)
    peak: float = 0.0

    def __post_init__(self) -> None:
        self.pids = _server_pids(self.server.process.pid)
        self.log = _LogTail(self.server.log_path)
        self.stat = self.workdir / "sipp" / "stat.csv"

    # --- reading the server ---------------------------------------------------------------------

    def scrape(self) -> Scrape:
        url = f"http://127.0.0.1:{self.http_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                text = answer.read().decode()
        except OSError as error:  # a slow answer under load: the last scrape stands in
            print(f"/metrics not read: {error}", file=sys.stderr, flush=True)
            return self.scrapes[-1]
        found = Scrape.parse(text, time.time())
        self.scrapes.append(found)
        return found

    def read_log(self) -> None:
        lines = [line for line in self.log.new_lines() if line.get("event") in (STALLED, STALL_OVER)]
        self.stall_log += lines
        self.stalls += stall_lines(lines)

    def server_cpu(self) -> float:
        try:
            return _cpu_seconds(self.pids)
        except OSError:  # the server is gone: the soak says so; its figures end here
            return math.nan

    def server_rss(self) -> float:
        try:
            return _rss_mb(self.pids)
        except OSError:
            return math.nan

    def mark(self) -> Mark:
        successful, failed, _ = _sipp_counts(self.stat)
        scrape = self.scrape()
        return Mark(time.time(), self.server_cpu(), _machine_cpu(), (successful, failed), scrape)

    def close(self, window: Window, end: Mark) -> None:
        """A window's own figures (not the wire's): what the server and SIPp did in it."""
        self.read_log()
        start = self.marks[window.index]
        wall, rss = end.at - start.at, self.server_rss()
        figures = {
            "cpu_core_share": (end.server_cpu - start.server_cpu) / wall,
            "machine_busy_cores": (end.machine[0] - start.machine[0])
            / max(1.0, end.machine[1] - start.machine[1])
            * (os.cpu_count() or 1),
            "rss_mb": rss,
            "rss_peak_mb": max(self.peak, rss),
            "sipp_succeeded": float(end.sipp[0] - start.sipp[0]),
            "sipp_failed": float(end.sipp[1] - start.sipp[1]),
        }
        figures.update(pauses_between(start.scrape, end.scrape))
        figures.update(stalls_between(self.stalls, window.start, window.end))
        self.extra[window.index] = figures
        self.peak = 0.0

    # --- analysing windows ----------------------------------------------------------------------

    def analyse(self, window: Window, sip: _Files, rtp: _Files) -> _Analysis:
        sip_paths, rtp_paths = window_files(window, sip.firsts(), rtp.firsts())
        out, err = self.workdir / f"window-{window.index}.json", self.workdir / f"window-{window.index}.err"
        command = ["nice", "-n", "19", sys.executable, "-m", "bench.soak_window"]
        command += ["--server", f"{self.server.address[0]}:{self.server.address[1]}"]
        command += [
            "--window",
            str(window.index),
            f"{window.start:.6f}",
            f"{window.end:.6f}",
            f"{window.until:.6f}",
        ]
        command += ["--sip", *map(str, sip_paths), "--rtp", *map(str, rtp_paths)]
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            process = subprocess.Popen(command, stdout=stdout, stderr=stderr, cwd=REPO)
        return _Analysis(window, process, out, err)

    def collect(self, job: _Analysis, following: Window | None, sip: _Files, rtp: _Files) -> WindowRow:
        figures: dict[str, float] = {}
        found: list[Pause] = []
        if job.process.returncode == 0:
            answer = json.loads(job.out.read_text())
            figures, found = answer["figures"], [Pause(**p) for p in answer["pauses"]]
        else:
            print(
                f"window {job.window.index + 1} not analysed: {job.err.read_text()[-2000:]}", file=sys.stderr
            )
        figures.update(self.extra.pop(job.window.index))
        row = WindowRow(job.window, figures, found)
        self.rows.append(row)
        if not self.keep:
            job.out.unlink(missing_ok=True)
            job.err.unlink(missing_ok=True)
            if following is not None:
                sip.delete(spent(sip.firsts(), following.start - RETRANSMITTED))
                rtp.delete(spent(rtp.firsts(), following.start))
        return row


def _print_row(row: WindowRow) -> None:
    shown = {k: round(v, 3) for k, v in row.figures.items() if isinstance(v, float) and math.isfinite(v)}
    print(json.dumps({"window": row.window.index + 1, **shown}), flush=True)


def run_soak(
    config: SoakConfig, workdir: Path, *, keep: bool = False, rows_file: Path | None = None
) -> SoakResult:
    """The whole soak: server, captures, SIPp, windows analysed as they close."""
    busy = _busy_port(config.rtp_base, RTP_PORTS)
    if busy is not None:
        raise RuntimeError(f"UDP port {busy} is in use: another server on this RTP range? (--rtp-base)")
    workdir.mkdir(parents=True, exist_ok=True)
    http_port = find_free_udp_port(also_tcp=True)
    token = secrets.token_hex(16)  # 32 characters: ivr serve wants 16 or more with --http-port
    options = ["--flows", str(FLOWS), "--flow", FLOW, "--keypad-only", "--log-level", "warning"]
    options += ["--http-port", str(http_port), "--api-token", token, *config.server_args]
    rate = config.calls / TURNOVER
    seconds = config.count * config.window
    with ivr_server(workdir, *options, rtp_base=config.rtp_base) as server:
        time.sleep(1.0)  # prompt converted and cached
        soak = _Soak(config, workdir, server, http_port, keep=keep)
        soak.scrape()
        sip_capture, rtp_capture = call_captures(
            workdir / "captures",
            server.address[1],
            (config.rtp_base, config.rtp_base + RTP_PORTS - 1),
            rotate=config.rotate,
        )
        sip_capture.start()
        rtp_capture.start()
        sip, rtp = _Files(sip_capture), _Files(rtp_capture)
        sipp: SippProcess | None = None
        try:
            sipp = start_sipp(
                SCENARIO,
                f"{server.address[0]}:{server.address[1]}",
                calls=math.ceil(rate * (seconds + 60)),  # never reached: SIGUSR1 ends the soak
                rate=rate,
                limit=config.calls,
                timeout=seconds + 300,
                service=FLOW,
                workdir=workdir / "sipp",
            )
            begin = time.time()
            plan = windows(begin, config.window, config.count, config.tail)
            soak.marks.append(soak.mark())
            alive = _run(soak, sipp, plan, sip, rtp, rows_file)
        finally:
            if sipp is not None:
                sipp.stop()
            stop_captures(sip_capture, rtp_capture)
        alive = alive and server.process.poll() is None
        soak.read_log()
    # Whatever is left: the windows whose files were still open.
    for index, window in enumerate(plan):
        if index < len(soak.rows) or window.index not in soak.extra:
            continue
        job = soak.analyse(window, sip, rtp)
        job.process.wait()
        _emit(soak.collect(job, plan[index + 1] if index + 1 < len(plan) else None, sip, rtp), rows_file)
    created = _sipp_counts(soak.stat)[2]
    if not keep:
        shutil.rmtree(workdir / "captures", ignore_errors=True)
    return SoakResult(soak.rows, soak.scrapes, soak.stalls, soak.stall_log, alive, created)


def _emit(row: WindowRow, rows_file: Path | None) -> None:
    _print_row(row)
    if rows_file is not None:
        with open(rows_file, "a", encoding="utf-8") as out:
            record = {
                "window": asdict(row.window),
                "figures": row.figures,
                "pauses": [asdict(p) for p in row.pauses],
            }
            out.write(json.dumps(record) + "\n")


def _run(
    soak: _Soak, sipp: SippProcess, plan: list[Window], sip: _Files, rtp: _Files, rows_file: Path | None
) -> bool:
    """The soak's loop until every window is closed and SIPp has ended; False if the server died.
    A window is analysed as soon as both captures have moved past its tail, one at a time."""
    closed = analysed = 0
    job: _Analysis | None = None
    next_scrape = time.time() + soak.config.scrape
    quitting = False
    while True:
        time.sleep(TICK)
        now = time.time()
        soak.peak = max(soak.peak, soak.server_rss())
        server_alive = soak.server.process.poll() is None
        sipp_running = sipp.process.poll() is None
        if closed < len(plan) and (now >= plan[closed].end or not server_alive or not sipp_running):
            if now < plan[closed].end:  # cut short: the window ends now
                plan[closed:] = [Window(closed, plan[closed].start, now, now + soak.config.tail)]
            mark = soak.mark()
            soak.close(plan[closed], mark)
            soak.marks.append(mark)
            closed += 1
            next_scrape = now + soak.config.scrape
        elif now >= next_scrape and server_alive:
            soak.scrape()
            next_scrape = now + soak.config.scrape
        if closed == len(plan) and not quitting and sipp_running:
            os.kill(sipp.pid, signal.SIGUSR1)  # smooth quit: no new calls, the running ones end
            quitting = True
        if job is not None and job.process.poll() is not None:
            following = plan[analysed + 1] if analysed + 1 < len(plan) else None
            _emit(soak.collect(job, following, sip, rtp), rows_file)
            analysed += 1
            job = None
        if job is None and analysed < closed:
            window = plan[analysed]
            if written_past(sip.firsts(), window.until) and written_past(rtp.firsts(), window.until):
                job = soak.analyse(window, sip, rtp)
        if closed == len(plan) and not sipp_running:
            if job is not None:
                job.process.wait()
                following = plan[analysed + 1] if analysed + 1 < len(plan) else None
                _emit(soak.collect(job, following, sip, rtp), rows_file)
            # SIPp's last counts: with the calls that ended after the last window's edge.
            successful, failed, _ = _sipp_counts(soak.stat)
            last = soak.extra.get(len(plan) - 1)
            last = last if last is not None else soak.rows[-1].figures
            last["sipp_succeeded"] = float(successful - soak.marks[-2].sipp[0])
            last["sipp_failed"] = float(failed - soak.marks[-2].sipp[1])
            return server_alive


def load_line(config: SoakConfig) -> str:
    rate = config.calls / TURNOVER
    return (
        f"Load: {config.calls} calls held for {config.count * config.window / 60:g} min by one SIPp "
        f"(`-l {config.calls} -r {rate:g}`), each 6 s of speech then the key 1 (RFC 4733, same RTP "
        f"stream); IVR: a 4.9 s prompt, one key, hang up; one `ivr serve` throughout; "
        f"{config.window:.0f} s windows back to back, timed from tcpdump on lo rotating every "
        f"{config.rotate} s; /metrics every {config.scrape:.0f} s."
        + (f" Server options: `{shlex.join(config.server_args)}`." if config.server_args else "")
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=200, help="calls held at once")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--window", type=float, default=60.0, help="seconds per window")
    parser.add_argument("--scrape", type=float, default=5.0, help="seconds between reads of /metrics")
    parser.add_argument(
        "--group", type=int, default=0, help="windows per table line (0: 5 beyond 15 windows)"
    )
    parser.add_argument("--server-args", default="", help='more ivr serve options, e.g. "--stall-ms 50"')
    parser.add_argument("--rtp-base", type=int, default=22000, help="first RTP port of the server")
    parser.add_argument(
        "--rows", type=Path, default=None, help="append every window's row to this file (JSON lines)"
    )
    parser.add_argument("--append", type=Path, default=None, help="append the table and verdict to this file")
    parser.add_argument("--keep", action="store_true", help="keep the captures and logs")
    args = parser.parse_args()
    config = SoakConfig(
        args.calls, args.minutes, args.window, args.scrape,
        server_args=tuple(shlex.split(args.server_args)), rtp_base=args.rtp_base,
    )  # fmt: skip
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"ivr-real-soak-{os.getpid()}"
    # The code the server runs: taken now, the tree may move during the hour.
    header = (
        header_line(1, f"python -m bench.real_soak {shlex.join(sys.argv[1:])}") + "\n\n" + load_line(config)
    )
    result = run_soak(config, tmp, keep=args.keep, rows_file=args.rows)
    group = args.group or (5 if len(result.rows) > 15 else 1)
    table = markdown(result.rows, header, group)
    text = verdict(result.rows, result.scrapes, result.stalls, alive=result.alive)
    text += f"\n{stall_summary(result.stall_log)} SIPp placed {result.sipp_created} calls."
    print(table)
    print()
    print(text)
    if args.keep:
        print(f"captures and logs: {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.append is not None:
        with open(args.append, "a", encoding="utf-8") as out:
            out.write(
                f"\n### Soak under the real-caller load, {config.calls} calls for {args.minutes:.0f} "
                f"minutes, {time.strftime('%Y-%m-%d %H:%M')}\n\n{table}\n\n{text}\n"
            )
    failed = sum(r["failed"] + r["sipp_failed"] for r in result.rows)
    return 0 if result.alive and failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
