"""Hot reload: valid edits swap in, invalid edits are rejected, calls keep their version."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from ivr.flow.conversation_tests import ScriptedPort
from ivr.flow.interpreter import Interpreter
from ivr.flow.port import SayResult
from ivr.flow.reload import FlowRegistry
from ivr.flow.steps.control import SayStep
from ivr.flow.steps.ending import HangupStep

FLOWS = Path(__file__).parents[2] / "flows"


def _touch_later(path: Path, text: str) -> None:
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 10**9, before + 10**9))  # a second later, whatever the clock's resolution


def test_reload_swaps_valid_edits_and_keeps_the_last_good_version(tmp_path: Path) -> None:
    shutil.copy(FLOWS / "demo.yaml", tmp_path / "demo.yaml")
    (tmp_path / "demo.tests.yaml").write_text("cases: []\n", encoding="utf-8")  # not a flow
    registry = FlowRegistry(tmp_path)
    report = registry.reload()
    assert report.loaded == ["demo"] and registry.names() == ["demo"]
    first = registry.get("demo")
    assert first is not None

    assert not registry.reload().changed  # nothing touched, nothing re-checked

    path = tmp_path / "demo.yaml"
    original = path.read_text(encoding="utf-8")
    _touch_later(path, original.replace("next: read_back", "next: read_bak"))
    report = registry.reload()
    assert list(report.rejected) == [str(path)]
    assert any("unknown step 'read_bak'" in str(e) for e in report.rejected[str(path)])
    assert registry.get("demo") is first  # the last good version keeps serving

    _touch_later(path, original.replace("Welcome to the demo line.", "Welcome back."))
    report = registry.reload()
    second = registry.get("demo")
    assert report.loaded == ["demo"] and second is not first and not registry.errors
    assert second is not None
    greeting = second.main.steps["greeting"]
    assert isinstance(greeting, SayStep) and greeting.prompt.texts["en"].source == "Welcome back."

    path.unlink()
    assert registry.reload().removed == ["demo"] and registry.get("demo") is None


def test_a_call_in_progress_finishes_on_its_version(tmp_path: Path) -> None:
    shutil.copy(FLOWS / "demo.yaml", tmp_path / "demo.yaml")
    registry = FlowRegistry(tmp_path)
    registry.reload()
    flow = registry.get("demo")
    assert flow is not None

    class EditingCaller(ScriptedPort):
        """A caller during whose call the operator publishes a new greeting and goodbye."""

        async def say(self, text: str, *, barge_in: bool, recording: str | None = None) -> SayResult:
            if text.startswith("Welcome"):
                edited = (tmp_path / "demo.yaml").read_text(encoding="utf-8").replace("Goodbye.", "See you.")
                _touch_later(tmp_path / "demo.yaml", edited)
                assert registry.on_sighup().loaded == ["demo"]
            return await super().say(text, barge_in=barge_in, recording=recording)

    port = EditingCaller(["#42#"])
    result = asyncio.run(Interpreter(flow, port).run())
    assert result.outcome == "resolved"
    assert port.heard[-1].endswith("Goodbye.")  # the version the call started with
    new = registry.get("demo")
    assert new is not None and new is not flow
    goodbye = new.main.steps["read_back"]
    assert isinstance(goodbye, HangupStep) and goodbye.say is not None
    assert "See you." in goodbye.say.texts["en"].source


def test_watch_polls_until_stopped(tmp_path: Path) -> None:
    shutil.copy(FLOWS / "demo.yaml", tmp_path / "demo.yaml")
    registry = FlowRegistry(tmp_path)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(registry.watch(interval=0.01, stop=stop))
        for _ in range(100):
            if registry.get("demo") is not None:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 1)

    asyncio.run(scenario())
    assert registry.names() == ["demo"]
