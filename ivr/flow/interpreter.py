"""The flow interpreter: walks one call through a checked ``Flow`` over a ``CallPort``.

Pure logic: no sockets, no audio, no clock of its own (``port.now()``). The SIP server, ``ivr chat``
and ``ivr test`` all run this same code over different ports.

Each step is run by its kind (``ivr.flow.steps``) and returns where to go next (``Go``) or how the
call ended (``End``). Around every step and every input two rules hold:

- the human fast path: on every input, the configured key or phrase leaves the current step (and
  any sub-flow) for the flow's human target, unless the step switched it off with a reason;
- the record: every step entered, every input heard and every outcome is appended to the
  ``CallPath`` (for the call detail record) and logged with the call id.

A mistake that only shows at run time (an expression comparing text with a number, a webhook
service that raises) must not strand the caller: it is logged, and the call goes to the human
target if there is one, otherwise it ends with the outcome ``error``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ivr.flow import model as m
from ivr.flow.expressions import ExprError, Value
from ivr.flow.matching import contains_phrase
from ivr.flow.port import CallerHungUp, CallPort, Heard, HttpLookup, ListenSpec, LookupFailed
from ivr.flow.sources import http_lookup
from ivr.flow.steps import registry
from ivr.flow.steps.kind import Accept, End, Go, ListeningStep, Next, Outcome
from ivr.logs import get_logger

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


class Interpreter:
    """Runs one call; it is the ``CallRuntime`` every step kind's ``run`` is given."""

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
        next_: Next = Go(start, "")
        try:
            for _ in range(self.max_steps):
                if isinstance(next_, End):
                    break
                next_ = await self._run_step(next_)
            else:
                next_ = await self.fail(f"more than {self.max_steps} steps")
        except CallerHungUp:
            next_ = End("hung_up_by_caller", "caller hung up")
            self._close("caller hung up")
        assert isinstance(next_, End)
        outcome = next_.outcome
        if outcome == "resolved" and self.booked:
            outcome = "callback_booked"
        self.log.info("flow ended", outcome=outcome, reason=next_.reason, steps=len(self.path.records))
        return FlowResult(outcome, next_.reason, dict(self.vars), self.path, self.flow.name)

    async def _run_step(self, go: Go) -> Next:
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
            result = await self.fail(f"{step.name}: {exc}")
        self._close(result.step if isinstance(result, Go) else result.outcome)
        return result

    def _close(self, outcome: str) -> None:
        if self.record is not None and not self.record.ended:
            self.record.outcome = outcome
            self.record.ended = self._stamp()

    def _stamp(self) -> str:
        return self.port.now().isoformat(timespec="milliseconds")

    async def fail(self, reason: str) -> Next:
        human = self.settings.human
        if human is not None and not self.failed_once:
            self.failed_once = True
            self.stack.clear()
            return Go(human.target.name, "")
        await self.port.hangup("error")
        return End("error", reason)

    # -- steps ----------------------------------------------------------------------------------

    async def _execute(self, step: m.Step, scope: m.Scope) -> Next:
        kind = registry.find(step.kind)
        if kind is None:
            return await self.fail(f"unknown step kind {step.kind}")
        result: Next = await kind.run(self, step, scope)
        return result

    def follow(self, ref: m.Ref | None, scope: m.Scope) -> Go:
        if ref is None:  # the validator makes this impossible for a served flow
            raise LookupFailed("no next step")
        return Go(ref.name, scope.name)

    def _escalate(self, retries: m.Retries, scope: m.Scope) -> Next:
        target = retries.escalate or (self.settings.human.target if self.settings.human else None)
        if target is None:
            raise LookupFailed("retries exhausted and no escalation step")
        self.log.info("escalate", to=target.name)
        if target.name in scope.steps:
            return Go(target.name, scope.name)
        self.stack.clear()  # escalation leaves the sub-flow for the main flow
        return Go(target.name, "")

    # -- speaking and listening -----------------------------------------------------------------

    def render(self, prompt: m.Prompt) -> str:
        template = prompt.template(self.language) or next(iter(prompt.texts.values()), None)
        return template.render(self.vars, self.language, self.port.now()) if template else ""

    async def say(self, prompt: m.Prompt, *, barge_in: bool) -> None:
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
        self.note(entry)
        self.log.info("heard", **entry)
        return heard

    def _wants_human(self, step: ListeningStep, heard: Heard, *, whole_entry: bool = False) -> bool:
        human = self.settings.human
        if human is None or not step.fast_path_enabled:
            return False
        if heard.kind == "keys" and human.key is not None:
            # In digit entry the key counts only as the whole entry: 0 is also a digit of a postcode.
            return heard.digits == human.key if whole_entry else heard.digits[:1] == human.key
        if heard.kind == "speech":
            return any(contains_phrase(heard.transcript, phrase) for phrase in human.phrases)
        return False

    async def _human(self) -> Go:
        human = self.settings.human
        assert human is not None
        self.log.info("human fast path", to=human.target.name)
        self.note({"human_fast_path": True})
        if human.say is not None:
            await self.say(human.say, barge_in=False)
        self.stack.clear()
        return Go(human.target.name, "")

    def listen_spec(self, retries: m.Retries, **kwargs: Any) -> ListenSpec:
        return ListenSpec(
            timeout=retries.timeout,
            inter_digit_timeout=self.settings.defaults.inter_digit_timeout,
            language=self.language,
            confidence=self.settings.defaults.confidence,
            **kwargs,
        )

    async def prompt_loop(
        self,
        step: ListeningStep,
        scope: m.Scope,
        spec: ListenSpec,
        accept: Accept,
        *,
        whole_entry: bool = False,
    ) -> Next:
        """Prompt, listen, accept; on failure re-prompt by attempt count, then escalate."""
        retries = step.retries
        counts = {"noinput": 0, "nomatch": 0}
        prompt = step.prompt
        for attempt in range(1, retries.attempts + 1):
            await self.say(prompt, barge_in=True)
            heard = await self._listen(spec)
            if self._wants_human(step, heard, whole_entry=whole_entry):
                return await self._human()
            kind = heard.kind
            if kind in ("keys", "speech"):
                result: Next | None = accept(heard)
                if result is not None:
                    return result
                kind = "nomatch"
            counts[kind] += 1
            self.vars["last"] = kind
            self.log.info(kind, step=step.name, attempt=attempt, of=retries.attempts)
            reprompts = retries.no_input if kind == "noinput" else retries.no_match
            prompt = reprompts[min(counts[kind], len(reprompts)) - 1] if reprompts else step.prompt
        return self._escalate(retries, scope)

    def note(self, entry: dict[str, Any]) -> None:
        if self.record is not None:
            self.record.inputs.append(entry)

    def context(self) -> dict[str, Value]:
        """What the agent should know without asking the caller again."""
        keep = {k: v for k, v in self.vars.items() if k not in ("call_id", "last")}
        keep["path"] = [r.step for r in self.path.records]
        return keep
