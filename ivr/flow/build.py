"""From schema-checked YAML data to the ``Flow`` model, collecting every local mistake.

Local mistakes are the ones visible in a single value: a bad duration, a template or expression
that does not parse, a regex that does not compile, a field that does not belong to the step's
kind, a data table that cannot be read. Mistakes about how steps connect (unknown or unreachable
steps, dead ends, escalations, loops) are the validator's (``ivr.flow.validate``), which works on
the model this module builds. Nothing is raised for the operator's mistakes: all of them are
collected, so one ``ivr validate`` run shows every problem at once.

Each step is built by its kind (``ivr.flow.steps``); this module builds the settings and scopes,
decides each step's kind, and offers the kinds the small values they share (``FlowBuilder``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ivr.flow import model as m
from ivr.flow.expressions import Expr, ExprError, literal, parse
from ivr.flow.hours import OpenRange, parse_time_range, parse_weekdays
from ivr.flow.loader import Document, PathKey
from ivr.flow.steps import registry
from ivr.flow.steps.kind import WrittenStep
from ivr.flow.templates import Template, TemplateError, parse_template

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: object) -> float | None:
    """``5s``/``500ms``/``2m``/``1h`` or a plain number of seconds; None when unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value >= 0 else None
    if not isinstance(value, str):
        return None
    match = _DURATION.match(value.strip())
    if match is None:
        return None
    return float(match.group(1)) * _UNITS[match.group(2)]


class Builder:
    def __init__(self, doc: Document, base_dir: Path) -> None:
        self.doc = doc
        self.base_dir = base_dir
        self.errors: list[m.FlowError] = []
        self.language = "en"
        self.defaults = m.Defaults()
        self.intents: dict[str, tuple[str, ...]] = {}

    def error(self, at: m.Mark, message: str) -> None:
        self.errors.append(m.FlowError(at, message))

    # -- small values ---------------------------------------------------------------------------

    def ref(self, value: object, path: PathKey) -> m.Ref | None:
        if value is None:
            return None
        return m.Ref(str(value), self.doc.mark(path))

    def duration(self, value: object, path: PathKey, default: float) -> float:
        if value is None:
            return default
        seconds = parse_duration(value)
        if seconds is None:
            self.error(self.doc.mark(path), f"bad duration '{value}' (write e.g. 5s, 500ms, 2m)")
            return default
        return seconds

    def template(self, text: str, path: PathKey) -> Template:
        try:
            return parse_template(text)
        except TemplateError as exc:
            self.error(self.doc.text_mark(path, exc.column), f"bad prompt: {exc.message}")
            return parse_template(text.replace("{", "{{").replace("}", "}}"))

    def prompt(self, value: object, path: PathKey) -> m.Prompt:
        at = self.doc.mark(path)
        entries: dict[str, PathKey] = {}
        recording = None
        if isinstance(value, str):
            entries[self.language] = path
        elif isinstance(value, dict):
            for lang, text in value.items():
                if lang == "file":
                    recording = str(text)
                else:
                    entries[lang] = (*path, lang)
        texts: dict[str, Template] = {}
        text_at: dict[str, m.Mark] = {}
        for lang, where in entries.items():
            raw = self.doc.data_at(where)
            texts[lang] = self.template(str(raw), where)
            if self.doc.is_one_line(where):
                text_at[lang] = self.doc.text_mark(where, 1)
        if self.language not in texts:
            self.error(at, f"missing prompt text for the flow's language '{self.language}'")
        return m.Prompt(texts, at, recording, text_at)

    def prompts(self, value: object, path: PathKey) -> tuple[m.Prompt, ...]:
        if value is None:
            return ()
        if isinstance(value, list):
            return tuple(self.prompt(item, (*path, i)) for i, item in enumerate(value))
        return (self.prompt(value, path),)

    def expr(self, value: object, path: PathKey) -> Expr:
        if not isinstance(value, str):
            return literal(value if isinstance(value, int | float | bool) or value is None else str(value))
        try:
            return parse(value)
        except ExprError as exc:
            self.error(self.doc.text_mark(path, exc.column), f"bad expression: {exc.message}")
            return literal(None)

    def pattern(self, value: object, path: PathKey) -> str | None:
        if value is None:
            return None
        try:
            re.compile(str(value))
        except re.error as exc:
            self.error(self.doc.mark(path), f"bad pattern '{value}': {exc}")
            return None
        return str(value)

    # -- settings -------------------------------------------------------------------------------

    def settings(self, data: dict[str, Any]) -> m.Settings:
        raw: dict[str, Any] = data.get("settings") or {}
        sp: PathKey = ("settings",)
        defaults = raw.get("defaults") or {}
        dp: PathKey = (*sp, "defaults")
        self.defaults = m.Defaults(
            attempts=int(defaults.get("attempts", 3)),
            timeout=self.duration(defaults.get("timeout"), (*dp, "timeout"), 5.0),
            inter_digit_timeout=self.duration(
                defaults.get("inter_digit_timeout"), (*dp, "inter_digit_timeout"), 3.0
            ),
            confidence=float(defaults.get("confidence", 0.5)),
            escalate=self.ref(defaults.get("escalate"), (*dp, "escalate")),
        )
        self.intents = {
            name: tuple(str(p) for p in phrases) for name, phrases in (raw.get("intents") or {}).items()
        }
        human = None
        if "human" in raw:
            h = raw["human"]
            hp: PathKey = (*sp, "human")
            target = self.ref(h["target"], (*hp, "target"))
            assert target is not None  # required by the schema
            human = m.HumanPath(
                key=h.get("key"),
                phrases=tuple(str(p) for p in h.get("phrases", ())),
                say=self.prompt(h["say"], (*hp, "say")) if "say" in h else None,
                target=target,
                at=self.doc.mark(hp),
            )
        callback = None
        if "callback" in raw:
            c = raw["callback"]
            cp: PathKey = (*sp, "callback")
            numbers = tuple(
                p for i, n in enumerate(c.get("numbers", ())) if (p := self.pattern(n, (*cp, "numbers", i)))
            )
            callback = m.CallbackPolicy(
                attempts=int(c.get("attempts", 3)),
                spacing=self.duration(c["spacing"], (*cp, "spacing"), 0.0) if "spacing" in c else None,
                numbers=numbers,
                windows=tuple(c.get("windows", ())),
                at=self.doc.mark(cp),
            )
        return m.Settings(
            language=self.language,
            voice=data.get("voice"),
            hours=self.hours(raw["hours"], (*sp, "hours")) if "hours" in raw else None,
            human=human,
            callback=callback,
            defaults=self.defaults,
            http_allow=tuple((raw.get("http") or {}).get("allow", ())),
            intents=self.intents,
        )

    def hours(self, raw: dict[str, Any], path: PathKey) -> m.BusinessHours:
        timezone = str(raw["timezone"])
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self.error(self.doc.mark((*path, "timezone")), f"unknown time zone '{timezone}'")
            timezone = "UTC"
        ranges: list[OpenRange] = []
        for days, spans in (raw.get("open") or {}).items():
            where = (*path, "open", days)
            weekdays = parse_weekdays(days)
            if weekdays is None:
                self.error(
                    self.doc.mark(where, key=True), f"bad days '{days}' (write e.g. mon-fri, sat, sat,sun)"
                )
                continue
            for span in spans if isinstance(spans, list) else [spans]:
                times = parse_time_range(str(span))
                if times is None:
                    self.error(self.doc.mark(where), f"bad opening hours '{span}' (write e.g. 08:00-20:00)")
                    continue
                ranges += [OpenRange(day, times[0], times[1]) for day in weekdays]
        closed = self.ref(raw.get("closed"), (*path, "closed"))
        return m.BusinessHours(timezone, tuple(ranges), closed, self.doc.mark(path))

    # -- steps ----------------------------------------------------------------------------------

    def scope(self, name: str, data: dict[str, Any], path: PathKey) -> m.Scope:
        steps: dict[str, m.Step] = {}
        for step_name, raw in data["steps"].items():
            step = self.step(str(step_name), raw, (*path, "steps", step_name))
            if step is not None:
                steps[step.name] = step
        start = self.ref(data["start"], (*path, "start"))
        assert start is not None
        return m.Scope(name, start, steps, self.doc.mark(path))

    def step(self, name: str, raw: dict[str, Any], path: PathKey) -> m.Step | None:
        at = self.doc.mark(path, key=True)
        kinds = [k for k in registry.names() if k in raw]
        if len(kinds) != 1:
            found = f"found {', '.join(kinds)}" if kinds else "found none"
            every = ", ".join(registry.names())
            self.error(at, f"step '{name}' must have exactly one of {every} ({found})")
            return None
        kind = registry.find(kinds[0])
        assert kind is not None
        for field_name, owners in registry.field_owners().items():
            if field_name in raw and kind.name not in owners:
                self.error(
                    self.doc.mark((*path, field_name), key=True),
                    f"'{field_name}' does not apply to a '{kind.name}' step",
                )
        if "next" in raw and not kind.takes_next:
            self.error(
                self.doc.mark((*path, "next"), key=True), f"'next' does not apply to a '{kind.name}' step"
            )
        common: dict[str, Any] = {
            "name": name,
            "at": at,
            "next": self.ref(raw.get("next"), (*path, "next")) if kind.takes_next else None,
            "human": self.override(raw.get("human"), (*path, "human")),
        }
        step: m.Step = kind.build(self, WrittenStep(kind.name, raw, path, common))
        return step

    def required_ref(self, value: object, path: PathKey) -> m.Ref:
        return m.Ref(str(value), self.doc.mark(path))

    def override(self, raw: object, path: PathKey) -> m.FastPathOverride | None:
        if not isinstance(raw, dict):
            return None
        reason = raw.get("reason")
        return m.FastPathOverride(
            bool(raw.get("disabled", False)), str(reason) if reason else None, self.doc.mark(path, key=True)
        )


def build_flow(doc: Document, path: Path) -> tuple[m.Flow | None, list[m.FlowError]]:
    """Build the model from schema-valid data; returns the flow and the local mistakes found."""
    data: Mapping[str, Any] = doc.data
    builder = Builder(doc, path.parent)
    builder.language = str(data["language"])
    settings = builder.settings(dict(data))
    main = builder.scope("", dict(data), ())
    subflows = {
        name: builder.scope(str(name), sub, ("subflows", name))
        for name, sub in (data.get("subflows") or {}).items()
    }
    flow = m.Flow(
        name=str(data["flow"]),
        path=doc.file,
        settings=settings,
        main=main,
        subflows=subflows,
        description=str(data.get("description", "")),
        version=doc.version,
    )
    return flow, builder.errors
