"""A menu's endpointing options (end_silence, early_match): read from YAML, handed to the listen."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ivr.flow.conversation_tests import ScriptedPort
from ivr.flow.interpreter import Interpreter
from ivr.flow.port import DEFAULT_END_SILENCE
from ivr.flow.steps.prompting import MenuStep
from ivr.flow.validate import check_file, load_flow
from ivr.media.vad import VadConfig

KOREAN = Path(__file__).parents[1] / "flows" / "korean"


def menu_of(path: Path) -> MenuStep:
    step = load_flow(path).main.steps["menu"]
    assert isinstance(step, MenuStep)
    return step


def test_the_flow_default_is_the_recognisers() -> None:
    assert DEFAULT_END_SILENCE * 1000 == VadConfig().end_silence_ms


def test_options_are_read_and_off_by_default() -> None:
    plain, early = menu_of(KOREAN / "menu.yaml"), menu_of(KOREAN / "menu_early.yaml")
    assert (plain.end_silence, plain.early_match) == (None, None)
    assert (early.end_silence, early.early_match) == (None, 0.2)
    assert check_file(KOREAN / "menu_early.yaml")[1] == []


def test_true_means_200ms_and_end_silence_takes_a_duration(tmp_path: Path) -> None:
    text = (KOREAN / "menu_early.yaml").read_text(encoding="utf-8")
    path = tmp_path / "menu.yaml"
    path.write_text(text.replace("early_match: 200ms", "early_match: true\n      end_silence: 0.4"))
    step = menu_of(path)
    assert (step.end_silence, step.early_match) == (0.4, 0.2)


def test_the_listen_carries_them() -> None:
    port = ScriptedPort(["예약"])
    result = asyncio.run(Interpreter(load_flow(KOREAN / "menu_early.yaml"), port).run())
    assert result.path.steps[:2] == ["menu", "booking"]
    assert port.listens[0].early_match == 0.2 and port.listens[0].end_silence is None
