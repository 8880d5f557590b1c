"""The validator: each broken flow in tests/flow/broken produces the message its first line names,
at the line and column it names; the example flows produce none."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ivr.flow import check_file
from ivr.flow.build import parse_duration
from ivr.flow.cli import cmd_validate
from ivr.flow.steps.control import SayStep

HERE = Path(__file__).parent
BROKEN = sorted((HERE / "broken").glob("*.yaml"))
FLOWS = Path(__file__).parents[2] / "flows"
EXAMPLES = [p for p in sorted(FLOWS.glob("*.yaml")) if not p.name.endswith(".tests.yaml")]


def test_the_corpus_covers_every_kind_of_mistake() -> None:
    assert len(BROKEN) >= 35


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_flow_reports_its_message(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    match = re.fullmatch(r"# expect: (\d+):(\d+): (.+)", first)
    assert match, f"{path.name}: first line must be '# expect: LINE:COL: message'"
    line, column, fragment = int(match.group(1)), int(match.group(2)), match.group(3)
    flow, errors = check_file(path, path.name)
    assert flow is None, "a flow with errors must never be served"
    rendered = [str(e) for e in errors]
    wanted = f"{path.name}:{line}:{column}: {fragment}"
    assert any(r.startswith(wanted) for r in rendered), f"expected {wanted!r}, got {rendered}"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_flows_are_clean(path: Path) -> None:
    flow, errors = check_file(path)
    assert errors == [] and flow is not None
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=../schema/flow.schema.json"


def test_support_greetings_name_the_human_option_first() -> None:
    for name, key_words in (
        ("support.yaml", "To talk to a person, press 0"),
        ("support-de.yaml", "Um mit einem Menschen zu sprechen, drücken Sie jederzeit die 0"),
    ):
        flow, _ = check_file(FLOWS / name)
        assert flow is not None
        greeting = flow.main.steps[flow.main.start.name]
        assert isinstance(greeting, SayStep)
        text = greeting.prompt.texts[flow.settings.language].source
        assert text.split(".")[0].startswith(key_words)


@pytest.mark.parametrize(
    ("text", "seconds"), [("5s", 5.0), ("500ms", 0.5), ("2m", 120.0), (3, 3.0), ("1.5s", 1.5)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5x", "-1", "s", "", True, "5 s s"])
def test_bad_durations(text: object) -> None:
    assert parse_duration(text) is None


def test_validate_command_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    assert cmd_validate(argparse.Namespace(flows=EXAMPLES)) == 0
    assert "ok (" in capsys.readouterr().out
    assert cmd_validate(argparse.Namespace(flows=[EXAMPLES[0], BROKEN[0]])) == 1
    out = capsys.readouterr().out
    assert re.search(r"broken/\w+\.yaml:\d+:\d+: ", out)
