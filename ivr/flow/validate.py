"""``ivr validate``: every mistake in a flow, as ``file:line:column: message``.

Three passes, each on what the previous one produced: YAML and JSON Schema (``loader``), local
values (``build``), then how the steps connect (this module). A flow with any error is never
served: ``check_file`` returns no flow, and the reloader keeps the last good version.

The connection rules, and why:

- every reference names a step of its own scope (``escalate`` may also name a main-flow step,
  which leaves the sub-flow: escalations go to people, not back into a form);
- every step is reachable, and every step has somewhere to go: a caller is never left in silence;
- retries end at a person, a callback or a goodbye, never in a loop of "sorry, I didn't get that";
- the human fast path is never switched off without a written reason;
- no cycle of steps that never waits for the caller (it would spin without end);
- webhooks have a timeout and only call hosts the operator allowed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ivr.flow import model as m
from ivr.flow.build import build_flow
from ivr.flow.expressions import Expr
from ivr.flow.loader import LoadError, load_file
from ivr.flow.steps import registry
from ivr.flow.steps.flow_schema import schema_errors

# Variables every call has (see docs/flows.md#variables).
BUILTINS = frozenset(
    {
        "caller",
        "called",
        "call_id",
        "language",
        "time",
        "date",
        "weekday",
        "open",
        "digits",
        "intent",
        "intent_score",
        "transcript",
        "confidence",
        "lookup",
        "callback",
        "transfer",
        "last",
    }
)


def check_file(path: Path, display: str | None = None) -> tuple[m.Flow | None, list[m.FlowError]]:
    """Load, build and validate one flow file; the flow is returned only when there is no error."""
    name = display if display is not None else str(path)
    try:
        doc = load_file(path, name)
    except LoadError as exc:
        return None, [m.FlowError(exc.at, exc.message)]
    if not isinstance(doc.data, dict):
        return None, [
            m.FlowError(
                m.Mark(name, 1, 1), "a flow file must be a mapping (flow:, language:, start:, steps:)"
            )
        ]
    errors = [m.FlowError(at, message) for at, message in schema_errors(doc)]
    if errors:
        return None, errors
    flow, errors = build_flow(doc, path)
    if flow is None:
        return None, errors
    errors += validate(flow)
    errors = sorted(set(errors), key=lambda e: (e.at, e.message))
    return (None if errors else flow), errors


def load_flow(path: Path, display: str | None = None) -> m.Flow:
    flow, errors = check_file(path, display)
    if flow is None:
        raise m.FlowInvalid(errors)
    return flow


def validate(flow: m.Flow) -> list[m.FlowError]:
    return list(_Checker(flow).run())


class _Checker:
    def __init__(self, flow: m.Flow) -> None:
        self.flow = flow
        self.human = flow.settings.human
        self.known = set(BUILTINS)
        self.lookups: set[str] = set()
        for scope in flow.scopes():
            for step in scope.steps.values():
                for path in registry.kind_of(step).assigns(step):
                    if path[0] == "lookup":
                        self.lookups.add(path[1])
                    else:
                        self.known.add(path[0])

    def resolve(self, scope: m.Scope, ref: m.Ref, *, escalation: bool = False) -> m.Step | None:
        step = scope.steps.get(ref.name)
        if step is None and escalation:
            step = self.flow.main.steps.get(ref.name)
        return step

    def edges(self, scope: m.Scope, step: m.Step) -> list[tuple[m.Ref, bool]]:
        """(reference, is-escalation) pairs leading out of ``step``, within its scope."""
        exits = registry.kind_of(step).exits(step, self.flow)
        found = [(step.next, False), *((e.to, e.escalation) for e in exits if e.enters is None)]
        return [(ref, escalation) for ref, escalation in found if ref is not None]

    def run(self) -> Iterator[m.FlowError]:
        yield from self.settings()
        for scope in self.flow.scopes():
            yield from self.scope(scope)

    # -- settings -------------------------------------------------------------------------------

    def settings(self) -> Iterator[m.FlowError]:
        s = self.flow.settings
        main = self.flow.main
        for ref in (s.hours.closed if s.hours else None, s.defaults.escalate):
            if ref is not None and ref.name not in main.steps:
                yield m.FlowError(ref.at, f"unknown step '{ref.name}'")
        if self.human is not None:
            target = self.human.target
            if target.name not in main.steps:
                yield m.FlowError(target.at, f"unknown step '{target.name}'")
            elif not self.ends_in_handoff(main, target, person=True):
                yield m.FlowError(
                    target.at,
                    f"human fast path target '{target.name}' does not lead to a transfer or callback",
                )
            if self.human.say is not None:
                yield from self.prompt_vars(self.human.say)
        if s.callback is not None and not s.callback.numbers:
            yield m.FlowError(
                s.callback.at, "callback policy has no 'numbers' patterns: any number could be dialled"
            )

    # -- one scope ------------------------------------------------------------------------------

    def scope(self, scope: m.Scope) -> Iterator[m.FlowError]:
        if scope.start.name not in scope.steps:
            yield m.FlowError(scope.start.at, f"unknown step '{scope.start.name}'")
        for step in scope.steps.values():
            for ref, escalation in self.edges(scope, step):
                if self.resolve(scope, ref, escalation=escalation) is None:
                    yield m.FlowError(ref.at, f"unknown step '{ref.name}'")
            yield from self.step(scope, step)
        yield from self.reachability(scope)
        yield from self.loops(scope)

    def step(self, scope: m.Scope, step: m.Step) -> Iterator[m.FlowError]:
        kind = registry.kind_of(step)
        if step.human is not None and step.human.disabled and not step.human.reason:
            yield m.FlowError(
                step.human.at, f"step '{step.name}' disables the human fast path without a reason"
            )
        missing = kind.dead_end(step)
        if missing is not None:
            yield m.FlowError(step.at, f"step '{step.name}' is a dead end: it has no {missing}")
        for prompt in kind.prompts(step):
            yield from self.prompt_vars(prompt)
        for expr, at in kind.expressions(step):
            yield from self.expr_vars(expr, at)
        retries = kind.retries(step)
        if retries is not None:
            yield from self.escalation(scope, step, retries)
        yield from kind.check(self.flow, scope, step)

    def escalation(self, scope: m.Scope, step: m.Step, retries: m.Retries) -> Iterator[m.FlowError]:
        target = retries.escalate or (self.human.target if self.human else None)
        if target is None:
            message = f"'{step.name}' has no 'escalate' step for when its retries run out"
            yield m.FlowError(retries.at, message)
            return
        if self.resolve(scope, target, escalation=True) is None:
            return  # reported as an unknown step
        if not self.ends_in_handoff(scope, target):
            message = (
                f"retries of '{step.name}' end at '{target.name}', "
                "which does not lead to a transfer, callback or hangup"
            )
            yield m.FlowError(target.at, message)

    def ends_in_handoff(self, scope: m.Scope, ref: m.Ref, *, person: bool = False) -> bool:
        """Follow pass-through steps (say, set, goto) from ``ref`` to one that ends self-service
        (transfer, callback, hangup), or with ``person`` one that reaches a person."""
        seen: set[str] = set()
        step = self.resolve(scope, ref, escalation=True)
        if step is not None and step.name not in scope.steps:
            scope = self.flow.main
        while step is not None and step.name not in seen:
            kind = registry.kind_of(step)
            if kind.reaches_person if person else kind.ends_self_service:
                return True
            if not kind.passes_through:
                return False
            seen.add(step.name)
            nxt = kind.onward(step)
            step = scope.steps.get(nxt.name) if nxt is not None else None
        return False

    def reachability(self, scope: m.Scope) -> Iterator[m.FlowError]:
        roots = [scope.start]
        if not scope.name:
            s = self.flow.settings
            roots += [
                r
                for r in (
                    s.hours.closed if s.hours else None,
                    s.defaults.escalate,
                    self.human.target if self.human else None,
                )
                if r is not None
            ]
        reached: set[str] = set()
        todo = [r.name for r in roots]
        while todo:
            name = todo.pop()
            if name in reached or name not in scope.steps:
                continue
            reached.add(name)
            todo += [ref.name for ref, _ in self.edges(scope, scope.steps[name])]
        if not scope.name:  # escalations from sub-flows may land in the main flow
            for sub in self.flow.subflows.values():
                for step in sub.steps.values():
                    for ref, escalation in self.edges(sub, step):
                        if escalation and ref.name not in sub.steps and ref.name in scope.steps:
                            todo.append(ref.name)
            while todo:
                name = todo.pop()
                if name in reached or name not in scope.steps:
                    continue
                reached.add(name)
                todo += [ref.name for ref, _ in self.edges(scope, scope.steps[name])]
        for step in scope.steps.values():
            if step.name not in reached:
                yield m.FlowError(step.at, f"step '{step.name}' is never reached")
        if scope.name and not any(
            e.enters == scope.name
            for other in self.flow.scopes()
            for s in other.steps.values()
            for e in registry.kind_of(s).exits(s, self.flow)
        ):
            yield m.FlowError(scope.at, f"sub-flow '{scope.name}' is never called")

    def loops(self, scope: m.Scope) -> Iterator[m.FlowError]:
        """Cycles made only of steps that never wait for the caller (Tarjan's SCC)."""
        graph: dict[str, list[str]] = {}
        waits = {name for name, step in scope.steps.items() if registry.kind_of(step).waits_for_caller}
        for step in scope.steps.values():
            if step.name in waits:
                continue
            graph[step.name] = [
                ref.name
                for ref, _ in self.edges(scope, step)
                if ref.name in scope.steps and ref.name not in waits
            ]
        for component in _strongly_connected(graph):
            if len(component) > 1 or component[0] in graph[component[0]]:
                ordered = [n for n in scope.steps if n in component]
                cycle = " -> ".join([*ordered, ordered[0]])
                message = f"steps loop without waiting for the caller: {cycle}"
                yield m.FlowError(scope.steps[ordered[0]].at, message)

    # -- variables ------------------------------------------------------------------------------

    def prompt_vars(self, prompt: m.Prompt) -> Iterator[m.FlowError]:
        for lang, template in prompt.texts.items():
            start = prompt.text_at.get(lang)
            for field in template.fields:
                at = m.Mark(start.file, start.line, start.column + field.column - 1) if start else prompt.at
                yield from self.name_vars(field.path, at)

    def expr_vars(self, expr: Expr, at: m.Mark) -> Iterator[m.FlowError]:
        for name in expr.names():
            where = m.Mark(at.file, at.line, at.column + name.column - 1) if at.column else at
            yield from self.name_vars(name.path, where)

    def name_vars(self, path: tuple[str, ...], at: m.Mark) -> Iterator[m.FlowError]:
        if path[0] not in self.known:
            yield m.FlowError(at, f"unknown variable '{path[0]}'")
        elif path[0] == "lookup" and len(path) > 1 and path[1] not in self.lookups:
            yield m.FlowError(at, f"unknown lookup '{path[1]}' (no lookup step has 'into: {path[1]}')")


def _strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (a flow may have hundreds of steps; no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, child = work.pop()
            if child == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            targets = [t for t in graph.get(node, []) if t in graph]
            if child < len(targets):
                work.append((node, child + 1))
                target = targets[child]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    item = stack.pop()
                    on_stack.discard(item)
                    component.append(item)
                    if item == node:
                        break
                result.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return result
