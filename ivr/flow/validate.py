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
from urllib.parse import urlsplit

from ivr.flow import model as m
from ivr.flow.build import build_flow
from ivr.flow.expressions import Expr
from ivr.flow.loader import LoadError, load_file, schema_errors

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
_PASS_THROUGH = frozenset({"say", "set", "goto"})  # steps that lead on without waiting for anyone


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
                if isinstance(step, m.SetStep):
                    self.known.update(a.name for a in step.assignments)
                elif isinstance(step, m.CollectStep):
                    self.known.add(step.into)
                elif isinstance(step, m.LookupStep):
                    self.lookups.add(step.into)

    def resolve(self, scope: m.Scope, ref: m.Ref, *, escalation: bool = False) -> m.Step | None:
        step = scope.steps.get(ref.name)
        if step is None and escalation:
            step = self.flow.main.steps.get(ref.name)
        return step

    def edges(self, scope: m.Scope, step: m.Step) -> list[tuple[m.Ref, bool]]:
        """(reference, is-escalation) pairs leading out of ``step``."""
        escalations: set[int] = set()
        if isinstance(step, m.MenuStep | m.AskStep | m.CollectStep) and step.retries.escalate is not None:
            escalations.add(id(step.retries.escalate))
        return [(ref, id(ref) in escalations) for ref in m.successors(step)]

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
            elif not self.ends_in_handoff(main, target, {"transfer", "callback"}):
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
        if step.human is not None and step.human.disabled and not step.human.reason:
            yield m.FlowError(
                step.human.at, f"step '{step.name}' disables the human fast path without a reason"
            )
        yield from self.dead_end(scope, step)
        for prompt in _prompts(step):
            yield from self.prompt_vars(prompt)
        for expr, at in _expressions(step):
            yield from self.expr_vars(expr, at)
        if isinstance(step, m.MenuStep):
            yield from self.menu(step)
        if isinstance(step, m.MenuStep | m.AskStep | m.CollectStep):
            yield from self.escalation(scope, step)
        if isinstance(step, m.LookupStep) and isinstance(step.source, m.HttpSource):
            host = urlsplit(step.source.url).hostname or ""
            if urlsplit(step.source.url).scheme not in ("http", "https"):
                yield m.FlowError(
                    step.source.at,
                    f"webhook url must start with http:// or https://, got '{step.source.url}'",
                )
            elif host not in self.flow.settings.http_allow:
                yield m.FlowError(step.source.at, f"webhook host '{host}' is not in settings.http.allow")
        if isinstance(step, m.CallStep) and step.subflow.name not in self.flow.subflows:
            yield m.FlowError(step.subflow.at, f"unknown sub-flow '{step.subflow.name}'")
        if isinstance(step, m.ReturnStep) and not scope.name:
            yield m.FlowError(step.at, f"step '{step.name}' returns, but it is not in a sub-flow")

    def dead_end(self, scope: m.Scope, step: m.Step) -> Iterator[m.FlowError]:
        missing: str | None = None
        if isinstance(step, m.SayStep | m.CollectStep | m.SetStep | m.CallStep) and step.next is None:
            missing = "'next'"
        elif isinstance(step, m.BranchStep) and step.otherwise is None:
            missing = "'else'"
        elif isinstance(step, m.LookupStep):
            if step.found is None and step.next is None:
                missing = "'found' (or 'next')"
            elif step.not_found is None and step.next is None:
                missing = "'not_found' (or 'next')"
            elif isinstance(step.source, m.HttpSource) and step.fallback is None:
                missing = "'fallback' (where to go when the webhook fails)"
        elif isinstance(step, m.TransferStep) and step.no_agent is None:
            missing = "'no_agent' (where to go when no agent is free)"
        elif isinstance(step, m.CallbackStep) and (step.booked is None or step.declined is None):
            missing = "'booked' and 'declined'"
        if missing is not None:
            yield m.FlowError(step.at, f"step '{step.name}' is a dead end: it has no {missing}")

    def menu(self, step: m.MenuStep) -> Iterator[m.FlowError]:
        keys: dict[str, m.Choice] = {}
        phrases: dict[str, m.Choice] = {}
        human_key = self.human.key if self.human and step.fast_path_enabled else None
        human_phrases = (
            {_norm(p) for p in self.human.phrases} if self.human and step.fast_path_enabled else set()
        )
        for choice in step.choices:
            if choice.key is not None:
                if choice.key in keys:
                    first = keys[choice.key].at.line
                    yield m.FlowError(
                        choice.at,
                        f"duplicate key '{choice.key}' in menu '{step.name}' (first at line {first})",
                    )
                keys.setdefault(choice.key, choice)
                if choice.key == human_key:
                    yield m.FlowError(choice.at, f"key '{choice.key}' is the human fast-path key")
            for phrase in choice.phrases:
                norm = _norm(phrase)
                if norm in phrases and phrases[norm] is not choice:
                    first = phrases[norm].at.line
                    yield m.FlowError(
                        choice.at,
                        f"duplicate phrase '{phrase}' in menu '{step.name}' (first at line {first})",
                    )
                phrases.setdefault(norm, choice)
                if norm in human_phrases:
                    yield m.FlowError(choice.at, f"phrase '{phrase}' is a human fast-path phrase")

    def escalation(
        self, scope: m.Scope, step: m.MenuStep | m.AskStep | m.CollectStep
    ) -> Iterator[m.FlowError]:
        target = step.retries.escalate or (self.human.target if self.human else None)
        if target is None:
            message = f"'{step.name}' has no 'escalate' step for when its retries run out"
            yield m.FlowError(step.retries.at, message)
            return
        if self.resolve(scope, target, escalation=True) is None:
            return  # reported as an unknown step
        if not self.ends_in_handoff(scope, target, m.HANDOFF_KINDS):
            message = (
                f"retries of '{step.name}' end at '{target.name}', "
                "which does not lead to a transfer, callback or hangup"
            )
            yield m.FlowError(target.at, message)

    def ends_in_handoff(self, scope: m.Scope, ref: m.Ref, kinds: frozenset[str] | set[str]) -> bool:
        """Follow pass-through steps (say, set, goto) from ``ref`` until a step that is one of ``kinds``."""
        seen: set[str] = set()
        step = self.resolve(scope, ref, escalation=True)
        if step is not None and step.name not in scope.steps:
            scope = self.flow.main
        while step is not None and step.name not in seen:
            if step.kind in kinds:
                return True
            if step.kind not in _PASS_THROUGH:
                return False
            seen.add(step.name)
            nxt = step.target if isinstance(step, m.GotoStep) else step.next
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
            todo += [ref.name for ref in m.successors(scope.steps[name])]
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
                todo += [ref.name for ref in m.successors(scope.steps[name])]
        for step in scope.steps.values():
            if step.name not in reached:
                yield m.FlowError(step.at, f"step '{step.name}' is never reached")
        if scope.name and not any(
            isinstance(s, m.CallStep) and s.subflow.name == scope.name
            for other in self.flow.scopes()
            for s in other.steps.values()
        ):
            yield m.FlowError(scope.at, f"sub-flow '{scope.name}' is never called")

    def loops(self, scope: m.Scope) -> Iterator[m.FlowError]:
        """Cycles made only of steps that never wait for the caller (Tarjan's SCC)."""
        graph: dict[str, list[str]] = {}
        for step in scope.steps.values():
            if step.kind in m.INPUT_KINDS:
                continue
            graph[step.name] = [
                r.name
                for r in m.successors(step)
                if r.name in scope.steps and scope.steps[r.name].kind not in m.INPUT_KINDS
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


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _prompts(step: m.Step) -> list[m.Prompt]:
    found: list[m.Prompt | None] = []
    if isinstance(step, m.SayStep):
        found.append(step.prompt)
    if isinstance(step, m.MenuStep | m.AskStep | m.CollectStep):
        found += [step.prompt, *step.retries.no_input, *step.retries.no_match]
    if isinstance(step, m.TransferStep | m.CallbackStep | m.HangupStep):
        found.append(step.say)
    return [p for p in found if p is not None]


def _expressions(step: m.Step) -> list[tuple[Expr, m.Mark]]:
    if isinstance(step, m.SetStep):
        return [(a.expr, a.at) for a in step.assignments]
    if isinstance(step, m.BranchStep):
        return [(c.condition, c.at) for c in step.cases]
    if isinstance(step, m.LookupStep):
        found = [(step.value, step.value_at)] if step.value is not None else []
        if isinstance(step.source, m.HttpSource):
            found += [(e, step.source.at) for e in step.source.params.values()]
        return found
    if isinstance(step, m.CallbackStep) and step.number is not None:
        return [(step.number, step.at)]
    return []


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
