"""The operator's tools: ``ivr test`` reports, ``ivr chat`` over stdin, ``ivr graph``."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import shutil
from pathlib import Path

import pytest

from ivr.flow import load_flow
from ivr.flow.chat import chat
from ivr.flow.cli import add_flow_commands
from ivr.flow.conversation_tests import fake_webhook, main_test
from ivr.flow.graph import dot, edges, mermaid, render

FLOWS = Path(__file__).parents[2] / "flows"
MONDAY = dt.datetime(2024, 5, 6, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="ivr")
    add_flow_commands(root.add_subparsers(dest="command", required=True))
    return root


def test_ivr_test_passes_on_the_examples() -> None:
    lines: list[str] = []
    assert (
        main_test([FLOWS / "support.yaml", FLOWS / "support-de.yaml", FLOWS / "demo.yaml"], lines.append) == 0
    )
    assert sum(line.startswith("PASS") for line in lines) >= 50
    assert not any(line.startswith("FAIL") for line in lines)


def test_ivr_test_reports_a_failing_case_with_a_diff(tmp_path: Path) -> None:
    shutil.copy(FLOWS / "demo.yaml", tmp_path / "demo.yaml")
    (tmp_path / "demo.tests.yaml").write_text(
        "flow: demo.yaml\ncases:\n  - name: wrong\n    inputs: ['#12#']\n"
        "    expect: {path: [greeting, digits, nothing], says: ['You entered one three'],\n"
        "             outcome: transferred}\n",
        encoding="utf-8",
    )
    lines: list[str] = []
    assert main_test([tmp_path / "demo.yaml"], lines.append) == 1
    report = "\n".join(lines)
    assert "FAIL  wrong" in report
    assert "-nothing" in report and "+read_back" in report  # the path diff
    assert "never heard 'You entered one three'" in report
    assert "outcome: expected transferred, got resolved" in report
    assert "0 passed, 1 failed" in report


def test_ivr_test_refuses_an_invalid_flow(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "flow: bad\nlanguage: en\nstart: a\nsteps:\n  a:\n    goto: b\n", encoding="utf-8"
    )
    (tmp_path / "bad.tests.yaml").write_text("flow: bad.yaml\ncases: []\n", encoding="utf-8")
    lines: list[str] = []
    assert main_test([tmp_path / "bad.yaml"], lines.append) == 1
    assert any(line.endswith("unknown step 'b'") for line in lines)


def test_chat_over_stdin() -> None:
    out: list[str] = []
    script = io.StringIO("\n".join(["outage", "#10115", "", "agent"]) + "\n")
    result = asyncio.run(
        chat(
            load_flow(FLOWS / "support.yaml"),
            script,
            out.append,
            agents="none",
            clock=lambda: MONDAY,
            http=fake_webhook("fail"),
        )
    )
    text = "\n".join(out)
    assert "[greeting] IVR: To talk to a person, press 0" in text
    assert "[main_menu] caller: outage" in text
    assert "[outage_postcode] caller: keys 10115" in text
    assert "[outage_known] IVR: There is a known internet outage" in text
    assert "[wrap_up/anything_else] caller: (noinput)" in text
    assert "-> transfer to a person (skill=support, queue=general, bridge): agents none" in text
    assert "-> callback offered to +4930123456" in text
    assert result.outcome == "callback_booked"
    assert out[-1].startswith("-- outcome: callback_booked")


def test_chat_end_of_input_is_a_hang_up() -> None:
    out: list[str] = []
    result = asyncio.run(
        chat(load_flow(FLOWS / "demo.yaml"), io.StringIO(""), out.append, clock=lambda: MONDAY)
    )
    assert result.outcome == "hung_up_by_caller"


def test_graph_mermaid_and_dot_agree() -> None:
    flow = load_flow(FLOWS / "support.yaml")
    text = mermaid(flow)
    assert text.startswith("flowchart TD\n")
    assert 'n_main_menu -->|"key 1 tv is black/black screen"| n_outage_postcode' in text
    assert "ANY -.->|\"key 0 or 'agent'\"| n_to_agent" in text
    assert "subgraph n_wrap_up[sub-flow wrap_up]" in text
    graph = dot(flow)
    assert graph.startswith('digraph "support" {') and graph.rstrip().endswith("}")
    assert 'n_find_outage -> n_outage_has_eta [label="found"];' in graph
    assert 'n_order_service -> n_order_table [label="webhook failed", style=dashed];' in graph
    for edge in edges(flow):
        assert f"{edge.source} -" in text and f"{edge.source} -> {edge.target}" in graph


def test_graph_images_with_graphviz(monkeypatch: pytest.MonkeyPatch) -> None:
    # The project's setup installs Graphviz, so images work; without it the error is clear.
    flow = load_flow(FLOWS / "demo.yaml")
    image = render(flow, "svg")
    assert isinstance(image, bytes) and b"<svg" in image and b"greeting" in image
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RuntimeError, match="Graphviz is not installed"):
        render(flow, "svg")


def test_cli_commands(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    args = parser().parse_args(
        ["graph", str(FLOWS / "demo.yaml"), "--format", "dot", "-o", str(tmp_path / "g.dot")]
    )
    assert args.handler(args) == 0
    assert (tmp_path / "g.dot").read_text().startswith('digraph "demo"')
    args = parser().parse_args(["test", str(FLOWS / "demo.yaml")])
    assert args.handler(args) == 0
    assert "2 passed, 0 failed" in capsys.readouterr().out
    args = parser().parse_args(["validate", str(FLOWS / "demo.yaml")])
    assert args.handler(args) == 0
