"""The real-caller soak's pure parts, with crafted inputs: windows and rotated files, a window's
calls and pauses from crafted captures, collector pauses from two /metrics texts, stall lines,
and the table and verdict. No sockets, no tcpdump, no SIPp (tests/test_real_soak_smoke.py runs it)."""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import generate_latest

from bench.caller_pcap import pcap_file_header
from bench.soak_metrics import (
    Histogram,
    Scrape,
    pauses_between,
    scrapes_around,
    stall_lines,
    stalls_between,
)
from bench.soak_verdict import WindowRow, markdown, merged, verdict, worst
from bench.soak_window import Pause, Window, analyse_window, files_for, pauses, spent, windows, written_past
from ivr.ops.metrics import Metrics
from tests.test_wire_capture import SERVER, _Wire

# --- windows and the files of a rotated capture --------------------------------------------------


def test_windows_are_back_to_back_and_followed_past_their_end() -> None:
    plan = windows(1000.0, 60.0, 3, tail=20.0)
    assert [(w.index, w.start, w.end, w.until) for w in plan] == [
        (0, 1000.0, 1060.0, 1080.0),
        (1, 1060.0, 1120.0, 1140.0),
        (2, 1120.0, 1180.0, 1200.0),
    ]


FILES = [(Path("a"), 99.5), (Path("b"), 120.2), (Path("c"), 140.1), (Path("d"), None)]


def test_a_window_reads_the_files_that_hold_its_span() -> None:
    assert files_for(FILES, 100.0, 130.0) == [Path("a"), Path("b")]
    assert files_for(FILES, 121.0, 150.0) == [Path("b"), Path("c")]  # a ended at 120.2
    assert files_for(FILES, 141.0, 160.0) == [Path("c")]  # d has no packet yet
    assert files_for(FILES, 50.0, 90.0) == []


def test_a_window_is_read_once_a_file_begins_after_its_tail() -> None:
    assert written_past(FILES, 130.0) and written_past(FILES, 140.0)
    assert not written_past(FILES, 140.1) and not written_past(FILES, 150.0)


def test_files_go_once_no_window_needs_them() -> None:
    assert spent(FILES, 120.0) == []  # a holds packets up to 120.2
    assert spent(FILES, 121.0) == [Path("a")]
    assert spent(FILES, 200.0) == [Path("a"), Path("b")]  # c may still grow: d has no stamp yet


def test_pauses_of_many_calls_at_one_moment_are_one_hold_up() -> None:
    gap = np.array([45.0, 300.0, 280.0, 21.0, np.nan, 60.0])
    at = np.array([10.0, 20.05, 20.0, 20.1, 0.0, 30.0])
    assert pauses(gap, at) == [Pause(20.05, 300.0, 2), Pause(30.0, 60.0, 1), Pause(10.0, 45.0, 1)]
    assert pauses(np.array([np.nan]), np.array([np.nan])) == []


# --- a window's calls from rotated captures ------------------------------------------------------


def _stamp(record: bytes) -> float:
    seconds, micros = struct.unpack_from("<II", record)
    return seconds + micros / 1e6


def _rotated(records: list[bytes], at: float, tmp_path: Path, name: str, snaplen: int) -> list[Path]:
    """The records as two files of a rotated capture, the second beginning at ``at``."""
    records = sorted(records, key=_stamp)
    paths = [tmp_path / f"{name}-1.pcap", tmp_path / f"{name}-2.pcap"]
    paths[0].write_bytes(pcap_file_header(snaplen) + b"".join(r for r in records if _stamp(r) < at))
    paths[1].write_bytes(pcap_file_header(snaplen) + b"".join(r for r in records if _stamp(r) >= at))
    return paths


def test_a_window_holds_the_calls_that_began_in_it_with_all_their_packets(tmp_path: Path) -> None:
    wire = _Wire()
    wire.call("before", 9.0, 20004)  # began in the window before: not this one's, though it ends here
    wire.hangup("before", 11.0)
    wire.call("a", 10.5, 20000)
    # Its prompt runs on into the next file; the IVR's clock starts over once (300 ms, a jump).
    for n, (at, stamp) in enumerate([(11.9, 0), (11.92, 160), (12.22, 2560), (12.24, 2720)]):
        wire.server_audio(at, 20000, n, stamp, ssrc=7, marker=n == 0)
    wire.key(13.0, 20000, 1, 0)
    wire.hangup("a", 13.03)
    wire.call("after", 12.5, 20002)  # the next window's
    wire.server_audio(12.6, 20002, 0, 0, ssrc=8, marker=True)
    wire.hangup("after", 14.0)
    window = Window(0, 10.0, 12.0, 32.0)
    sip = _rotated(wire.sip, 12.1, tmp_path, "sip", 65535)
    rtp = _rotated(wire.rtp, 12.1, tmp_path, "rtp", 64)
    figures, found = analyse_window(window, sip, rtp, SERVER)
    assert (figures["calls"], figures["completed"], figures["failed"]) == (1, 1, 0)
    assert figures["prompt_gap_max_ms"] == pytest.approx(300) and figures["prompt_gap_at"] == 12.22
    assert figures["stamp_jumps"] == 1 and figures["spacing_max_ms"] == pytest.approx(20)
    assert figures["key_to_bye_calls"] == 1
    assert found == [Pause(12.22, pytest.approx(300), 1)]


# --- collector pauses and stalls -----------------------------------------------------------------


def _scrape(metrics: Metrics, at: float) -> Scrape:
    return Scrape.parse(generate_latest(metrics.registry).decode(), at)


def test_collector_pauses_between_two_scrapes_of_the_servers_metrics() -> None:
    metrics = Metrics()
    for seconds in (0.0004, 0.0004, 0.0015):
        metrics.gc_pause.labels("0").observe(seconds)
    metrics.gc_pause.labels("1").observe(0.003)
    before = _scrape(metrics, 100.0)
    metrics.gc_pause.labels("0").observe(0.0008)
    metrics.gc_pause.labels("2").observe(0.15)  # the first of its generation: a new label set
    metrics.gc_pause.labels("2").observe(0.07)
    metrics.loop_stall.observe(0.3)
    after = _scrape(metrics, 105.0)
    figures = pauses_between(before, after)
    assert (figures["gc0_count"], figures["gc0_max_ms"], figures["gc0_over_50ms"]) == (1, 1, 0)
    assert (figures["gc1_count"], figures["gc1_max_ms"]) == (0, 0)
    assert (figures["gc2_count"], figures["gc2_max_ms"], figures["gc2_over_50ms"]) == (2, 200, 2)
    assert figures["gc2_total_ms"] == pytest.approx(220)
    assert (figures["stalls_timed"], figures["stall_timed_max_ms"]) == (1, 500)
    metrics.gc_pause.labels("2").observe(0.9)  # beyond the last bucket
    assert math.isinf(pauses_between(after, _scrape(metrics, 110.0))["gc2_max_ms"])
    assert pauses_between(after, after)["gc0_count"] == 0


def test_histogram_differences_need_the_same_buckets() -> None:
    earlier = Histogram((0.1, math.inf), (1, 2), 0.3)
    with pytest.raises(ValueError):
        Histogram((0.2, math.inf), (1, 3), 0.5).since(earlier)
    with pytest.raises(ValueError):
        earlier.over(0.05)
    assert Histogram().longest() == 0 and Histogram().over(0.05) == 0


def test_the_scrapes_around_a_moment() -> None:
    scrapes = [Scrape(at, {}, Histogram()) for at in (100.0, 105.0, 110.0)]
    around = scrapes_around(scrapes, 104.0, 105.5)
    assert around is not None and (around[0].at, around[1].at) == (100.0, 110.0)
    assert scrapes_around(scrapes, 99.0, 100.0) is None and scrapes_around(scrapes, 109.0, 111.0) is None


LOG: list[dict[str, object]] = [
    {"event": "call ended", "timestamp": "2026-01-01T00:00:01.000000Z"},
    {
        "event": "event loop stalled",
        "timestamp": "2026-01-01T00:00:02.100000Z",
        "where": "/x/ivr/store/sqlite.py:120 in commit <- /x/a.py:1 in f",
    },
    {"event": "event loop stall over", "timestamp": "2026-01-01T00:00:02.400000Z", "lasted_ms": 380},
    {"event": "event loop stalled", "timestamp": "2026-01-01T00:01:30.000000Z", "where": "/y/b.py:2 in g"},
]
T0 = 1767225600.0  # 2026-01-01T00:00:00Z


def test_stall_lines_of_the_json_log_by_time() -> None:
    lines = stall_lines(LOG)
    assert [(s.at - T0, s.event, s.where) for s in lines] == [
        (pytest.approx(2.1), "event loop stalled", "sqlite.py:120 in commit"),
        (pytest.approx(2.4), "event loop stall over", ""),
        (pytest.approx(90.0), "event loop stalled", "b.py:2 in g"),
    ]
    assert stalls_between(lines, T0, T0 + 60) == {"stalls_logged": 1, "stall_logged_max_ms": 380}
    assert stalls_between(lines, T0 + 60, T0 + 120) == {"stalls_logged": 1, "stall_logged_max_ms": 0}


# --- table and verdict ---------------------------------------------------------------------------

QUIET = {f"gc{g}_{k}": 0.0 for g in "012" for k in ("count", "max_ms", "over_50ms", "total_ms")}


def _row(index: int, rss: float, gap: float, found: list[Pause], **more: float) -> WindowRow:
    start = T0 + 60 * index
    figures = dict(QUIET, calls=500.0, completed=500.0, failed=0.0, sipp_failed=0.0, sipp_succeeded=500.0)
    figures.update(setup_p99_ms=3.0, spacing_p99_ms=21.0, spacing_p999_ms=24.0, spacing_max_ms=30.0)
    figures.update(prompt_gap_max_ms=gap, prompt_gap_at=start + 30, between_gap_max_ms=math.nan)
    figures.update(stamp_jumps=0.0, key_to_bye_p99_ms=8.0, cpu_core_share=0.5, rss_mb=rss)
    figures.update(machine_busy_cores=1.25, analysis_cpu_s=2.0 + index, analysis_peak_mb=300.0)
    figures.update(rss_peak_mb=rss + 1, stalls_logged=0.0, stall_logged_max_ms=0.0, stalls_timed=0.0)
    figures.update(gc0_count=300.0, gc0_max_ms=2.0, **more)
    return WindowRow(Window(index, start, start + 60, start + 80), figures, found)


def test_a_group_of_windows_adds_counts_and_keeps_the_worst() -> None:
    rows = [_row(0, 100, 25, []), _row(1, 104, 280, [], gc2_count=1.0, gc2_max_ms=200.0, failed=2.0)]
    group = merged(rows)
    assert (group["calls"], group["failed"], group["gc0_count"], group["gc2_count"]) == (1000, 2, 600, 1)
    assert (group["prompt_gap_max_ms"], group["rss_mb"], group["rss_peak_mb"]) == (280, 104, 105)
    assert group["cpu_core_share"] == 0.5 and math.isnan(group["between_gap_max_ms"])
    assert (group.window.start, group.window.end) == (T0, T0 + 120)
    assert worst(rows) is rows[1]


def test_the_table_has_a_line_per_window_or_group_and_the_worst() -> None:
    rows = [_row(k, 100 + k, 25 + k, []) for k in range(6)]
    table = markdown(rows, "Machine: test")
    assert table.startswith("Machine: test\n\n| window | minutes |")
    assert (
        "\n| 1 | 0-1 | 500 | 0 / 0 | 3.0 | 21.0 / 24.0 / 30.0 | 25.0 | - | 0 | 8.0 | 0.50 | 1.25 | 100 "
        in table
    )
    assert "| 300 / 0 / 0 | <= 2 / - / - | 0 |" in table
    assert "\n| worst: 6 | 5-6 |" in table
    grouped = markdown(rows, "Machine: test", group=5)
    assert "\n| 1-5 | 0-5 | 2500 |" in grouped and "\n| 6 | 5-6 | 500 |" in grouped


def test_the_verdict_names_what_was_seen_at_the_worst_pauses() -> None:
    collected = Pause(T0 + 90.2, 250.0, 180)  # minute 1: a generation 2 collection then
    stalled = Pause(T0 + 150.5, 120.0, 170)  # minute 2: a stall logged then
    unexplained = Pause(T0 + 200.0, 70.0, 1)
    rows = [
        _row(0, 100, 30, []),
        _row(1, 101, 250, [collected], gc2_count=1.0, gc2_max_ms=math.inf),
        _row(2, 103, 120, [stalled, unexplained], stalls_logged=1.0, stall_logged_max_ms=110.0),
    ]
    metrics = Metrics()
    scrapes = [_scrape(metrics, T0), _scrape(metrics, T0 + 85)]
    metrics.gc_pause.labels("2").observe(0.25)
    scrapes += [_scrape(metrics, T0 + 95), _scrape(metrics, T0 + 300)]
    stalls = [
        *stall_lines(
            [
                {
                    "event": "event loop stalled",
                    "timestamp": "2026-01-01T00:02:30.480Z",
                    "where": "/x/y.py:3 in h",
                }
            ]
        )
    ]
    text = verdict(rows, scrapes, stalls, alive=True)
    assert "Calls: 1500 placed (capture), 1500 completed, failed: 0 by the capture, 0 by SIPp." in text
    assert "RSS 100 MB after the first window, 103 MB after the last (+3 MB, trend +90 MB per hour)" in text
    assert "Longest gap inside a prompt: 250 ms, window 2 (minute 1.5): OVER the 60 ms target." in text
    assert "Longest gap between prompts: none" in text
    assert "gen 2: 1, longest > 200 ms" in text
    assert "took up to 4.0 s of CPU and 300 MB" in text
    lines = text.splitlines()
    first = next(line for line in lines if line.startswith("- minute 1.50"))
    assert "250 ms in 180 calls at once" in first and "a generation 2 collection of over 200 ms" in first
    second = next(line for line in lines if line.startswith("- minute 2.51"))
    assert "a stall caught in y.py:3 in h" in second and "collection" not in second.split("around it")[1]
    third = next(line for line in lines if line.startswith("- minute 3.33"))
    assert "neither the collector nor the stall watch saw anything then" in third
    calm = verdict([_row(0, 100, 22, [])], [], [], alive=True)
    assert "within the 60 ms target" in calm and "No gap inside a prompt reached 40 ms." in calm
