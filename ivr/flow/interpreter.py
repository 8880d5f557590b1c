"""The flow interpreter: walks one call through a checked ``Flow`` over a ``CallPort``.

Pure logic: no sockets, no audio, no clock of its own (``port.now()``). The SIP server, ``ivr chat``
and ``ivr test`` all run this same code over different ports.

Each step returns where to go next (``_Go``) or how the call ended (``_End``). Around every step
and every input two rules hold:

- the human fast path: on every input, the configured key or phrase leaves the current step (and
  any sub-flow) for the flow's human target, unless the step switched it off with a reason;
- the record: every step entered, every input heard and every outcome is appended to the
  ``CallPath`` (for the call detail record) and logged with the call id.

A mistake that only shows at run time (an expression comparing text with a number, a webhook
service that raises) must not strand the caller: it is logged, and the call goes to the human
target if there is one, otherwise it ends with the outcome ``error``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ivr.flow import model as m
from ivr.flow.expressions import ExprError, Value
from ivr.flow.lookup import find_row, http_lookup
from ivr.flow.matching import best_phrase, contains_phrase, match_intent, spoken_digits
from ivr.flow.port import (
    CallbackRequest,
    CallerHungUp,
    CallPort,
    Heard,
    HttpLookup,
    ListenSpec,
    LookupFailed,
    TransferRequest,
)
from ivr.logs import get_logger

Outcome = Literal["resolved", "transferred", "callback_booked", "hung_up_by_caller", "error"]
MAX_STEPS = 500  # per call; a validated flow cannot loop without input, this is the last guard


@dataclass
class PathRecord:
    """One step of a call's path: what was entered, heard and decided."""

    step: str
    kind: str
    scope: str
    started: str  # ISO 8601 from the port's clock
    inputs: list[dict[str, Any]] = field(default_factory=list)
    said: list[str] = field(default_factory=list)
    outcome: str = ""
    ended: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "kind": self.kind,
            "scope": self.scope,
            "started": self.started,
            "ended": self.ended,
            "inputs": self.inputs,
            "said": self.said,
            "outcome": self.outcome,
        }


@dataclass
class CallPath:
    records: list[PathRecord] = field(default_factory=list)

    @property
    def steps(self) -> list[str]:
        return [r.step for r in self.records]

    @property
    def said(self) -> list[str]:
        return [text for r in self.records for text in r.said]

    def as_list(self) -> list[dict[str, Any]]:
        return [r.as_dict() for r in self.records]


@dataclass(frozen=True)
class FlowResult:
    outcome: Outcome
    reason: str
    variables: dict[str, Value]
    path: CallPath
    flow: str


@dataclass(frozen=True)
class _Go:
    step: str
    scope: str


@dataclass(frozen=True)
class _End:
    outcome: Outcome
    reason: str


_Next = _Go | _End


class Interpreter:
    def __init__(
        self,
        flow: m.Flow,
        port: CallPort,
        *,
        http: HttpLookup = http_lookup,
        max_steps: int = MAX_STEPS,
        on_step: Callable[[str, str], None] | None = None,
    ) -> None:
        self.on_step = on_step  # (scope, step) as each step starts: ``ivr chat`` labels its lines
        self.flow = flow
        self.port = port
        self.http = http
        self.max_steps = max_steps
        self.settings = flow.settings
        self.language = flow.settings.language
        self.path = CallPath()
        self.stack: list[tuple[str, str]] = []  # (scope, step to continue at) per sub-flow call
        self.log = get_logger(call_id=port.call_id, flow=flow.name)
        self.booked = False
        self.failed_once = False
        self.record: PathRecord | None = None
        self.vars: dict[str, Value] = {}

    # -- the loop -------------------------------------------------------------------------------

    async def run(self) -> FlowResult:
        now = self.port.now()
        hours = self.settings.hours
        is_open = hours.is_open(now) if hours is not None else True
        self.vars = {
            "caller": self.port.caller,
            "called": self.port.called,
            "call_id": self.port.call_id,
            "language": self.language,
            "time": now.strftime("%H:%M"),
            "date": now.date().isoformat(),
            "weekday": now.strftime("%a").lower(),
            "open": is_open,
            "digits": "",
            "intent": "",
            "intent_score": 0.0,
            "transcript": "",
            "confidence": 0.0,
            "lookup": {},
            "callback": None,
            "transfer": None,
            "last": "",
        }
        start = self.flow.main.start.name
        if not is_open and hours is not None and hours.closed is not None:
            start = hours.closed.name
        self.log.info("flow started", start=start, open=is_open)
        next_: _Next = _Go(start, "")
        try:
            for _ in range(self.max_steps):
                if isinstance(next_, _End):
                    break
                next_ = await self._run_step(next_)
            else:
                next_ = await self._fail(f"more than {self.max_steps} steps")
        except CallerHungUp:
            next_ = _End("hung_up_by_caller", "caller hung up")
            self._close("caller hung up")
        assert isinstance(next_, _End)
        outcome = next_.outcome
        if outcome == "resolved" and self.booked:
            outcome = "callback_booked"
        self.log.info("flow ended", outcome=outcome, reason=next_.reason, steps=len(self.path.records))
        return FlowResult(outcome, next_.reason, dict(self.vars), self.path, self.flow.name)

    async def _run_step(self, go: _Go) -> _Next:
        scope = self.flow.scope(go.scope)
        step = scope.steps[go.step]
        self.record = PathRecord(step.name, step.kind, scope.name, self._stamp())
        self.path.records.append(self.record)
        self.log.info("step", step=step.name, kind=step.kind, scope=scope.name or None)
        if self.on_step is not None:
            self.on_step(scope.name, step.name)
        try:
            result = await self._execute(step, scope)
        except (ExprError, LookupFailed) as exc:
            self.log.error("flow error", step=step.name, error=str(exc))
            result = await self._fail(f"{step.name}: {exc}")
        self._close(result.step if isinstance(result, _Go) else result.outcome)
        return result

    def _close(self, outcome: str) -> None:
        if self.record is not None and not self.record.ended:
            self.record.outcome = outcome
            self.record.ended = self._stamp()

    def _stamp(self) -> str:
        return self.port.now().isoformat(timespec="milliseconds")

    async def _fail(self, reason: str) -> _Next:
        human = self.settings.human
        if human is not None and not self.failed_once:
            self.failed_once = True
            self.stack.clear()
            return _Go(human.target.name, "")
        await self.port.hangup("error")
        return _End("error", reason)

    # -- steps ----------------------------------------------------------------------------------

    async def _execute(self, step: m.Step, scope: m.Scope) -> _Next:
        if isinstance(step, m.SayStep):
            await self._say(step.prompt, barge_in=step.barge_in)
            return self._next(step.next, scope)
        if isinstance(step, m.MenuStep):
            return await self._menu(step, scope)
        if isinstance(step, m.AskStep):
            return await self._ask(step, scope)
        if isinstance(step, m.CollectStep):
            return await self._collect(step, scope)
        if isinstance(step, m.SetStep):
            for assignment in step.assignments:
                self.vars[assignment.name] = assignment.expr.evaluate(self.vars)
            return self._next(step.next, scope)
        if isinstance(step, m.BranchStep):
            for case in step.cases:
                if case.condition.truth(self.vars):
                    return _Go(case.then.name, scope.name)
            return self._next(step.otherwise, scope)
        if isinstance(step, m.LookupStep):
            return await self._lookup(step, scope)
        if isinstance(step, m.TransferStep):
            return await self._transfer(step, scope)
        if isinstance(step, m.CallbackStep):
            return await self._callback(step, scope)
        if isinstance(step, m.HangupStep):
            if step.say is not None:
                await self._say(step.say, barge_in=False)
            await self.port.hangup(step.reason)
            return _End("resolved", step.reason)
        if isinstance(step, m.GotoStep):
            return _Go(step.target.name, scope.name)
        if isinstance(step, m.CallStep):
            if step.next is None:
                return await self._fail(f"step '{step.name}' has no next")
            self.stack.append((scope.name, step.next.name))
            sub = self.flow.subflows[step.subflow.name]
            return _Go(sub.start.name, sub.name)
        if isinstance(step, m.ReturnStep):
            if not self.stack:
                return await self._fail("return outside a sub-flow")
            caller_scope, resume = self.stack.pop()
            return _Go(resume, caller_scope)
        return await self._fail(f"unknown step kind {step.kind}")

    def _next(self, ref: m.Ref | None, scope: m.Scope) -> _Go:
        if ref is None:  # the validator makes this impossible for a served flow
            raise LookupFailed("no next step")
        return _Go(ref.name, scope.name)

    def _escalate(self, retries: m.Retries, scope: m.Scope) -> _Next:
        target = retries.escalate or (self.settings.human.target if self.settings.human else None)
        if target is None:
            raise LookupFailed("retries exhausted and no escalation step")
        self.log.info("escalate", to=target.name)
        if target.name in scope.steps:
            return _Go(target.name, scope.name)
        self.stack.clear()  # escalation leaves the sub-flow for the main flow
        return _Go(target.name, "")

    # -- speaking and listening -----------------------------------------------------------------

    def render(self, prompt: m.Prompt) -> str:
        template = prompt.template(self.language) or next(iter(prompt.texts.values()), None)
        return template.render(self.vars, self.language, self.port.now()) if template else ""

    async def _say(self, prompt: m.Prompt, *, barge_in: bool) -> None:
        text = self.render(prompt)
        if self.record is not None:
            self.record.said.append(text)
        result = await self.port.say(text, barge_in=barge_in, recording=prompt.recording)
        if not result.completed and self.record is not None:
            by = result.interrupted_by
            self.record.inputs.append({"barge_in": True, "kind": by.kind if by else "unknown"})

    async def _listen(self, spec: ListenSpec) -> Heard:
        heard = await self.port.listen(spec)
        entry: dict[str, Any] = {"kind": heard.kind}
        if heard.digits:
            entry["digits"] = heard.digits
        if heard.transcript:
            entry["transcript"] = heard.transcript
            entry["confidence"] = heard.confidence
            self.vars["transcript"] = heard.transcript
            self.vars["confidence"] = heard.confidence
        if self.record is not None:
            self.record.inputs.append(entry)
        self.log.info("heard", **entry)
        return heard

    def _wants_human(self, step: m.Step, heard: Heard, *, whole_entry: bool = False) -> bool:
        human = self.settings.human
        if human is None or not step.fast_path_enabled:
            return False
        if heard.kind == "keys" and human.key is not None:
            # In digit entry the key counts only as the whole entry: 0 is also a digit of a postcode.
            return heard.digits == human.key if whole_entry else heard.digits[:1] == human.key
        if heard.kind == "speech":
            return any(contains_phrase(heard.transcript, phrase) for phrase in human.phrases)
        return False

    async def _human(self) -> _Go:
        human = self.settings.human
        assert human is not None
        self.log.info("human fast path", to=human.target.name)
        if self.record is not None:
            self.record.inputs.append({"human_fast_path": True})
        if human.say is not None:
            await self._say(human.say, barge_in=False)
        self.stack.clear()
        return _Go(human.target.name, "")

    def _spec(self, step: m.Step, retries: m.Retries, **kwargs: Any) -> ListenSpec:
        return ListenSpec(
            timeout=retries.timeout,
            inter_digit_timeout=self.settings.defaults.inter_digit_timeout,
            language=self.language,
            confidence=self.settings.defaults.confidence,
            **kwargs,
        )

    async def _prompt_loop(
        self,
        step: m.MenuStep | m.AskStep | m.CollectStep,
        scope: m.Scope,
        spec: ListenSpec,
        accept: Any,
        *,
        whole_entry: bool = False,
    ) -> _Next:
        """Prompt, listen, accept; on failure re-prompt by attempt count, then escalate."""
        retries = step.retries
        counts = {"noinput": 0, "nomatch": 0}
        prompt = step.prompt
        for attempt in range(1, retries.attempts + 1):
            await self._say(prompt, barge_in=True)
            heard = await self._listen(spec)
            if self._wants_human(step, heard, whole_entry=whole_entry):
                return await self._human()
            kind = heard.kind
            if kind in ("keys", "speech"):
                result: _Next | None = accept(heard)
                if result is not None:
                    return result
                kind = "nomatch"
            counts[kind] += 1
            self.vars["last"] = kind
            self.log.info(kind, step=step.name, attempt=attempt, of=retries.attempts)
            reprompts = retries.no_input if kind == "noinput" else retries.no_match
            prompt = reprompts[min(counts[kind], len(reprompts)) - 1] if reprompts else step.prompt
        return self._escalate(retries, scope)

    async def _menu(self, step: m.MenuStep, scope: m.Scope) -> _Next:
        human = self.settings.human
        grammar = [p for c in step.choices for p in c.phrases]
        if human is not None and step.fast_path_enabled:
            grammar += human.phrases
        spec = self._spec(
            step,
            step.retries,
            grammar=tuple(grammar),
            max_digits=1,
            end_silence=step.end_silence,
            early_match=step.early_match,
        )

        def accept(heard: Heard) -> _Next | None:
            if heard.kind == "keys":
                for choice in step.choices:
                    if choice.key is not None and heard.digits[:1] == choice.key:
                        self.vars["digits"] = heard.digits
                        return _Go(choice.next.name, scope.name)
                return None
            found = best_phrase(
                heard.transcript, [(str(i), p) for i, c in enumerate(step.choices) for p in c.phrases]
            )
            if found is None:
                return None
            return _Go(step.choices[int(found[0])].next.name, scope.name)

        return await self._prompt_loop(step, scope, spec, accept)

    async def _ask(self, step: m.AskStep, scope: m.Scope) -> _Next:
        intents = {name: self.settings.intents.get(name, ()) for name in step.routes}
        spec = self._spec(step, step.retries, grammar=(), max_digits=1)

        def accept(heard: Heard) -> _Next | None:
            if heard.kind != "speech":
                return None
            found = match_intent(heard.transcript, intents)
            if found is None:
                return None
            self.vars["intent"], self.vars["intent_score"] = found
            return _Go(step.routes[found[0]].name, scope.name)

        return await self._prompt_loop(step, scope, spec, accept)

    async def _collect(self, step: m.CollectStep, scope: m.Scope) -> _Next:
        spec = self._spec(
            step,
            step.retries,
            min_digits=step.min_digits,
            max_digits=step.max_digits,
            terminator=step.terminator,
        )
        spec = ListenSpec(**{**spec.__dict__, "inter_digit_timeout": step.inter_digit_timeout})

        def accept(heard: Heard) -> _Next | None:
            digits = heard.digits if heard.kind == "keys" else spoken_digits(heard.transcript)
            if digits is None or not step.min_digits <= len(digits) <= step.max_digits:
                return None
            if step.pattern is not None and re.search(step.pattern, digits) is None:
                return None
            self.vars[step.into] = digits
            self.vars["digits"] = digits
            return self._next(step.next, scope)

        return await self._prompt_loop(step, scope, spec, accept, whole_entry=True)

    # -- lookups and hand-offs ------------------------------------------------------------------

    async def _lookup(self, step: m.LookupStep, scope: m.Scope) -> _Next:
        lookups = self.vars.setdefault("lookup", {})
        assert isinstance(lookups, dict)
        result: dict[str, Value] | None
        if isinstance(step.source, m.TableSource):
            value = step.value.evaluate(self.vars) if step.value is not None else None
            result = find_row(step.source.rows, step.key or "", value)
        else:
            source = step.source
            params = {k: _text(e.evaluate(self.vars)) for k, e in source.params.items()}
            try:
                if _host(source.url) not in self.settings.http_allow:  # the validator checks it too
                    raise LookupFailed(f"host of {source.url} not allowed")
                reply = await self.http(source.url, params, source.timeout)
            except LookupFailed as exc:
                self.log.warning("webhook failed", step=step.name, error=str(exc))
                self._note(step, {"webhook": "failed", "error": str(exc)})
                lookups[step.into] = None
                if step.fallback is None:
                    raise
                return _Go(step.fallback.name, scope.name)
            except Exception as exc:  # an injected service must not take the call down
                self.log.exception("webhook service raised", step=step.name)
                self._note(step, {"webhook": "failed", "error": repr(exc)})
                lookups[step.into] = None
                if step.fallback is None:
                    raise LookupFailed(repr(exc)) from exc
                return _Go(step.fallback.name, scope.name)
            result = _json_value(reply) if reply else None  # type: ignore[assignment]
        lookups[step.into] = result
        self._note(step, {"lookup": step.into, "found": result is not None})
        target = (step.found if result is not None else step.not_found) or step.next
        return self._next(target, scope)

    def _note(self, step: m.Step, entry: dict[str, Any]) -> None:
        if self.record is not None:
            self.record.inputs.append(entry)

    def context(self) -> dict[str, Value]:
        """What the agent should know without asking the caller again."""
        keep = {k: v for k, v in self.vars.items() if k not in ("call_id", "last")}
        keep["path"] = [r.step for r in self.path.records]
        return keep

    async def _transfer(self, step: m.TransferStep, scope: m.Scope) -> _Next:
        if step.say is not None:
            await self._say(step.say, barge_in=False)
        request = TransferRequest(
            step.skill, step.queue, step.language or self.language, step.mode, self.context()
        )
        outcome = await self.port.transfer(request)
        self.vars["transfer"] = {"status": outcome.status, "agent": outcome.agent}
        self._note(step, {"transfer": outcome.status, "agent": outcome.agent})
        if outcome.connected:
            return _End("transferred", f"agent {outcome.agent or ''}".strip())
        return self._next(step.no_agent, scope)

    async def _callback(self, step: m.CallbackStep, scope: m.Scope) -> _Next:
        if step.say is not None:
            await self._say(step.say, barge_in=True)
        policy = self.settings.callback
        number = _text(step.number.evaluate(self.vars)) if step.number is not None else self.port.caller
        request = CallbackRequest(
            number=number,
            language=self.language,
            attempts=policy.attempts if policy else 3,
            spacing=policy.spacing if policy else None,
            allowed_numbers=policy.numbers if policy else (),
            windows=policy.windows if policy else (),
            context=self.context(),
        )
        outcome = await self.port.offer_callback(request)
        self.vars["callback"] = {
            "status": outcome.status,
            "number": outcome.number,
            "promise": outcome.promise,
        }
        self._note(step, {"callback": outcome.status, "number": outcome.number})
        if outcome.booked:
            self.booked = True
            return self._next(step.booked, scope)
        if outcome.status == "failed" and step.failed is not None:
            return _Go(step.failed.name, scope.name)
        return self._next(step.declined, scope)


def _text(value: Value) -> str:
    return "" if value is None else str(value)


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname or ""


def _json_value(data: Any) -> Value:
    """JSON from a webhook, reduced to what expressions and templates understand."""
    if isinstance(data, dict):
        return {str(k): _json_value(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_json_value(v) for v in data]
    if isinstance(data, str | int | float | bool) or data is None:
        return data
    return str(data)
