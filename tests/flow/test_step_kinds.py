"""The registry of step kinds: the committed schema is the generated one, and a kind defined only
in this module (``count``) is built, checked, run and drawn like a built-in one once registered.

``count`` adds one to a variable each time a call passes, and leaves by ``over`` once the count
is above its ``limit``: a kind with a schema fragment, a step-level field of its own, a local
mistake, a dead end, a variable it sets, a run and a drawn exit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from ivr.flow import check_file, load_flow
from ivr.flow import model as m
from ivr.flow.conversation_tests import ScriptedPort
from ivr.flow.graph import dot, mermaid
from ivr.flow.interpreter import Interpreter
from ivr.flow.steps import registry
from ivr.flow.steps.flow_schema import flow_schema
from ivr.flow.steps.kind import (
    STEP_NAME,
    VARIABLE,
    CallRuntime,
    Exit,
    FlowBuilder,
    Next,
    Schema,
    StepKind,
    WrittenStep,
)
from ivr.flow.steps.schema import SCHEMA_PATH, is_current, main, schema_text

BUILT_IN = "say menu ask collect set branch lookup transfer callback hangup goto call return".split()


@dataclass(frozen=True, kw_only=True)
class CountStep(m.Step):
    KIND = "count"
    into: str
    limit: int
    over: m.Ref | None


class Count(StepKind[CountStep]):
    name = "count"
    schema: ClassVar[Schema] = {
        "type": "object",
        "required": ["into", "limit"],
        "additionalProperties": False,
        "properties": {"into": VARIABLE, "limit": {"type": "integer"}},
    }
    fields: ClassVar[dict[str, Schema]] = {"over": STEP_NAME}
    takes_next = True
    dot_shape = "octagon"
    mermaid_shape = ("{{", "}}")

    def build(self, b: FlowBuilder, written: WrittenStep) -> CountStep:
        limit = int(written.value["limit"])
        if limit < 1:
            b.error(b.doc.mark((*written.value_path, "limit")), f"limit must be at least 1, got {limit}")
        return CountStep(
            into=str(written.value["into"]),
            limit=limit,
            over=b.ref(written.raw.get("over"), (*written.path, "over")),
            **written.common,
        )

    async def run(self, call: CallRuntime, step: CountStep, scope: m.Scope) -> Next:
        previous = call.vars.get(step.into)
        count = (previous if isinstance(previous, int) else 0) + 1
        call.vars[step.into] = count
        call.note({"count": count})
        return call.follow(step.over if count > step.limit else step.next, scope)

    def exits(self, step: CountStep, flow: m.Flow) -> list[Exit]:
        return [Exit(step.over, f"over {step.limit}", dashed=True)]

    def dead_end(self, step: CountStep) -> str | None:
        return "'next' and 'over'" if step.next is None or step.over is None else None

    def assigns(self, step: CountStep) -> list[tuple[str, ...]]:
        return [(step.into,)]


FLOW = """\
flow: counting
language: en
start: ask_press
steps:
  ask_press:
    menu:
      prompt: "Press 1 to count."
      choices:
        - {key: "1", next: tally}
      escalate: goodbye
  tally:
    count: {into: presses, limit: 2}
    over: enough
    next: report
  report:
    say: "Counted {presses}."
    next: ask_press
  enough:
    hangup: {say: "That is enough counting."}
  goodbye:
    hangup: true
"""


@pytest.fixture
def count_kind() -> Iterator[StepKind[CountStep]]:
    with registry.registered(Count()) as kind:
        yield kind


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "counting.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# -- the schema -----------------------------------------------------------------------------------


def test_the_committed_schema_is_the_generated_one() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), "run: python -m ivr.flow.steps.schema"
    assert is_current()


def test_the_schema_command_writes_and_checks_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "flow.schema.json"
    assert main([str(target), "--check"]) == 1
    assert main([str(target)]) == 0
    assert target.read_text(encoding="utf-8") == SCHEMA_PATH.read_text(encoding="utf-8")
    assert main([str(target), "--check"]) == 0
    assert "current" in capsys.readouterr().out


def test_built_in_kinds_are_registered_in_the_order_operators_read_them() -> None:
    assert registry.names() == tuple(BUILT_IN)
    description = flow_schema()["$defs"]["step"]["description"]
    assert description == f"Exactly one of: {', '.join(BUILT_IN)}."


def test_a_kind_must_not_clash_with_another() -> None:
    class Found(Count):
        name = "found"  # a field of the lookup kind

    class Booked(Count):
        name = "tally"
        fields: ClassVar[dict[str, Schema]] = {"booked": {"type": "string"}}  # the callback's, unlike it

    class NextStep(Count):
        name = "next"  # a field of every step

    for kind in (Found(), Booked(), NextStep()):
        with pytest.raises(ValueError):
            registry.register(kind)
    with registry.registered(Count()), pytest.raises(ValueError, match="already registered"):
        registry.register(Count())
    assert registry.names() == tuple(BUILT_IN)


# -- a kind defined here --------------------------------------------------------------------------


def test_a_registered_kind_is_in_the_schema_and_leaves_with_it(count_kind: StepKind[CountStep]) -> None:
    step = flow_schema()["$defs"]["step"]
    assert step["properties"]["count"] == Count.schema
    assert step["properties"]["over"] == STEP_NAME
    assert step["description"].endswith(", return, count.")
    assert not is_current()  # the committed file is the built-in kinds' schema
    registry.unregister("count")
    assert is_current()
    registry.register(count_kind)


def test_a_flow_with_the_new_kind_loads_and_validates(
    count_kind: StepKind[CountStep], tmp_path: Path
) -> None:
    flow, errors = check_file(write(tmp_path, FLOW), "counting.yaml")
    assert errors == []
    assert flow is not None
    tally = flow.main.steps["tally"]
    assert isinstance(tally, CountStep)
    assert (tally.kind, tally.into, tally.limit, tally.next, tally.over) == (
        "count",
        "presses",
        2,
        m.Ref("report", tally.at),
        m.Ref("enough", tally.at),
    )


def test_the_new_kind_is_checked_like_a_built_in_one(count_kind: StepKind[CountStep], tmp_path: Path) -> None:
    # Its schema fragment: a field it does not know.
    _, errors = check_file(
        write(tmp_path, FLOW.replace("limit: 2}", "limit: 2, colour: red}")), "counting.yaml"
    )
    assert [str(e) for e in errors] == [
        "counting.yaml:12:38: unknown field 'colour' (expected one of: into, limit)"
    ]
    # Its build (a local mistake), its exits (an unknown step), its step-level field elsewhere.
    broken = FLOW.replace("limit: 2}", "limit: 0}").replace("over: enough", "over: nowhere")
    broken = broken.replace('say: "Counted {presses}."', 'say: "Counted {presses}."\n    over: enough')
    _, errors = check_file(write(tmp_path, broken), "counting.yaml")
    assert [str(e) for e in errors] == [
        "counting.yaml:12:35: limit must be at least 1, got 0",
        "counting.yaml:13:11: unknown step 'nowhere'",
        "counting.yaml:17:5: 'over' does not apply to a 'say' step",
        "counting.yaml:19:3: step 'enough' is never reached",
    ]
    # Its dead end; the variable it sets is known to the prompt that uses it.
    _, errors = check_file(write(tmp_path, FLOW.replace("    over: enough\n", "")), "counting.yaml")
    assert [str(e) for e in errors] == [
        "counting.yaml:11:3: step 'tally' is a dead end: it has no 'next' and 'over'",
        "counting.yaml:17:3: step 'enough' is never reached",
    ]


def test_the_new_kind_runs(count_kind: StepKind[CountStep], tmp_path: Path) -> None:
    flow = load_flow(write(tmp_path, FLOW))
    port = ScriptedPort(["#1", "#1", "#1"])
    result = asyncio.run(Interpreter(flow, port).run())
    assert result.outcome == "resolved"
    assert result.variables["presses"] == 3
    assert port.heard[-1] == "That is enough counting."
    assert [r.step for r in result.path.records] == [
        "ask_press",
        "tally",
        "report",
        "ask_press",
        "tally",
        "report",
        "ask_press",
        "tally",
        "enough",
    ]
    tallies = [r for r in result.path.records if r.kind == "count"]
    assert [r.inputs for r in tallies] == [[{"count": 1}], [{"count": 2}], [{"count": 3}]]


def test_the_new_kind_is_drawn(count_kind: StepKind[CountStep], tmp_path: Path) -> None:
    flow = load_flow(write(tmp_path, FLOW))
    assert '  n_tally{{"tally (count)"}}' in mermaid(flow)
    assert '  n_tally -.->|"over 2"| n_enough' in mermaid(flow)
    assert "  n_tally --> n_report" in mermaid(flow)
    assert 'n_tally [label="tally\\n(count)", shape=octagon];' in dot(flow)
    assert 'n_tally -> n_enough [label="over 2", style=dashed];' in dot(flow)


def test_without_the_kind_the_flow_is_refused(tmp_path: Path) -> None:
    flow, errors = check_file(write(tmp_path, FLOW), "counting.yaml")
    assert flow is None
    assert [str(e) for e in errors] == [
        "counting.yaml:12:5: unknown field 'count'",
        "counting.yaml:13:5: unknown field 'over'",
    ]
