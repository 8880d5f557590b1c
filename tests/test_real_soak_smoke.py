"""A short run of the real-caller soak, so that its harness never rots (the hour is run by hand):
10 calls held for two 20 s windows against one real ``ivr serve``, timed from rotated tcpdump
captures, /metrics read throughout.

Only what must hold at any speed is asserted: both windows have rows with every call completed
and their figures, the collector's pauses were read, the captures were deleted as the windows
were done, and the table and verdict come out. Timing targets belong to the soak."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.real_soak import SoakConfig, load_line, run_soak
from bench.soak_verdict import markdown, verdict

pytestmark = pytest.mark.sipp


def test_two_windows_of_ten_held_calls(tmp_path: Path) -> None:
    config = SoakConfig(calls=10, minutes=40 / 60, window=20.0, rtp_base=28000)
    result = run_soak(config, tmp_path / "soak", rows_file=tmp_path / "rows.jsonl")
    assert result.alive
    assert [row.window.index for row in result.rows] == [0, 1]
    for row in result.rows:
        assert row["calls"] > 0 and row["completed"] == row["calls"] and row["failed"] == 0, row.figures
        assert row["calls_with_prompt"] == row["calls"] == row["key_to_bye_calls"], row.figures
        figures = ["setup_p99_ms", "spacing_p99_ms", "prompt_gap_max_ms", "key_to_bye_p99_ms", "rss_mb"]
        assert all(math.isfinite(row[name]) for name in figures), row.figures
        assert row["cpu_core_share"] > 0 and row["analysis_cpu_s"] > 0, row.figures
        assert "gc2_max_ms" in row.figures and "stalls_logged" in row.figures, row.figures
    assert sum(row["calls"] for row in result.rows) <= result.sipp_created
    assert sum(row["sipp_failed"] for row in result.rows) == 0
    assert len(result.scrapes) >= 4  # at the start, at each window's edge, in between
    assert not (tmp_path / "soak" / "captures").exists()
    assert len((tmp_path / "rows.jsonl").read_text().splitlines()) == 2
    table = markdown(result.rows, "Machine: test\n\n" + load_line(config))
    assert "\n| 1 | 0-0.3 | " in table and "\n| 2 | 0.3-0.7 | " in table and "\n| worst: " in table
    text = verdict(result.rows, result.scrapes, result.stalls, alive=result.alive)
    assert "Longest gap inside a prompt: " in text and "Collector pauses" in text
