"""Steps that lead on without waiting for the caller: ``say``, ``set``, ``branch``, ``goto``, and the
sub-flow pair ``call`` / ``return``.

``say`` plays a prompt (the caller may barge in unless ``barge_in: false``); ``set`` evaluates
expressions into variables; ``branch`` takes the first case whose condition holds, else ``else``.
``call`` enters a sub-flow at its start and remembers where to continue (its ``next``); ``return``
goes back there. None of them waits for input, so a cycle made only of these is a flow error.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

from ivr.flow import model as m
from ivr.flow.expressions import Expr
from ivr.flow.steps.kind import (
    EXPRESSION,
    PROMPT,
    STEP_NAME,
    VARIABLE,
    CallRuntime,
    Exit,
    FlowBuilder,
    Go,
    Next,
    Schema,
    StepKind,
    WrittenStep,
)


@dataclass(frozen=True, kw_only=True)
class SayStep(m.Step):
    KIND = "say"
    prompt: m.Prompt
    barge_in: bool = True


class Say(StepKind[SayStep]):
    name = "say"
    schema: ClassVar[Schema] = PROMPT
    fields: ClassVar[Mapping[str, Schema]] = {"barge_in": {"type": "boolean"}}
    takes_next = True
    passes_through = True

    def build(self, b: FlowBuilder, written: WrittenStep) -> SayStep:
        return SayStep(
            prompt=b.prompt(written.value, written.value_path),
            barge_in=bool(written.raw.get("barge_in", True)),
            **written.common,
        )

    async def run(self, call: CallRuntime, step: SayStep, scope: m.Scope) -> Next:
        await call.say(step.prompt, barge_in=step.barge_in)
        return call.follow(step.next, scope)


# -- set ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Assignment:
    name: str
    expr: Expr
    at: m.Mark = field(compare=False)


@dataclass(frozen=True, kw_only=True)
class SetStep(m.Step):
    KIND = "set"
    assignments: tuple[Assignment, ...]


class Set(StepKind[SetStep]):
    name = "set"
    schema: ClassVar[Schema] = {
        "type": "object",
        "minProperties": 1,
        "propertyNames": VARIABLE,
        "additionalProperties": EXPRESSION,
    }
    takes_next = True
    passes_through = True

    def build(self, b: FlowBuilder, written: WrittenStep) -> SetStep:
        kp = written.value_path
        assignments = tuple(
            Assignment(var, b.expr(v, (*kp, var)), b.doc.text_mark((*kp, var), 1))
            for var, v in written.value.items()
        )
        return SetStep(assignments=assignments, **written.common)

    async def run(self, call: CallRuntime, step: SetStep, scope: m.Scope) -> Next:
        for assignment in step.assignments:
            call.vars[assignment.name] = assignment.expr.evaluate(call.vars)
        return call.follow(step.next, scope)

    def expressions(self, step: SetStep) -> list[tuple[Expr, m.Mark]]:
        return [(a.expr, a.at) for a in step.assignments]

    def assigns(self, step: SetStep) -> list[tuple[str, ...]]:
        return [(a.name,) for a in step.assignments]


# -- branch ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    condition: Expr
    then: m.Ref
    at: m.Mark = field(compare=False)


@dataclass(frozen=True, kw_only=True)
class BranchStep(m.Step):
    KIND = "branch"
    cases: tuple[Case, ...]
    otherwise: m.Ref | None


class Branch(StepKind[BranchStep]):
    name = "branch"
    schema: ClassVar[Schema] = {
        "type": "array",
        "minItems": 1,
        "items": {
            "type": "object",
            "required": ["if", "then"],
            "additionalProperties": False,
            "properties": {"if": EXPRESSION, "then": STEP_NAME},
        },
    }
    fields: ClassVar[Mapping[str, Schema]] = {"else": STEP_NAME}
    mermaid_shape = ("{", "}")
    dot_shape = "diamond"

    def build(self, b: FlowBuilder, written: WrittenStep) -> BranchStep:
        kp = written.value_path
        cases = tuple(
            Case(
                b.expr(c["if"], (*kp, i, "if")),
                b.required_ref(c["then"], (*kp, i, "then")),
                b.doc.text_mark((*kp, i, "if"), 1),
            )
            for i, c in enumerate(written.value)
        )
        otherwise = b.ref(written.raw.get("else"), (*written.path, "else"))
        return BranchStep(cases=cases, otherwise=otherwise, **written.common)

    async def run(self, call: CallRuntime, step: BranchStep, scope: m.Scope) -> Next:
        for case in step.cases:
            if case.condition.truth(call.vars):
                return Go(case.then.name, scope.name)
        return call.follow(step.otherwise, scope)

    def exits(self, step: BranchStep, flow: m.Flow) -> list[Exit]:
        return [*(Exit(c.then, c.condition.source) for c in step.cases), Exit(step.otherwise, "else")]

    def dead_end(self, step: BranchStep) -> str | None:
        return "'else'" if step.otherwise is None else None

    def expressions(self, step: BranchStep) -> list[tuple[Expr, m.Mark]]:
        return [(c.condition, c.at) for c in step.cases]


# -- goto, call, return ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class GotoStep(m.Step):
    KIND = "goto"
    target: m.Ref


class Goto(StepKind[GotoStep]):
    name = "goto"
    schema: ClassVar[Schema] = STEP_NAME
    passes_through = True

    def build(self, b: FlowBuilder, written: WrittenStep) -> GotoStep:
        return GotoStep(target=b.required_ref(written.value, written.value_path), **written.common)

    async def run(self, call: CallRuntime, step: GotoStep, scope: m.Scope) -> Next:
        return Go(step.target.name, scope.name)

    def exits(self, step: GotoStep, flow: m.Flow) -> list[Exit]:
        return [Exit(step.target)]

    def onward(self, step: GotoStep) -> m.Ref | None:
        return step.target


@dataclass(frozen=True, kw_only=True)
class CallStep(m.Step):
    """Enter a sub-flow; when it returns, continue at ``next``."""

    KIND = "call"
    subflow: m.Ref


class CallSubflow(StepKind[CallStep]):
    name = "call"
    schema: ClassVar[Schema] = {**STEP_NAME, "description": "Name of a sub-flow."}
    takes_next = True

    def build(self, b: FlowBuilder, written: WrittenStep) -> CallStep:
        return CallStep(subflow=b.required_ref(written.value, written.value_path), **written.common)

    async def run(self, call: CallRuntime, step: CallStep, scope: m.Scope) -> Next:
        if step.next is None:
            return await call.fail(f"step '{step.name}' has no next")
        call.stack.append((scope.name, step.next.name))
        sub = call.flow.subflows[step.subflow.name]
        return Go(sub.start.name, sub.name)

    def exits(self, step: CallStep, flow: m.Flow) -> list[Exit]:
        sub = flow.subflows.get(step.subflow.name)
        return [] if sub is None else [Exit(sub.start, "call", dashed=True, enters=sub.name)]

    def check(self, flow: m.Flow, scope: m.Scope, step: CallStep) -> Iterator[m.FlowError]:
        if step.subflow.name not in flow.subflows:
            yield m.FlowError(step.subflow.at, f"unknown sub-flow '{step.subflow.name}'")


@dataclass(frozen=True, kw_only=True)
class ReturnStep(m.Step):
    KIND = "return"


class Return(StepKind[ReturnStep]):
    name = "return"
    schema: ClassVar[Schema] = {"type": "boolean", "const": True}

    def build(self, b: FlowBuilder, written: WrittenStep) -> ReturnStep:
        return ReturnStep(**written.common)

    async def run(self, call: CallRuntime, step: ReturnStep, scope: m.Scope) -> Next:
        if not call.stack:
            return await call.fail("return outside a sub-flow")
        caller_scope, resume = call.stack.pop()
        return Go(resume, caller_scope)

    def check(self, flow: m.Flow, scope: m.Scope, step: ReturnStep) -> Iterator[m.FlowError]:
        if not scope.name:
            yield m.FlowError(step.at, f"step '{step.name}' returns, but it is not in a sub-flow")


SAY = Say()
SET = Set()
BRANCH = Branch()
GOTO = Goto()
CALL = CallSubflow()
RETURN = Return()
