"""The checked flow: frozen dataclasses built from YAML by ``ivr.flow.build``.

Everything an operator wrote keeps its ``Mark`` (file:line:column), so the validator can point at
the exact place and the interpreter can log where a step came from. A ``Flow`` is immutable: a
call holds the object it started with, and hot reload swaps in a new one without touching it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from ivr.flow.expressions import Expr
from ivr.flow.hours import OpenRange, is_open
from ivr.flow.templates import Template


@dataclass(frozen=True, order=True)
class Mark:
    file: str
    line: int  # 1-based
    column: int  # 1-based

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


UNKNOWN = Mark("<flow>", 1, 1)


@dataclass(frozen=True)
class FlowError:
    """One mistake in a flow, printed as ``file:line:column: message``."""

    at: Mark
    message: str

    def __str__(self) -> str:
        return f"{self.at}: {self.message}"


class FlowInvalid(Exception):
    def __init__(self, errors: list[FlowError]) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class Ref:
    """A reference to a step by name, remembered with where it was written."""

    name: str
    at: Mark = field(compare=False)


@dataclass(frozen=True)
class Prompt:
    """What the caller hears: text per language (rendered by TTS) and optionally a recording."""

    texts: Mapping[str, Template]
    at: Mark = field(compare=False)
    recording: str | None = None
    # Where each one-line text starts, so a bad variable is reported at its own column.
    text_at: Mapping[str, Mark] = field(default_factory=dict, compare=False)

    def template(self, language: str) -> Template | None:
        return self.texts.get(language)


# -- settings -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BusinessHours:
    """The flow's opening hours (``ivr.flow.hours`` parses and computes them)."""

    timezone: str
    ranges: tuple[OpenRange, ...]
    closed: Ref | None  # step used instead of the start step outside the hours
    at: Mark = field(compare=False)

    def is_open(self, now: dt.datetime) -> bool:
        return is_open(self, now)


@dataclass(frozen=True)
class HumanPath:
    """The human fast path: a key and phrases that reach a person from every step."""

    key: str | None
    phrases: tuple[str, ...]
    say: Prompt | None
    target: Ref
    at: Mark = field(compare=False)


@dataclass(frozen=True)
class CallbackPolicy:
    attempts: int
    spacing: float | None  # seconds between attempts; None: the server's default
    numbers: tuple[str, ...]  # regexes an accepted callback number must match (E.164)
    windows: tuple[str, ...]  # e.g. "mon-fri 08:00-20:00"; empty = the business hours
    at: Mark = field(compare=False)


@dataclass(frozen=True)
class Defaults:
    attempts: int = 3
    timeout: float = 5.0
    inter_digit_timeout: float = 3.0
    confidence: float = 0.5
    escalate: Ref | None = None


@dataclass(frozen=True)
class Settings:
    language: str
    voice: str | None
    hours: BusinessHours | None
    human: HumanPath | None
    callback: CallbackPolicy | None
    defaults: Defaults
    http_allow: tuple[str, ...]
    intents: Mapping[str, tuple[str, ...]]


# -- steps ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FastPathOverride:
    """A step that switches the human fast path off must say why (``reason``)."""

    disabled: bool
    reason: str | None
    at: Mark = field(compare=False)


@dataclass(frozen=True, kw_only=True)
class Step:
    name: str
    at: Mark = field(compare=False)
    next: Ref | None = None
    human: FastPathOverride | None = None

    @property
    def kind(self) -> str:
        return type(self).KIND

    KIND = "step"

    @property
    def fast_path_enabled(self) -> bool:
        return self.human is None or not self.human.disabled


@dataclass(frozen=True, kw_only=True)
class Retries:
    """Counted no-input/no-match handling, as VoiceXML's counted ``noinput``/``nomatch``.

    ``no_input[n]`` is spoken instead of the prompt after the (n+1)th silence; the last one repeats.
    After ``attempts`` failed tries in total, the call goes to ``escalate``.
    """

    attempts: int
    timeout: float
    no_input: tuple[Prompt, ...]
    no_match: tuple[Prompt, ...]
    escalate: Ref | None
    at: Mark = field(compare=False)


@dataclass(frozen=True, kw_only=True)
class SayStep(Step):
    KIND = "say"
    prompt: Prompt
    barge_in: bool = True


@dataclass(frozen=True)
class Choice:
    key: str | None
    phrases: tuple[str, ...]
    next: Ref
    at: Mark = field(compare=False)


@dataclass(frozen=True, kw_only=True)
class MenuStep(Step):
    KIND = "menu"
    prompt: Prompt
    choices: tuple[Choice, ...]
    retries: Retries
    end_silence: float | None = None  # seconds of quiet that end a spoken answer; None: the default
    early_match: float | None = None  # seconds a partial must stay one phrase in quiet; None: off


@dataclass(frozen=True, kw_only=True)
class AskStep(Step):
    """An open question: free speech matched against the flow's intents."""

    KIND = "ask"
    prompt: Prompt
    routes: Mapping[str, Ref]  # intent name -> step
    retries: Retries


@dataclass(frozen=True, kw_only=True)
class CollectStep(Step):
    KIND = "collect"
    prompt: Prompt
    into: str
    min_digits: int
    max_digits: int
    terminator: str | None
    inter_digit_timeout: float
    pattern: str | None
    retries: Retries


@dataclass(frozen=True)
class Assignment:
    name: str
    expr: Expr
    at: Mark = field(compare=False)


@dataclass(frozen=True, kw_only=True)
class SetStep(Step):
    KIND = "set"
    assignments: tuple[Assignment, ...]


@dataclass(frozen=True)
class Case:
    condition: Expr
    then: Ref
    at: Mark = field(compare=False)


@dataclass(frozen=True, kw_only=True)
class BranchStep(Step):
    KIND = "branch"
    cases: tuple[Case, ...]
    otherwise: Ref | None


@dataclass(frozen=True)
class TableSource:
    path: str  # relative to the flow file
    rows: tuple[Mapping[str, str], ...]
    at: Mark = field(compare=False)


@dataclass(frozen=True)
class HttpSource:
    url: str
    params: Mapping[str, Expr]
    timeout: float
    at: Mark = field(compare=False)


@dataclass(frozen=True, kw_only=True)
class LookupStep(Step):
    KIND = "lookup"
    source: TableSource | HttpSource
    key: str | None  # table column compared with ``value``
    value: Expr | None
    value_at: Mark = field(compare=False)
    into: str  # results land in ``lookup.<into>``
    found: Ref | None
    not_found: Ref | None
    fallback: Ref | None  # webhook failed or timed out


@dataclass(frozen=True, kw_only=True)
class TransferStep(Step):
    KIND = "transfer"
    skill: str | None
    queue: str | None
    language: str | None
    mode: Literal["bridge", "refer"]
    say: Prompt | None
    no_agent: Ref | None


@dataclass(frozen=True, kw_only=True)
class CallbackStep(Step):
    KIND = "callback"
    say: Prompt | None
    number: Expr | None
    booked: Ref | None
    declined: Ref | None
    failed: Ref | None


@dataclass(frozen=True, kw_only=True)
class HangupStep(Step):
    KIND = "hangup"
    say: Prompt | None
    reason: str


@dataclass(frozen=True, kw_only=True)
class GotoStep(Step):
    KIND = "goto"
    target: Ref


@dataclass(frozen=True, kw_only=True)
class CallStep(Step):
    """Enter a sub-flow; when it returns, continue at ``next``."""

    KIND = "call"
    subflow: Ref


@dataclass(frozen=True, kw_only=True)
class ReturnStep(Step):
    KIND = "return"


INPUT_KINDS = frozenset({"menu", "ask", "collect", "callback", "transfer"})
# Steps whose escalation chain may end the attempt to self-serve: a person, a callback, goodbye.
HANDOFF_KINDS = frozenset({"transfer", "callback", "hangup"})


@dataclass(frozen=True)
class Scope:
    """The main flow or one sub-flow: a start step and its named steps."""

    name: str  # "" for the main flow
    start: Ref
    steps: Mapping[str, Step]
    at: Mark = field(compare=False)


@dataclass(frozen=True)
class Flow:
    name: str
    path: str
    settings: Settings
    main: Scope
    subflows: Mapping[str, Scope]
    description: str = ""
    version: str = ""  # the flow file's content hash (what an operator can diff)

    def scope(self, name: str) -> Scope:
        return self.main if not name else self.subflows[name]

    def scopes(self) -> list[Scope]:
        return [self.main, *self.subflows.values()]


def successors(step: Step) -> list[Ref]:
    """Every step reference a step can lead to (for reachability, dead ends and graphs)."""
    refs: list[Ref | None] = [step.next]
    if isinstance(step, MenuStep):
        refs += [c.next for c in step.choices] + [step.retries.escalate]
    elif isinstance(step, AskStep):
        refs += [*step.routes.values(), step.retries.escalate]
    elif isinstance(step, CollectStep):
        refs.append(step.retries.escalate)
    elif isinstance(step, BranchStep):
        refs += [c.then for c in step.cases] + [step.otherwise]
    elif isinstance(step, LookupStep):
        refs += [step.found, step.not_found, step.fallback]
    elif isinstance(step, TransferStep):
        refs.append(step.no_agent)
    elif isinstance(step, CallbackStep):
        refs += [step.booked, step.declined, step.failed]
    elif isinstance(step, GotoStep):
        refs.append(step.target)
    return [r for r in refs if r is not None]
