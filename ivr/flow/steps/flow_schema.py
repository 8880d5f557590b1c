"""The flow's JSON Schema: the frame below plus every registered kind's fragment.

``ivr validate`` checks each file against the schema generated from the registry, so a kind
registered at run time is checked like a built-in one. ``python -m ivr.flow.steps.schema`` writes
it to ``schema/flow.schema.json`` for editors (yaml-language-server completes and checks as one
types), and a test keeps that file equal to what the kinds generate.

Schema errors are reported at the mark of the offending value, or of the unknown key, with the
wording operators see from ``ivr validate``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from ivr.flow.loader import Document, PathKey
from ivr.flow.model import Mark
from ivr.flow.steps import registry
from ivr.flow.steps.kind import COMMON_FIELDS, DURATION, PROMPT, STEP_NAME, VARIABLE, StepKind

LANGUAGE = "^[a-z]{2}(-[A-Za-z]{2})?$"
PHRASES = {"type": "array", "items": {"type": "string", "minLength": 1}}
ATTEMPTS = {"type": "integer", "minimum": 1, "maximum": 10}
STRINGS = {"type": "array", "items": {"type": "string"}}

# Everything but the steps' own fields: the file, its settings, and the values kinds refer to.
SETTINGS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "hours": {
            "type": "object",
            "required": ["timezone", "open"],
            "additionalProperties": False,
            "properties": {
                "timezone": {"type": "string", "description": "IANA time zone, e.g. Europe/Berlin."},
                "open": {
                    "type": "object",
                    "description": "Days (mon, mon-fri, sat,sun) -> HH:MM-HH:MM, or a list of such ranges.",
                    "additionalProperties": {"oneOf": [{"type": "string"}, STRINGS]},
                },
                "closed": {**STEP_NAME, "description": "Step used instead of `start` when closed."},
            },
        },
        "human": {
            "type": "object",
            "description": "The human fast path: works from every step.",
            "required": ["target"],
            "additionalProperties": False,
            "properties": {
                "key": {"type": "string", "pattern": "^[0-9*#]$"},
                "phrases": PHRASES,
                "say": PROMPT,
                "target": STEP_NAME,
            },
        },
        "callback": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "attempts": ATTEMPTS,
                "spacing": DURATION,
                "numbers": {**STRINGS, "description": "Regexes for accepted numbers."},
                "windows": STRINGS,
            },
        },
        "defaults": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "attempts": ATTEMPTS,
                "timeout": DURATION,
                "inter_digit_timeout": DURATION,
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "escalate": STEP_NAME,
            },
        },
        "http": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"allow": {**STRINGS, "description": "Hosts webhooks may call."}},
        },
        "intents": {
            "type": "object",
            "description": "Intent name -> phrases that express it (for `ask` and menu choices).",
            "propertyNames": VARIABLE,
            "additionalProperties": PHRASES,
        },
    },
}
DEFINITIONS: dict[str, Any] = {
    "language": {"type": "string", "pattern": LANGUAGE},
    "stepName": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_-]*$"},
    "variable": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
    "duration": {
        "description": "Seconds as a number, or text like 500ms, 5s, 2m, 1h.",
        "type": ["string", "number"],
    },
    "expression": {
        "description": "An expression (docs/flows.md#expressions); YAML numbers and booleans are literals.",
        "type": ["string", "number", "boolean", "null"],
    },
    "prompt": {
        "description": "Text to speak in the flow's language, or text per language, optionally a recording.",
        "oneOf": [
            {"type": "string"},
            {
                "type": "object",
                "minProperties": 1,
                "properties": {"file": {"type": "string", "description": "WAV file played instead of TTS."}},
                "patternProperties": {LANGUAGE: {"type": "string"}},
                "additionalProperties": False,
            },
        ],
    },
    "reprompts": {
        "description": "Spoken instead of the prompt after the 1st, 2nd, ... failure; the last one repeats.",
        "oneOf": [PROMPT, {"type": "array", "items": PROMPT}],
    },
    "attempts": {**ATTEMPTS, "description": "Tries before escalating."},
    "settings": SETTINGS,
    "steps": {
        "type": "object",
        "minProperties": 1,
        "propertyNames": STEP_NAME,
        "additionalProperties": {"$ref": "#/$defs/step"},
    },
    "human": {
        "type": "object",
        "description": "Switch the human fast path off for this step; a reason is mandatory.",
        "additionalProperties": False,
        "properties": {"disabled": {"type": "boolean"}, "reason": {"type": "string"}},
    },
}


def step_schema(kinds: Sequence[StepKind[Any]]) -> dict[str, Any]:
    """One step: the fields every step has, each kind's own fields, and one key per kind."""
    properties: dict[str, Any] = dict(COMMON_FIELDS)
    for kind in kinds:
        properties.update(kind.fields)
    for kind in kinds:
        properties[kind.name] = kind.schema
    return {
        "type": "object",
        "description": f"Exactly one of: {', '.join(k.name for k in kinds)}.",
        "additionalProperties": False,
        "properties": properties,
    }


def flow_schema(kinds: Sequence[StepKind[Any]] | None = None) -> dict[str, Any]:
    """The whole schema for ``kinds`` (by default: every registered kind)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/ivr/ivr/schema/flow.schema.json",
        "title": "IVR call flow",
        "description": "One call flow: settings, steps and sub-flows. See docs/flows.md.",
        "type": "object",
        "required": ["flow", "language", "start", "steps"],
        "additionalProperties": False,
        "properties": {
            "flow": {"type": "string", "description": "Name of the flow.", "pattern": "^[A-Za-z0-9_-]+$"},
            "description": {"type": "string"},
            "language": {
                "$ref": "#/$defs/language",
                "description": "Language of the prompts, e.g. en or de.",
            },
            "voice": {"type": "string", "description": "TTS voice, e.g. en-us or de."},
            "start": {**STEP_NAME, "description": "The first step."},
            "settings": {"$ref": "#/$defs/settings"},
            "steps": {"$ref": "#/$defs/steps"},
            "subflows": {
                "type": "object",
                "description": "Reusable sub-flows, entered with a `call` step and left with a"
                " `return` step.",
                "propertyNames": STEP_NAME,
                "additionalProperties": {
                    "type": "object",
                    "required": ["start", "steps"],
                    "additionalProperties": False,
                    "properties": {
                        "description": {"type": "string"},
                        "start": STEP_NAME,
                        "steps": {"$ref": "#/$defs/steps"},
                    },
                },
            },
        },
        "$defs": {**DEFINITIONS, "step": step_schema(registry.kinds() if kinds is None else kinds)},
    }


# -- checking a document --------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _validator(generation: int) -> jsonschema.Draft202012Validator:
    schema = flow_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_errors(doc: Document) -> list[tuple[Mark, str]]:
    """Schema violations, each at the mark of the offending value (or the unknown key)."""
    found: list[tuple[Mark, str]] = []
    validator = _validator(registry.generation())
    for error in sorted(validator.iter_errors(doc.data), key=lambda e: list(map(str, e.absolute_path))):
        found.extend(_describe(doc, error))
    return sorted(set(found))


def _describe(doc: Document, error: ValidationError) -> Iterator[tuple[Mark, str]]:
    path: PathKey = tuple(error.absolute_path)
    if error.validator in ("oneOf", "anyOf") and error.context:
        best = best_match(error.context)
        yield from _describe(doc, best)
        return
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(schema.get("properties", {}))
        patterns = schema.get("patternProperties", {})

        for key in error.instance:
            if key in allowed or any(re.search(p, key) for p in patterns):
                continue
            hint = (
                f" (expected one of: {', '.join(sorted(allowed))})" if allowed and len(allowed) <= 16 else ""
            )
            yield doc.mark((*path, key), key=True), f"unknown field '{key}'{hint}"
        return
    if error.validator == "required":
        yield doc.mark(path), error.message.replace("is a required property", "is required")
        return
    where = "/".join(str(p) for p in path)
    message = error.message
    if len(message) > 160:
        message = message[:157] + "..."
    yield doc.mark(path), f"{where}: {message}" if where else message
