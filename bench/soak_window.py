"""One window of the real-caller soak: which capture files hold it, when it can be read, its figures.

The soak (bench/real_soak.py) captures for an hour with tcpdump rotating its files (-G), too much
to hold at once. Its time is cut into back-to-back windows; a window's calls are those whose
INVITE the capture saw inside it, and each is followed to its end, into the files after the
window: a window is read up to ``until`` (its end plus a tail longer than any call lasts). So
every call counts once, in the window it began in, with all of its packets.

A rotated file begins with its first packet's stamp (its name is when tcpdump rotated, which
trails the packets by the capture ring's block timeout or more) and ends where the next file
begins. A window can be read once both captures have a file that begins after ``until``: every
packet up to then has been written and its file closed. A file can go once the window before
the next one that needs it is done.

Reading a window is the heavy step (a minute of 200 calls is over a million packets), so the
soak runs it in a child process at the lowest priority (``nice -n 19 python -m
bench.soak_window ...``, which prints the window's figures as JSON), where it takes only what
the server and SIPp leave over.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bench.wire_calls import analyse_calls, calls_from_sip, sip_messages
from bench.wire_capture import UdpPackets, concat, ip_number, read_pcap, select

TAIL = 20.0  # seconds a window is followed past its end: SIPp gives up on a call after 15 s
PAUSE_MS = 40.0  # a gap inside a prompt at least this long is listed as a pause
TOGETHER = 0.25  # seconds: pauses of several calls ending this close are one hold-up of the sender
PAUSES_KEPT = 5  # the longest pauses of a window that are kept
RETRANSMITTED = 4.0  # seconds within which SIPp sends an unanswered INVITE again (500 ms, doubling)


@dataclass(frozen=True)
class Window:
    """The soak's window ``index``: calls that began in [start, end), followed until ``until``."""

    index: int
    start: float
    end: float
    until: float


def windows(begin: float, length: float, count: int, tail: float = TAIL) -> list[Window]:
    """``count`` back-to-back windows of ``length`` seconds from ``begin``."""
    return [
        Window(k, begin + k * length, begin + (k + 1) * length, begin + (k + 1) * length + tail)
        for k in range(count)
    ]


Firsts = list[tuple[Path, float | None]]  # a rotated capture's files, oldest first, with their first stamps


def files_for(files: Firsts, start: float, until: float) -> list[Path]:
    """The files that hold packets stamped from ``start`` to ``until``."""
    chosen = []
    for i, (path, first) in enumerate(files):
        if first is None or first > until:
            continue  # nothing written yet, or it all comes later
        following = [f for _, f in files[i + 1 :] if f is not None]
        if following and following[0] <= start:
            continue  # it all came before
        chosen.append(path)
    return chosen


def window_files(window: Window, sip: Firsts, rtp: Firsts) -> tuple[list[Path], list[Path]]:
    """The SIP and RTP files `analyse_window` reads for ``window``."""
    return files_for(sip, window.start - RETRANSMITTED, window.until), files_for(
        rtp, window.start, window.until
    )


def written_past(files: Firsts, until: float) -> bool:
    """Whether a capture has closed every file holding packets up to ``until``."""
    return any(first is not None and first > until for _, first in files)


def spent(files: Firsts, needed_from: float) -> list[Path]:
    """The files whose packets all came before ``needed_from``: no window left needs them."""
    gone = []
    for i, (path, _) in enumerate(files):
        following = [f for _, f in files[i + 1 :] if f is not None]
        if following and following[0] <= needed_from:
            gone.append(path)
    return gone


@dataclass(frozen=True)
class Pause:
    """Calls whose prompt paused at about the same moment: one hold-up of the sender shows in
    every call that was playing a prompt, a problem of one call in that call only."""

    at: float  # epoch seconds: when the longest of the gaps ended
    longest_ms: float
    calls: int


def pauses(gap_ms: np.ndarray, gap_at: np.ndarray, least_ms: float = PAUSE_MS) -> list[Pause]:
    """Per-call longest in-prompt gaps grouped into hold-ups (gaps over ``least_ms`` that ended
    within ``TOGETHER`` of each other), the longest first."""
    over = np.flatnonzero(~np.isnan(gap_ms) & (gap_ms >= least_ms))
    order = over[np.argsort(gap_at[over], kind="stable")]
    groups: list[list[int]] = []
    for i in order:
        if groups and gap_at[i] - gap_at[groups[-1][-1]] <= TOGETHER:
            groups[-1].append(int(i))
        else:
            groups.append([int(i)])
    found = []
    for group in groups:
        worst = max(group, key=lambda i: gap_ms[i])
        found.append(Pause(float(gap_at[worst]), float(gap_ms[worst]), len(group)))
    return sorted(found, key=lambda p: -p.longest_ms)


def _read(paths: list[Path], start: float, until: float) -> UdpPackets:
    parts = []
    for path in paths:
        packets = read_pcap(path.read_bytes())
        parts.append(select(packets, (packets.time >= start) & (packets.time <= until)))
    return concat(parts)


def analyse_window(
    window: Window, sip_files: list[Path], rtp_files: list[Path], server: tuple[str, int]
) -> tuple[dict[str, float], list[Pause]]:
    """The wire figures of the calls that began in ``window`` (bench/wire_calls.py's summary)
    and the pauses inside their prompts."""
    # From a little before the start: an INVITE sent again is not taken for a new call's.
    sip = _read(sip_files, window.start - RETRANSMITTED, window.until)
    server_sip = (ip_number(server[0]), server[1])
    calls = calls_from_sip(sip_messages(sip), server_sip)
    calls = [c for c in calls if window.start <= c.invite_at < window.end]
    del sip
    report = analyse_calls(calls, _read(rtp_files, window.start, window.until))
    figures = dict(report.summary)
    known = ~np.isnan(report.prompt_gap_ms)
    worst = int(np.argmax(np.where(known, report.prompt_gap_ms, -1.0))) if known.any() else -1
    figures["prompt_gap_at"] = float(report.prompt_gap_at[worst]) if worst >= 0 else math.nan
    return figures, pauses(report.prompt_gap_ms, report.prompt_gap_at)[:PAUSES_KEPT]


def main() -> int:
    parser = argparse.ArgumentParser(description="figures of one window of bench/real_soak.py, as JSON")
    parser.add_argument("--server", required=True, help="the IVR's SIP address, host:port")
    parser.add_argument(
        "--window", type=float, nargs=4, required=True, metavar=("INDEX", "START", "END", "UNTIL")
    )
    parser.add_argument("--sip", type=Path, nargs="*", default=[])
    parser.add_argument("--rtp", type=Path, nargs="*", default=[])
    args = parser.parse_args()
    host, port = args.server.rsplit(":", 1)
    index, start, end, until = args.window
    figures, found = analyse_window(
        Window(int(index), start, end, until), args.sip, args.rtp, (host, int(port))
    )
    # What reading the window cost, for the soak to report: it runs beside the load it measures.
    used = resource.getrusage(resource.RUSAGE_SELF)
    figures["analysis_cpu_s"] = used.ru_utime + used.ru_stime
    figures["analysis_peak_mb"] = used.ru_maxrss / 1024  # Linux: kB
    print(json.dumps({"figures": figures, "pauses": [asdict(p) for p in found]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
