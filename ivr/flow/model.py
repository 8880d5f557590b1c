"""The checked flow: frozen dataclasses built from YAML by ``ivr.flow.build``.

This module holds what every flow has: marks, references, prompts, settings, scopes and the
fields every step shares (``Step``, ``Retries``); each kind of step adds its own fields in its
module under ``ivr.flow.steps``.

Everything an operator wrote keeps its ``Mark`` (file:line:column), so the validator can point at
the exact place and the interpreter can log where a step came from. A ``Flow`` is immutable: a
call holds the object it started with, and hot reload swaps in a new one without touching it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

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
    """The fields every step has; ``KIND`` is its YAML key (``ivr.flow.steps.registry``)."""

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
