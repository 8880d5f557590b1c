"""Steps that end self-service: ``transfer`` to a person, ``callback`` booking, ``hangup``.

These are where a caller's retries may end (``ends_self_service``): a person, a promise of one,
or a goodbye, never another "sorry, I didn't get that". The human fast path must reach one of
the first two (``reaches_person``).

- ``transfer`` hands the call to an agent with what the IVR learned (``CallRuntime.context``);
  ``no_agent`` is where it goes when nobody is free.
- ``callback`` runs the port's callback dialogue under the flow's callback policy; ``booked``,
  ``declined`` and, optionally, ``failed`` (the booking itself failed) are where it goes next.
- ``hangup`` may say goodbye first (never interrupted: it is the last thing the caller hears),
  then ends the call with its reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

from ivr.flow import model as m
from ivr.flow.expressions import Expr
from ivr.flow.port import CallbackRequest, TransferRequest
from ivr.flow.steps.kind import (
    EXPRESSION,
    PROMPT,
    STEP_NAME,
    CallRuntime,
    End,
    Exit,
    FlowBuilder,
    Go,
    Next,
    Schema,
    StepKind,
    WrittenStep,
    as_text,
)


def optional_prompt(b: FlowBuilder, options: dict[str, object], written: WrittenStep) -> m.Prompt | None:
    """The ``say`` of a step's options, if written."""
    return b.prompt(options["say"], (*written.value_path, "say")) if "say" in options else None


# -- transfer -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TransferStep(m.Step):
    KIND = "transfer"
    skill: str | None
    queue: str | None
    language: str | None
    mode: Literal["bridge", "refer"]
    say: m.Prompt | None
    no_agent: m.Ref | None


class Transfer(StepKind[TransferStep]):
    name = "transfer"
    schema: ClassVar[Schema] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "skill": {"type": "string"},
            "queue": {"type": "string"},
            "language": {"$ref": "#/$defs/language"},
            "mode": {"enum": ["bridge", "refer"]},
            "say": PROMPT,
        },
    }
    fields: ClassVar[Mapping[str, Schema]] = {"no_agent": STEP_NAME}
    waits_for_caller = True
    ends_self_service = True
    reaches_person = True
    dot_shape = "box3d"
    mermaid_shape = ("[[", "]]")

    def build(self, b: FlowBuilder, written: WrittenStep) -> TransferStep:
        value = written.value
        return TransferStep(
            skill=value.get("skill"),
            queue=value.get("queue"),
            language=value.get("language"),
            mode=value.get("mode", "bridge"),
            say=optional_prompt(b, value, written),
            no_agent=b.ref(written.raw.get("no_agent"), (*written.path, "no_agent")),
            **written.common,
        )

    async def run(self, call: CallRuntime, step: TransferStep, scope: m.Scope) -> Next:
        if step.say is not None:
            await call.say(step.say, barge_in=False)
        request = TransferRequest(
            step.skill, step.queue, step.language or call.language, step.mode, call.context()
        )
        outcome = await call.port.transfer(request)
        call.vars["transfer"] = {"status": outcome.status, "agent": outcome.agent}
        call.note({"transfer": outcome.status, "agent": outcome.agent})
        if outcome.connected:
            return End("transferred", f"agent {outcome.agent or ''}".strip())
        return call.follow(step.no_agent, scope)

    def exits(self, step: TransferStep, flow: m.Flow) -> list[Exit]:
        return [Exit(step.no_agent, "no agent")]

    def dead_end(self, step: TransferStep) -> str | None:
        return "'no_agent' (where to go when no agent is free)" if step.no_agent is None else None


# -- callback -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CallbackStep(m.Step):
    KIND = "callback"
    say: m.Prompt | None
    number: Expr | None
    booked: m.Ref | None
    declined: m.Ref | None
    failed: m.Ref | None


class Callback(StepKind[CallbackStep]):
    name = "callback"
    schema: ClassVar[Schema] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"say": PROMPT, "number": EXPRESSION},
    }
    fields: ClassVar[Mapping[str, Schema]] = {"booked": STEP_NAME, "declined": STEP_NAME, "failed": STEP_NAME}
    waits_for_caller = True
    ends_self_service = True
    reaches_person = True
    dot_shape = "box3d"
    mermaid_shape = ("[[", "]]")

    def build(self, b: FlowBuilder, written: WrittenStep) -> CallbackStep:
        value, raw, path = written.value, written.raw, written.path
        return CallbackStep(
            say=optional_prompt(b, value, written),
            number=b.expr(value["number"], (*written.value_path, "number")) if "number" in value else None,
            booked=b.ref(raw.get("booked"), (*path, "booked")),
            declined=b.ref(raw.get("declined"), (*path, "declined")),
            failed=b.ref(raw.get("failed"), (*path, "failed")),
            **written.common,
        )

    async def run(self, call: CallRuntime, step: CallbackStep, scope: m.Scope) -> Next:
        if step.say is not None:
            await call.say(step.say, barge_in=True)
        policy = call.settings.callback
        number = as_text(step.number.evaluate(call.vars)) if step.number is not None else call.port.caller
        request = CallbackRequest(
            number=number,
            language=call.language,
            attempts=policy.attempts if policy else 3,
            spacing=policy.spacing if policy else None,
            allowed_numbers=policy.numbers if policy else (),
            windows=policy.windows if policy else (),
            context=call.context(),
        )
        outcome = await call.port.offer_callback(request)
        call.vars["callback"] = {
            "status": outcome.status,
            "number": outcome.number,
            "promise": outcome.promise,
        }
        call.note({"callback": outcome.status, "number": outcome.number})
        if outcome.booked:
            call.booked = True
            return call.follow(step.booked, scope)
        if outcome.status == "failed" and step.failed is not None:
            return Go(step.failed.name, scope.name)
        return call.follow(step.declined, scope)

    def exits(self, step: CallbackStep, flow: m.Flow) -> list[Exit]:
        return [Exit(step.booked, "booked"), Exit(step.declined, "declined"), Exit(step.failed, "failed")]

    def dead_end(self, step: CallbackStep) -> str | None:
        return "'booked' and 'declined'" if step.booked is None or step.declined is None else None

    def expressions(self, step: CallbackStep) -> list[tuple[Expr, m.Mark]]:
        return [(step.number, step.at)] if step.number is not None else []


# -- hangup ---------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class HangupStep(m.Step):
    KIND = "hangup"
    say: m.Prompt | None
    reason: str


class Hangup(StepKind[HangupStep]):
    name = "hangup"
    schema: ClassVar[Schema] = {
        "oneOf": [
            {"type": "boolean", "const": True},
            {
                "type": "object",
                "additionalProperties": False,
                "properties": {"say": PROMPT, "reason": {"type": "string"}},
            },
        ]
    }
    ends_self_service = True
    dot_shape = "doublecircle"
    mermaid_shape = ("([", "])")

    def build(self, b: FlowBuilder, written: WrittenStep) -> HangupStep:
        options = written.value if isinstance(written.value, dict) else {}
        return HangupStep(
            say=optional_prompt(b, options, written),
            reason=str(options.get("reason", "resolved")),
            **written.common,
        )

    async def run(self, call: CallRuntime, step: HangupStep, scope: m.Scope) -> Next:
        if step.say is not None:
            await call.say(step.say, barge_in=False)
        await call.port.hangup(step.reason)
        return End("resolved", step.reason)


TRANSFER = Transfer()
CALLBACK = Callback()
HANGUP = Hangup()
