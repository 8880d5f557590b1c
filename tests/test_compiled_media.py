"""The compiled media plane (setup.py, mypyc) against its Python source, the reference.

The suite as a whole runs whatever the install built. These tests prove that the build is what
runs, that it behaves exactly as the source does on a long hostile session, and that the media
tests pass on the source too, so that neither path can rot unnoticed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from ivr import _compiled
from tests.server import REPO

REFERENCE = {**os.environ, "IVR_PURE_PYTHON": "1"}
COMPILED = {k: v for k, v in os.environ.items() if k != "IVR_PURE_PYTHON"}


def trace(env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "tests.media.stream_trace"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_the_install_built_the_media_plane_and_it_is_what_runs() -> None:
    # bash run.sh installs with mypyc; a build that silently fell back to Python fails here.
    assert _compiled.built(), "no compiled media modules: reinstall with `pip install -e .`"
    assert not _compiled.stale_modules(), "sources edited since the build: reinstall"
    assert trace(COMPILED)["compiled"] is True


def test_compiled_and_reference_streams_agree_on_every_byte() -> None:
    compiled, reference = trace(COMPILED), trace(REFERENCE)
    assert compiled.pop("compiled") is True and reference.pop("compiled") is False
    session = reference["rfc4733"]
    assert isinstance(session, dict) and len(session["events"]) >= 6  # keys heard: a real session
    assert compiled == reference


def test_media_tests_pass_on_the_reference() -> None:
    tests = ["tests/media", "tests/net/test_rtp_poller.py", "tests/test_media_clock.py"]
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
        cwd=REPO, env=REFERENCE, capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:]
    assert " passed" in out.stdout


def test_a_source_edited_after_the_build_is_found_stale(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    source, extension = package / "hot.py", package / f"hot{EXTENSION_SUFFIXES[0]}"
    source.write_text("X = 1\n")
    extension.write_bytes(b"")
    os.utime(source, (1000, 1000))
    os.utime(extension, (1000 + 1, 1000 + 1))
    assert _compiled.stale_modules(["pkg.hot"], tmp_path) == []  # built after the source
    os.utime(source, (1000 + 10, 1000 + 10))
    assert _compiled.stale_modules(["pkg.hot"], tmp_path) == ["pkg.hot"]
    os.utime(source, (1000 + 1 + _compiled.STALE_SLACK / 2,) * 2)
    assert _compiled.stale_modules(["pkg.hot"], tmp_path) == []  # one install's unpacking moment


def test_the_sources_first_finder_loads_python_source_for_compiled_modules_only() -> None:
    finder = _compiled.SourcesFirst()
    spec = finder.find_spec("ivr.media.stream", None)
    assert spec is not None and spec.origin is not None and spec.origin.endswith("ivr/media/stream.py")
    assert finder.find_spec("ivr.media.vad", None) is None  # not compiled: the normal import
