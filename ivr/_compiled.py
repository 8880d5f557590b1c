"""Which modules may run compiled, and the way back to their Python source.

The media plane's per-packet modules are compiled with mypyc at install time (setup.py) and the
extensions sit beside their sources. Python prefers an extension over a ``.py`` of the same name,
which would make an edited source silently lose to an older build. So the finder below puts the
sources first, for all of these modules together, whenever

- ``IVR_PURE_PYTHON`` is set (the pure-Python reference, e.g. for the tests that compare both), or
- any of the sources is newer than its extension (edited since the last ``pip install -e .``).

All or none: the compiled modules call each other's classes directly, so a mix of compiled and
source modules would hold two different classes under one name.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

# Keep in step with setup.py: HOT_MODULES.
COMPILED = (
    "ivr.media.rtp",
    "ivr.media.g711",
    "ivr.media.goertzel",
    "ivr.media.dtmf",
    "ivr.media.jitter",
    "ivr.media.player",
    "ivr.media.source_latch",
    "ivr.media.stream",
    "ivr.net.rtp_transport",
    "ivr.net.media_clock",
    "ivr.call.rtp_leg",
)
sources_first_reason: str | None = None  # set by install(): why the sources run, if they do
STALE_SLACK = 2.0  # seconds: files unpacked by one install get times a moment apart
ROOT = Path(__file__).resolve().parent.parent


def _source(name: str, root: Path = ROOT) -> Path:
    return root.joinpath(*name.split(".")).with_suffix(".py")


def _extension(name: str, root: Path = ROOT) -> Path | None:
    source = _source(name, root)
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = source.with_suffix(suffix)
        if candidate.exists():
            return candidate
    return None


def stale_modules(names: Sequence[str] = COMPILED, root: Path = ROOT) -> list[str]:
    """Compiled modules whose source changed after they were built."""
    stale = []
    for name in names:
        extension = _extension(name, root)
        if extension is None:
            continue
        if _source(name, root).stat().st_mtime > extension.stat().st_mtime + STALE_SLACK:
            stale.append(name)
    return stale


def built() -> bool:
    """Whether extensions of the media plane exist at all (fresh or stale)."""
    return any(_extension(name) is not None for name in COMPILED)


def running_compiled() -> bool:
    """Whether the media plane runs from its compiled extensions (for logs and benchmarks)."""
    module = sys.modules.get("ivr.media.stream")
    return module is not None and not str(getattr(module, "__file__", "")).endswith(".py")


class SourcesFirst(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname not in COMPILED:
            return None
        return importlib.util.spec_from_file_location(fullname, _source(fullname))


def install() -> str | None:
    """Put the sources first when they must run; returns why, or None (compiled, or no build)."""
    if built():
        if os.environ.get("IVR_PURE_PYTHON"):
            reason = "IVR_PURE_PYTHON is set"
        else:
            stale = stale_modules()
            reason = f"{', '.join(stale)} changed since the build" if stale else ""
        if reason:
            global sources_first_reason
            sources_first_reason = reason
            sys.meta_path.insert(0, SourcesFirst())
            return reason
    return None
