"""``ivr prompts render``: every static prompt rendered once; a second run renders nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.server import REPO


def test_render_then_everything_comes_from_the_cache(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "ivr",
        "prompts",
        "render",
        "flows/demo.yaml",
        "--cache-dir",
        str(tmp_path),
    ]
    first = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "3 prompts ready (3 rendered now, 0 from the cache)" in first.stdout
    second = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert "3 prompts ready (0 rendered now, 3 from the cache)" in second.stdout
    assert len(list((tmp_path / "tts").glob("*.wav"))) == 3


def test_an_invalid_flow_is_reported_not_rendered(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("flow: x\nlanguage: en\nstart: nowhere\nsteps: {}\n")
    result = subprocess.run(
        [sys.executable, "-m", "ivr", "prompts", "render", str(broken), "--cache-dir", str(tmp_path / "c")],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1 and "broken.yaml:" in result.stderr
