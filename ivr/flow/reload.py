"""Hot reload: ``FlowRegistry`` serves the last good version of every flow in a directory.

- ``reload()`` re-checks only files whose modification time or size changed. A valid edit replaces
  the flow with one dictionary assignment (atomic for readers on the event loop and in threads); an
  invalid edit is rejected with the validator's messages in the log, and the last good version keeps
  serving. A deleted file stops being offered to new calls.
- Calls hold the ``Flow`` object they started with. Flows are immutable, so a call in progress
  finishes on its version whatever happens to the file.
- ``watch()`` polls modification times (portable, no inotify dependency); ``on_sighup()`` is what
  the server's SIGHUP handler calls.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from pathlib import Path

from ivr.flow.model import Flow, FlowError
from ivr.flow.validate import check_file
from ivr.logs import get_logger


@dataclass(frozen=True)
class _Stamp:
    mtime_ns: int
    size: int


@dataclass
class ReloadReport:
    loaded: list[str] = field(default_factory=list)
    rejected: dict[str, list[FlowError]] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.loaded or self.rejected or self.removed)


def _is_flow_file(path: Path) -> bool:
    return path.suffix == ".yaml" and not path.name.endswith(".tests.yaml")


class FlowRegistry:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._flows: dict[str, Flow] = {}  # flow name -> last good version
        self._files: dict[Path, str] = {}  # file -> the flow name it defines
        self._stamps: dict[Path, _Stamp] = {}
        self.errors: dict[Path, list[FlowError]] = {}  # files whose latest edit was rejected
        self.log = get_logger(component="flows")

    def get(self, name: str) -> Flow | None:
        """The current version of flow ``name``; hold on to it for the whole call."""
        return self._flows.get(name)

    def names(self) -> list[str]:
        return sorted(self._flows)

    def reload(self) -> ReloadReport:
        report = ReloadReport()
        seen: set[Path] = set()
        for path in sorted(self.directory.glob("*.yaml")):
            if not _is_flow_file(path):
                continue
            seen.add(path)
            try:
                stat = path.stat()
            except OSError:
                continue
            stamp = _Stamp(stat.st_mtime_ns, stat.st_size)
            if self._stamps.get(path) == stamp:
                continue
            self._stamps[path] = stamp
            flow, errors = check_file(path)
            if flow is None:
                self.errors[path] = errors
                report.rejected[str(path)] = errors
                kept = self._files.get(path)
                self.log.error(
                    "flow rejected",
                    file=str(path),
                    errors=[str(e) for e in errors],
                    still_serving=kept is not None,
                )
                continue
            self.errors.pop(path, None)
            old_name = self._files.get(path)
            if old_name is not None and old_name != flow.name:
                self._flows.pop(old_name, None)
            self._flows[flow.name] = flow  # the swap: new calls get this object from now on
            self._files[path] = flow.name
            report.loaded.append(flow.name)
            self.log.info("flow loaded", file=str(path), flow=flow.name)
        for path in [p for p in self._files if p not in seen]:
            name = self._files.pop(path)
            self._stamps.pop(path, None)
            self._flows.pop(name, None)
            report.removed.append(name)
            self.log.info("flow removed", file=str(path), flow=name)
        for path in [p for p in self.errors if p not in seen]:
            del self.errors[path]
            self._stamps.pop(path, None)
        return report

    def on_sighup(self) -> ReloadReport:
        """Re-check every file now (also ones whose timestamps did not change)."""
        self._stamps.clear()
        return self.reload()

    async def watch(self, interval: float = 2.0, stop: asyncio.Event | None = None) -> None:
        """Poll for changes until ``stop`` is set (or the task is cancelled)."""
        stop = stop or asyncio.Event()
        while not stop.is_set():
            self.reload()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
