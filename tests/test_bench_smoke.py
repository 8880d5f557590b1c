"""A small run of the capacity bench, so the harness never rots (the full ramp is run by hand)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.server import REPO


def test_capacity_bench_runs_and_reports(tmp_path: Path) -> None:
    report, picture = tmp_path / "bench.md", tmp_path / "bench.png"
    result = subprocess.run(
        [sys.executable, "-m", "bench.capacity", "--levels", "10", "20", "--hold", "6", "--rate", "20",
         "--append", str(report), "--plot", str(picture)],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    text = report.read_text()
    assert "| 10 | 10 |" in text and "| 20 | 20 |" in text  # every call answered at both levels
    assert "Capacity found: 20 concurrent calls." in text
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and picture.stat().st_size > 10_000
