"""Steps that prompt and listen, with counted retries: ``menu``, ``ask`` and ``collect``.

- ``menu``: choices by key or phrase (or a named intent's phrases); optionally its own closing
  silence and an early match that ends the turn once a partial result is one of its phrases;
- ``ask``: an open question, free speech matched against the flow's intents;
- ``collect``: digits by keypad or spoken, checked for length and an optional pattern.

Each one runs the interpreter's prompt loop (``CallRuntime.prompt_loop``): after every failed try
it re-prompts by count, and after ``attempts`` it escalates; the validator checks that escalation
ends at a person, a callback or a goodbye, for every kind whose ``retries`` are set.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ivr.flow import model as m
from ivr.flow.loader import PathKey
from ivr.flow.matching import best_phrase, match_intent, spoken_digits
from ivr.flow.port import DEFAULT_END_SILENCE, Heard, ListenSpec
from ivr.flow.steps.kind import (
    DURATION,
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

# A menu's closing silence: under 100 ms a pause inside a word ends the turn; over 3 s callers
# think the line is dead.
MIN_END_SILENCE = 0.1
MAX_END_SILENCE = 3.0
DEFAULT_EARLY_MATCH = 0.2  # seconds: `early_match: true`

RETRY_FIELDS = {
    "no_input": {"$ref": "#/$defs/reprompts"},
    "no_match": {"$ref": "#/$defs/reprompts"},
    "attempts": {"$ref": "#/$defs/attempts"},
    "timeout": DURATION,
    "escalate": STEP_NAME,
}


def build_retries(b: FlowBuilder, value: Mapping[str, Any], path: PathKey) -> m.Retries:
    return m.Retries(
        attempts=int(value.get("attempts", b.defaults.attempts)),
        timeout=b.duration(value.get("timeout"), (*path, "timeout"), b.defaults.timeout),
        no_input=b.prompts(value.get("no_input"), (*path, "no_input")),
        no_match=b.prompts(value.get("no_match"), (*path, "no_match")),
        escalate=b.ref(value.get("escalate"), (*path, "escalate")) or b.defaults.escalate,
        at=b.doc.mark(path, key=True),
    )


def escalation(retries: m.Retries) -> Exit:
    return Exit(retries.escalate, f"after {retries.attempts} tries", dashed=True, escalation=True)


def unknown_intent(b: FlowBuilder, at: m.Mark, intent: str) -> None:
    b.error(at, f"unknown intent '{intent}' (define it under settings.intents)")


# -- menu -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choice:
    key: str | None
    phrases: tuple[str, ...]
    next: m.Ref
    at: m.Mark = field(compare=False)


@dataclass(frozen=True, kw_only=True)
class MenuStep(m.Step):
    KIND = "menu"
    prompt: m.Prompt
    choices: tuple[Choice, ...]
    retries: m.Retries
    end_silence: float | None = None  # seconds of quiet that end a spoken answer; None: the default
    early_match: float | None = None  # seconds a partial must stay one phrase in quiet; None: off


class Menu(StepKind[MenuStep]):
    name = "menu"
    schema: ClassVar[Schema] = {
        "type": "object",
        "required": ["prompt", "choices"],
        "additionalProperties": False,
        "properties": {
            "prompt": PROMPT,
            "choices": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["next"],
                    "additionalProperties": False,
                    "properties": {
                        "key": {
                            "type": ["string", "integer"],
                            "pattern": "^[0-9*#]$",
                            "minimum": 0,
                            "maximum": 9,
                        },
                        "phrases": {"type": "array", "items": {"type": "string", "minLength": 1}},
                        "intent": VARIABLE,
                        "next": STEP_NAME,
                    },
                },
            },
            **RETRY_FIELDS,
            "end_silence": {
                "$ref": "#/$defs/duration",
                "description": "Quiet that ends a spoken answer (100ms-3s; default 600ms).",
            },
            "early_match": {
                "description": "Answer as soon as the partial result is exactly one of the menu's phrases"
                " and has stayed so over this much quiet (true: 200ms), instead of waiting for the whole"
                " end_silence.",
                "anyOf": [{"type": "boolean"}, DURATION],
            },
        },
    }
    waits_for_caller = True
    dot_shape = "diamond"
    mermaid_shape = ("{", "}")

    def build(self, b: FlowBuilder, written: WrittenStep) -> MenuStep:
        value, path = written.value, written.value_path
        choices: list[Choice] = []
        for i, c in enumerate(value["choices"]):
            cp: PathKey = (*path, "choices", i)
            phrases = [str(p) for p in c.get("phrases", ())]
            if "intent" in c:
                if c["intent"] in b.intents:
                    phrases += b.intents[c["intent"]]
                else:
                    unknown_intent(b, b.doc.mark((*cp, "intent")), c["intent"])
            key = c.get("key")
            if key is None and not phrases:
                b.error(b.doc.mark(cp), "menu choice needs a key or phrases")
            choices.append(
                Choice(
                    None if key is None else str(key),
                    tuple(phrases),
                    b.required_ref(c["next"], (*cp, "next")),
                    b.doc.mark(cp),
                )
            )
        end_silence, early_match = self.endpointing(b, value, path, choices)
        return MenuStep(
            prompt=b.prompt(value["prompt"], (*path, "prompt")),
            choices=tuple(choices),
            retries=build_retries(b, value, path),
            end_silence=end_silence,
            early_match=early_match,
            **written.common,
        )

    def endpointing(
        self, b: FlowBuilder, value: Mapping[str, Any], path: PathKey, choices: list[Choice]
    ) -> tuple[float | None, float | None]:
        """A menu's ``end_silence`` and ``early_match`` (``true`` means DEFAULT_EARLY_MATCH)."""
        end_silence = None
        if "end_silence" in value:
            end_silence = b.duration(value["end_silence"], (*path, "end_silence"), DEFAULT_END_SILENCE)
            if not MIN_END_SILENCE <= end_silence <= MAX_END_SILENCE:
                b.error(
                    b.doc.mark((*path, "end_silence")),
                    f"end_silence must be between {MIN_END_SILENCE * 1000:.0f}ms and {MAX_END_SILENCE:.0f}s"
                    " (callers pause between words; longer only delays every answer)",
                )
        raw = value.get("early_match", False)
        if raw is False:
            return end_silence, None
        ep: PathKey = (*path, "early_match")
        early = DEFAULT_EARLY_MATCH if raw is True else b.duration(raw, ep, DEFAULT_EARLY_MATCH)
        closing = end_silence if end_silence is not None else DEFAULT_END_SILENCE
        if not any(c.phrases for c in choices):
            b.error(b.doc.mark(ep), "early_match needs spoken phrases, and no choice of this menu has any")
        elif not 0.02 <= early < closing:
            b.error(
                b.doc.mark(ep),
                f"early_match ({early * 1000:.0f}ms) must be shorter than end_silence"
                f" ({closing * 1000:.0f}ms), or it never ends a turn early",
            )
        return end_silence, early

    async def run(self, call: CallRuntime, step: MenuStep, scope: m.Scope) -> Next:
        human = call.settings.human
        grammar = [p for c in step.choices for p in c.phrases]
        if human is not None and step.fast_path_enabled:
            grammar += human.phrases
        spec = call.listen_spec(
            step.retries,
            grammar=tuple(grammar),
            max_digits=1,
            end_silence=step.end_silence,
            early_match=step.early_match,
        )

        def accept(heard: Heard) -> Next | None:
            if heard.kind == "keys":
                for choice in step.choices:
                    if choice.key is not None and heard.digits[:1] == choice.key:
                        call.vars["digits"] = heard.digits
                        return Go(choice.next.name, scope.name)
                return None
            found = best_phrase(
                heard.transcript, [(str(i), p) for i, c in enumerate(step.choices) for p in c.phrases]
            )
            if found is None:
                return None
            return Go(step.choices[int(found[0])].next.name, scope.name)

        return await call.prompt_loop(step, scope, spec, accept)

    def exits(self, step: MenuStep, flow: m.Flow) -> list[Exit]:
        found = []
        for choice in step.choices:
            words = "/".join(choice.phrases[:2])
            found.append(
                Exit(choice.next, " ".join(x for x in (choice.key and f"key {choice.key}", words) if x))
            )
        return [*found, escalation(step.retries)]

    def retries(self, step: MenuStep) -> m.Retries:
        return step.retries

    def check(self, flow: m.Flow, scope: m.Scope, step: MenuStep) -> Iterator[m.FlowError]:
        """No key or phrase twice, and none that is the human fast path's."""
        human = flow.settings.human if step.fast_path_enabled else None
        keys: dict[str, Choice] = {}
        phrases: dict[str, Choice] = {}
        human_key = human.key if human else None
        human_phrases = {_norm(p) for p in human.phrases} if human else set()
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


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


# -- ask ------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AskStep(m.Step):
    """An open question: free speech matched against the flow's intents."""

    KIND = "ask"
    prompt: m.Prompt
    routes: Mapping[str, m.Ref]  # intent name -> step
    retries: m.Retries


class Ask(StepKind[AskStep]):
    name = "ask"
    schema: ClassVar[Schema] = {
        "type": "object",
        "required": ["prompt", "intents"],
        "additionalProperties": False,
        "properties": {
            "prompt": PROMPT,
            "intents": {
                "type": "object",
                "minProperties": 1,
                "description": "Intent name (from settings.intents) -> step.",
                "additionalProperties": STEP_NAME,
            },
            **RETRY_FIELDS,
        },
    }
    waits_for_caller = True
    dot_shape = "diamond"
    mermaid_shape = ("{", "}")

    def build(self, b: FlowBuilder, written: WrittenStep) -> AskStep:
        value, kp = written.value, written.value_path
        routes: dict[str, m.Ref] = {}
        for intent, target in value["intents"].items():
            if intent not in b.intents:
                unknown_intent(b, b.doc.mark((*kp, "intents", intent), key=True), intent)
            routes[intent] = b.required_ref(target, (*kp, "intents", intent))
        return AskStep(
            prompt=b.prompt(value["prompt"], (*kp, "prompt")),
            routes=routes,
            retries=build_retries(b, value, kp),
            **written.common,
        )

    async def run(self, call: CallRuntime, step: AskStep, scope: m.Scope) -> Next:
        intents = {name: call.settings.intents.get(name, ()) for name in step.routes}
        spec = call.listen_spec(step.retries, grammar=(), max_digits=1)

        def accept(heard: Heard) -> Next | None:
            if heard.kind != "speech":
                return None
            found = match_intent(heard.transcript, intents)
            if found is None:
                return None
            call.vars["intent"], call.vars["intent_score"] = found
            return Go(step.routes[found[0]].name, scope.name)

        return await call.prompt_loop(step, scope, spec, accept)

    def exits(self, step: AskStep, flow: m.Flow) -> list[Exit]:
        return [escalation(step.retries), *(Exit(ref, f"intent {i}") for i, ref in step.routes.items())]

    def retries(self, step: AskStep) -> m.Retries:
        return step.retries


# -- collect --------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class CollectStep(m.Step):
    KIND = "collect"
    prompt: m.Prompt
    into: str
    min_digits: int
    max_digits: int
    terminator: str | None
    inter_digit_timeout: float
    pattern: str | None
    retries: m.Retries


class Collect(StepKind[CollectStep]):
    name = "collect"
    schema: ClassVar[Schema] = {
        "type": "object",
        "required": ["prompt", "into"],
        "additionalProperties": False,
        "properties": {
            "prompt": PROMPT,
            "into": VARIABLE,
            "min": {"type": "integer", "minimum": 1, "maximum": 32},
            "max": {"type": "integer", "minimum": 1, "maximum": 32},
            "terminator": {"type": ["string", "null"], "enum": ["#", "*", None]},
            "inter_digit_timeout": DURATION,
            "pattern": {"type": "string"},
            **RETRY_FIELDS,
        },
    }
    takes_next = True
    waits_for_caller = True
    dot_shape = "parallelogram"

    def build(self, b: FlowBuilder, written: WrittenStep) -> CollectStep:
        value, path = written.value, written.value_path
        low = int(value.get("min", 1))
        high = int(value.get("max", max(low, 1)))
        if low > high:
            b.error(b.doc.mark((*path, "min")), f"min ({low}) is larger than max ({high})")
        return CollectStep(
            prompt=b.prompt(value["prompt"], (*path, "prompt")),
            into=str(value["into"]),
            min_digits=low,
            max_digits=high,
            terminator=value.get("terminator", "#"),
            inter_digit_timeout=b.duration(
                value.get("inter_digit_timeout"),
                (*path, "inter_digit_timeout"),
                b.defaults.inter_digit_timeout,
            ),
            pattern=b.pattern(value.get("pattern"), (*path, "pattern")),
            retries=build_retries(b, value, path),
            **written.common,
        )

    async def run(self, call: CallRuntime, step: CollectStep, scope: m.Scope) -> Next:
        spec = call.listen_spec(
            step.retries,
            min_digits=step.min_digits,
            max_digits=step.max_digits,
            terminator=step.terminator,
        )
        spec = ListenSpec(**{**spec.__dict__, "inter_digit_timeout": step.inter_digit_timeout})

        def accept(heard: Heard) -> Next | None:
            digits = heard.digits if heard.kind == "keys" else spoken_digits(heard.transcript)
            if digits is None or not step.min_digits <= len(digits) <= step.max_digits:
                return None
            if step.pattern is not None and re.search(step.pattern, digits) is None:
                return None
            call.vars[step.into] = digits
            call.vars["digits"] = digits
            return call.follow(step.next, scope)

        return await call.prompt_loop(step, scope, spec, accept, whole_entry=True)

    def exits(self, step: CollectStep, flow: m.Flow) -> list[Exit]:
        return [escalation(step.retries)]

    def retries(self, step: CollectStep) -> m.Retries:
        return step.retries

    def assigns(self, step: CollectStep) -> list[tuple[str, ...]]:
        return [(step.into,)]


MENU = Menu()
ASK = Ask()
COLLECT = Collect()
