"""A handful of speaking calls through the speech bench, so the harness never rots (the full run
with 100 callers is made by hand and tabled in BENCHMARKS.md). Asserts what must hold on any
machine: every call answered and routed right, latency measured; no timing thresholds."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from tests.server import REPO


def test_speech_bench_places_calls_and_measures_the_answer(tmp_path: Path) -> None:
    figures, table = tmp_path / "figures.json", tmp_path / "bench.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench.speech_calls", "--levels", "3", "--seconds", "4",
         "--variants", "default,early", "--rtp-base", "44000",
         "--json", str(figures), "--append", str(table)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {row["variant"]: row for row in json.loads(figures.read_text())}
    for row in rows.values():
        assert row["calls"] == row["answered"] == row["answers"] == row["right"] == 3, json.dumps(row)
        assert row["failures"] == 0 and row["recognitions"] == 3, row
        for name in ("latency_p50_ms", "latency_p95_ms", "decode_p50_ms"):
            assert math.isfinite(row[name]) and row[name] > 0, (name, row)
    assert rows["default"]["early"] == 0 and rows["early"]["early"] >= 1
    # The answer cannot come before the closing silence that the default waits for.
    assert rows["default"]["latency_p50_ms"] > 600
    text = table.read_text()
    assert "| 600 ms closing silence (default) | 3 | 3 | 3 | 3 | 0 |" in text
    assert "| early_match: 200ms | 3 | 3 | 3 | 3 | 0 |" in text
