"""The registry of step kinds: YAML key -> ``StepKind``, in the order operators read them.

The builder picks a step's kind here, the validator, interpreter and graph dispatch on
``kind_of(step)``, and the flow schema is generated from ``kinds()``. The order of registration is
the order operators see in messages such as "must have exactly one of say, menu, ...", so the
built-in kinds are registered below in a fixed order (``BUILT_IN``); a kind registered later comes
after them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ivr.flow import model as m
from ivr.flow.steps import control, ending, lookup, prompting
from ivr.flow.steps.kind import COMMON_FIELDS, StepKind

_KINDS: dict[str, StepKind[Any]] = {}
_generation = 0  # changes with every (un)registration: the compiled schema is cached by it


def register(kind: StepKind[Any]) -> None:
    """Add ``kind``; its name and its step-level fields must not clash with another kind's."""
    global _generation
    if kind.name in _KINDS:
        raise ValueError(f"step kind '{kind.name}' is already registered")
    for name in (kind.name, *kind.fields):
        if name in COMMON_FIELDS:
            raise ValueError(f"'{name}' of step kind '{kind.name}' is a field of every step")
    for other in _KINDS.values():
        for name, schema in kind.fields.items():
            if name == other.name or other.fields.get(name, schema) != schema:
                raise ValueError(f"field '{name}' of step kind '{kind.name}' clashes with '{other.name}'")
        if kind.name in other.fields:
            raise ValueError(f"step kind '{kind.name}' is a field of '{other.name}'")
    _KINDS[kind.name] = kind
    _generation += 1


def unregister(name: str) -> None:
    global _generation
    del _KINDS[name]
    _generation += 1


@contextmanager
def registered(kind: StepKind[Any]) -> Iterator[StepKind[Any]]:
    """``kind`` registered for the duration of a ``with`` block (tests, plug-ins tried out)."""
    register(kind)
    try:
        yield kind
    finally:
        unregister(kind.name)


def generation() -> int:
    return _generation


def kinds() -> tuple[StepKind[Any], ...]:
    return tuple(_KINDS.values())


def names() -> tuple[str, ...]:
    return tuple(_KINDS)


def find(name: str) -> StepKind[Any] | None:
    return _KINDS.get(name)


def kind_of(step: m.Step) -> StepKind[Any]:
    return _KINDS[step.kind]


def field_owners() -> Mapping[str, tuple[str, ...]]:
    """Step-level fields that belong to some kinds only -> those kinds ("next" is separate)."""
    owners: dict[str, tuple[str, ...]] = {}
    for kind in _KINDS.values():
        for name in kind.fields:
            owners[name] = (*owners.get(name, ()), kind.name)
    return owners


BUILT_IN: tuple[StepKind[Any], ...] = (
    control.SAY,
    prompting.MENU,
    prompting.ASK,
    prompting.COLLECT,
    control.SET,
    control.BRANCH,
    lookup.LOOKUP,
    ending.TRANSFER,
    ending.CALLBACK,
    ending.HANGUP,
    control.GOTO,
    control.CALL,
    control.RETURN,
)
for built_in in BUILT_IN:
    register(built_in)
