"""What a step kind is: the one definition that the builder, validator, interpreter and graph read.

A kind is a ``StepKind`` subclass, registered by its YAML key (``ivr.flow.steps.registry``). It
says everything that differs from one kind to the next:

- the JSON Schema of its value (``schema``) and of any step-level field only it takes (``fields``,
  e.g. a lookup's ``found``), from which the flow schema is generated (``flow_schema``);
- ``build``: its model object from the YAML, reporting local mistakes through the builder;
- what the validator needs: where it leads (``exits``), whether it waits for the caller, what a
  missing way out is called (``dead_end``), its expressions, the variables it sets, and any rule
  of its own (``check``);
- ``run``: one pass of a call through it, over the running interpreter (``CallRuntime``);
- how it is drawn: its shapes, and the labels on its ``exits``.

Everything that holds for every kind stays where it is: ``next``, the human fast path and its
override, prompt variables, reachability and loops, the prompt-and-listen loop with its retries.
``FlowBuilder`` and ``CallRuntime`` below are all a kind may use of the builder and of the
interpreter (its checks are given the flow itself), so a new kind is one module that needs
nothing else changed.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

from structlog.typing import FilteringBoundLogger

from ivr.flow import model as m
from ivr.flow.expressions import Expr, Value
from ivr.flow.loader import Document, PathKey
from ivr.flow.port import CallPort, Heard, HttpLookup, ListenSpec

Schema = Mapping[str, Any]  # a JSON Schema fragment, as JSON-compatible data
S = TypeVar("S", bound=m.Step)
# The flow schema's shared definitions that kinds' fragments refer to most.
STEP_NAME: Schema = {"$ref": "#/$defs/stepName"}
PROMPT: Schema = {"$ref": "#/$defs/prompt"}
EXPRESSION: Schema = {"$ref": "#/$defs/expression"}
VARIABLE: Schema = {"$ref": "#/$defs/variable"}
DURATION: Schema = {"$ref": "#/$defs/duration"}
# The step-level fields of every kind (``m.Step``), besides the kind's own key.
COMMON_FIELDS: Mapping[str, Schema] = {
    "description": {"type": "string"},
    "next": STEP_NAME,
    "human": {"$ref": "#/$defs/human"},
}


# -- what running a step returns ------------------------------------------------------------------


@dataclass(frozen=True)
class Go:
    """Continue the call at ``step`` of ``scope`` ("" for the main flow)."""

    step: str
    scope: str


@dataclass(frozen=True)
class End:
    """The call is over."""

    outcome: Outcome
    reason: str


Outcome = Literal["resolved", "transferred", "callback_booked", "hung_up_by_caller", "error"]
Next = Go | End


@dataclass(frozen=True)
class Exit:
    """One way out of a step: an arrow in the graph, an edge the validator follows."""

    to: m.Ref | None  # None: not set (nothing drawn, nothing followed)
    label: str = ""
    dashed: bool = False  # drawn dashed: a way out of the ordinary path
    escalation: bool = False  # may leave a sub-flow for a main-flow step (escalations go to people)
    enters: str | None = None  # a sub-flow this step enters, at ``to`` (its start step)


@dataclass(frozen=True)
class WrittenStep:
    """One step as the operator wrote it, and the fields every kind's model takes alike."""

    kind: str
    raw: Mapping[str, Any]  # the step's mapping
    path: PathKey  # where it is, e.g. ("steps", "greeting")
    common: Mapping[str, Any]  # name, at, next, human: the ``m.Step`` fields, ready to pass on

    @property
    def value(self) -> Any:
        """What is written under the kind's key, e.g. the mapping under ``menu:``."""
        return self.raw[self.kind]

    @property
    def value_path(self) -> PathKey:
        return (*self.path, self.kind)


# -- what a kind may use ---------------------------------------------------------------------------


class FlowBuilder(Protocol):
    """What ``StepKind.build`` may use of the builder (``ivr.flow.build.Builder``).

    Every method reports a mistake at the mark of ``path`` and returns something usable, so that
    one run shows every mistake of a flow.
    """

    @property
    def doc(self) -> Document: ...

    @property
    def base_dir(self) -> Path:
        """The flow file's folder (tables and recordings are beside it)."""
        ...

    @property
    def defaults(self) -> m.Defaults: ...

    @property
    def intents(self) -> Mapping[str, tuple[str, ...]]: ...

    def error(self, at: m.Mark, message: str) -> None: ...

    def ref(self, value: object, path: PathKey) -> m.Ref | None: ...

    def required_ref(self, value: object, path: PathKey) -> m.Ref: ...

    def duration(self, value: object, path: PathKey, default: float) -> float: ...

    def prompt(self, value: object, path: PathKey) -> m.Prompt: ...

    def prompts(self, value: object, path: PathKey) -> tuple[m.Prompt, ...]: ...

    def expr(self, value: object, path: PathKey) -> Expr: ...

    def pattern(self, value: object, path: PathKey) -> str | None: ...


class ListeningStep(Protocol):
    """A step that prompts and listens with counted retries (menu, ask, collect)."""

    @property
    def name(self) -> str: ...

    @property
    def prompt(self) -> m.Prompt: ...

    @property
    def retries(self) -> m.Retries: ...

    @property
    def fast_path_enabled(self) -> bool: ...


# Accepts what the caller said or keyed (the next step), or None: it did not match.
Accept = Callable[[Heard], Next | None]


class CallRuntime(Protocol):
    """What ``StepKind.run`` may use of the interpreter running the call (``Interpreter``)."""

    flow: m.Flow
    port: CallPort
    http: HttpLookup
    vars: dict[str, Value]
    stack: list[tuple[str, str]]  # (scope, step to continue at) per sub-flow entered
    booked: bool  # a callback was booked: a resolved call ends as "callback_booked"

    @property
    def settings(self) -> m.Settings: ...

    @property
    def language(self) -> str: ...

    @property
    def log(self) -> FilteringBoundLogger: ...

    async def say(self, prompt: m.Prompt, *, barge_in: bool) -> None: ...

    def follow(self, ref: m.Ref | None, scope: m.Scope) -> Go:
        """Go to ``ref`` in ``scope``; a missing reference is a run-time flow error."""
        ...

    async def fail(self, reason: str) -> Next:
        """A mistake that shows only at run time: to the human target once, else end the call."""
        ...

    def listen_spec(self, retries: m.Retries, **spec: Any) -> ListenSpec: ...

    def prompt_loop(
        self,
        step: ListeningStep,
        scope: m.Scope,
        spec: ListenSpec,
        accept: Accept,
        *,
        whole_entry: bool = False,
    ) -> Awaitable[Next]:
        """Prompt, listen, accept; on no input or no match re-prompt by count, then escalate.

        ``whole_entry``: the human key counts only as the whole entry (it is also a digit).
        """
        ...

    def note(self, entry: dict[str, Any]) -> None:
        """Add ``entry`` to the inputs of this step's record in the call path."""
        ...

    def context(self) -> dict[str, Value]:
        """What the agent should know without asking the caller again."""
        ...


# -- the kind -------------------------------------------------------------------------------------


class StepKind(ABC, Generic[S]):
    """One kind of step. Subclasses set the class attributes, define ``build`` and ``run``, and
    override the rest where it applies."""

    name: ClassVar[str]  # the YAML key, and the model's ``KIND``
    schema: ClassVar[Schema]  # the value under the key
    # Step-level fields only this kind takes, e.g. {"found": {"$ref": "#/$defs/stepName"}}.
    fields: ClassVar[Mapping[str, Schema]] = {}
    takes_next: ClassVar[bool] = False  # whether the step may have ``next:``
    # The validator's loop check: a cycle of steps that never wait for the caller spins forever.
    waits_for_caller: ClassVar[bool] = False
    # Where retries may end: a person, a callback or goodbye, never another "sorry, I didn't get that".
    ends_self_service: ClassVar[bool] = False
    reaches_person: ClassVar[bool] = False  # the human fast path must end at one of these
    # Leads on without anyone (``onward``): followed when checking where an escalation ends.
    passes_through: ClassVar[bool] = False
    dot_shape: ClassVar[str] = "box"
    mermaid_shape: ClassVar[tuple[str, str]] = ("[", "]")

    @abstractmethod
    def build(self, b: FlowBuilder, written: WrittenStep) -> S: ...

    @abstractmethod
    async def run(self, call: CallRuntime, step: S, scope: m.Scope) -> Next: ...

    def exits(self, step: S, flow: m.Flow) -> list[Exit]:
        """Where the step leads besides ``next``, in the order the graph draws them."""
        return []

    def onward(self, step: S) -> m.Ref | None:
        """Where a pass-through step leads."""
        return step.next

    def retries(self, step: S) -> m.Retries | None:
        """The counted retries of a step that listens; their escalation is checked for every kind."""
        return None

    def dead_end(self, step: S) -> str | None:
        """What the step lacks to lead anywhere (``'next'``), or None."""
        return "'next'" if self.takes_next and step.next is None else None

    def check(self, flow: m.Flow, scope: m.Scope, step: S) -> Iterator[m.FlowError]:
        """Rules of this kind alone, beyond what every step is checked for."""
        return iter(())

    def prompts(self, step: S) -> list[m.Prompt]:
        """Every prompt of the step, for the unknown-variable check: by default the fields that
        are prompts (``prompt``, ``say``) and the reprompts of its ``retries``."""
        found = [v for f in dataclasses.fields(step) if isinstance(v := getattr(step, f.name), m.Prompt)]
        retries = self.retries(step)
        if retries is not None:
            found += [*retries.no_input, *retries.no_match]
        return found

    def expressions(self, step: S) -> list[tuple[Expr, m.Mark]]:
        """Every expression of the step with where it starts, for the unknown-variable check."""
        return []

    def assigns(self, step: S) -> list[tuple[str, ...]]:
        """Variables the step sets, as paths: ("order",) or ("lookup", "outage")."""
        return []


def as_text(value: Value) -> str:
    """A value as it goes into a webhook parameter or a phone number (None is empty)."""
    return "" if value is None else str(value)
