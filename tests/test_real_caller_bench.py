"""A small run of the real-caller benchmark, so that its harness never rots (the levels are run by
hand): 10 calls held, 20 placed, against a real ``ivr serve``, timed from a tcpdump capture.

Only what must hold at any speed is asserted: every call completed, the capture saw each call's
speech, key and prompt, and every figure exists. Speed targets belong to the benchmark."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from bench.real_callers import header_line, markdown, run_level

pytestmark = pytest.mark.sipp


def test_ten_held_calls_timed_on_the_wire(tmp_path: Path) -> None:
    row = run_level(10, tmp_path, calls=20, rtp_base=26000)
    assert row["server_alive"] == 1
    assert (row["placed"], row["sipp_succeeded"], row["sipp_failed"]) == (20, 20, 0), row
    assert (row["calls"], row["answered"], row["completed"], row["failed"]) == (20, 20, 20, 0), row
    # The capture saw every caller speak and press its key, and every call's prompt.
    assert row["calls_with_caller_audio"] == row["calls_with_key"] == row["calls_with_prompt"] == 20, row
    assert row["key_to_bye_calls"] == 20, row  # key end -> BYE for every call
    assert 0 < row["held_median"] <= row["held_max"] <= 10, row
    figures = ["setup_p50_ms", "setup_p99_ms", "spacing_p50_ms", "spacing_p99_ms", "spacing_p999_ms"]
    figures += ["spacing_max_ms", "key_to_bye_p50_ms", "key_to_bye_p99_ms"]
    assert all(math.isfinite(row[name]) for name in figures), row
    assert row["spacing_intervals"] > 20 * 200, row  # most of each 245-packet prompt
    assert row["call_seconds"] > 20 * 5 and row["cpu_core_share"] > 0 and row["rss_mb"] > 0, row
    table = markdown([row], header_line(1, "python -m bench.real_callers --levels 10 --calls 20"))
    assert "\n| 10 | 20 | 0 / 0 | 10 / " in table, table
