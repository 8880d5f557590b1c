"""Small runs of the capacity bench, so the harness never rots (the full ramp is run by hand)."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server import REPO


def _run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.capacity", *args], cwd=REPO, capture_output=True, text=True, timeout=240
    )


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_capacity_bench_runs_and_reports(tmp_path: Path) -> None:
    report, picture = tmp_path / "bench.md", tmp_path / "bench.png"
    result = _run_bench(
        "--load", "probe", "--levels", "10", "20", "--hold", "6", "--rate", "20",
        "--append", str(report), "--plot", str(picture),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    text = report.read_text()
    assert "| 10 | 10 |" in text and "| 20 | 20 |" in text  # every call answered at both levels
    assert "Capacity found: 20 concurrent calls." in text
    assert _is_png(picture)


def _numbers(cell: str) -> list[float]:
    return [float(part) for part in cell.replace("(", " ").replace(")", " ").replace("/", " ").split()]


@pytest.mark.sipp
def test_capacity_bench_with_sipp_load(tmp_path: Path) -> None:
    """SIPp places the calls; the receiver hears every call, presses its keys and times the reply."""
    report, picture = tmp_path / "bench.md", tmp_path / "bench.png"
    result = _run_bench(
        "--load", "sipp", "--levels", "10", "30", "--rate", "20",
        "--append", str(report), "--plot", str(picture),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    text = report.read_text()
    assert "load from SIPp" in text and "load sipp" in text
    rows = [line.split("|")[1:-1] for line in text.splitlines() if line.startswith(("| 10 |", "| 30 |"))]
    assert len(rows) == 2, text
    for cells in rows:
        level, attempted, succeeded, failed = (int(cells[i]) for i in range(4))
        # Every call answered, and ended by the IVR after its read-back: the keys got through.
        assert (attempted, succeeded, failed) == (level, level, 0), text
        setup, spacing, reply = _numbers(cells[4]), _numbers(cells[5]), _numbers(cells[7])
        streams, replies = _numbers(cells[6])
        assert (streams, replies) == (level, level), text  # every call's audio and reply heard
        assert all(math.isfinite(v) and v > 0 for v in setup + spacing + reply), text
        assert 15 < spacing[0] < 25, text  # the median packet comes every 20 ms
        assert spacing[0] <= spacing[1] <= spacing[2] and reply[0] <= reply[1]
        assert float(cells[8]) > 0 and float(cells[10]) > 0  # server CPU and RSS were read
    assert "Capacity found:" in text
    assert _is_png(picture)
