"""The README's first command: ``ivr demo`` must work offline and tell what both sides did."""

from __future__ import annotations

import subprocess
import sys

from tests.server import REPO


def test_demo_calls_the_flows_and_reports_both_sides() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ivr", "demo"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert out.rstrip().endswith("demo OK")
    assert "ivr: heard keys 1234" in out
    assert 'says "You entered one two three four.' in out
    assert "flow demo finished: resolved" in out
    assert "ivr: step opening_hours" in out
    assert "flow support finished: hung_up_by_caller" in out
    assert "heard the IVR speak" in out
