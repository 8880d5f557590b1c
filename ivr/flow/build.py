"""From schema-checked YAML data to the ``Flow`` model, collecting every local mistake.

Local mistakes are the ones visible in a single value: a bad duration, a template or expression
that does not parse, a regex that does not compile, a field that does not belong to the step's
kind, a data table that cannot be read. Mistakes about how steps connect (unknown or unreachable
steps, dead ends, escalations, loops) are the validator's (``ivr.flow.validate``), which works on
the model this module builds. Nothing is raised for the operator's mistakes: all of them are
collected, so one ``ivr validate`` run shows every problem at once.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from ivr.flow import model as m
from ivr.flow.expressions import Expr, ExprError, literal, parse
from ivr.flow.hours import OpenRange, parse_time_range, parse_weekdays
from ivr.flow.loader import Document, PathKey
from ivr.flow.port import DEFAULT_END_SILENCE
from ivr.flow.templates import Template, TemplateError, parse_template

KINDS = (
    "say",
    "menu",
    "ask",
    "collect",
    "set",
    "branch",
    "lookup",
    "transfer",
    "callback",
    "hangup",
    "goto",
    "call",
    "return",
)
# Step-level fields and the kinds they belong to ("next" is checked separately).
_ROUTING_FIELDS = {
    "barge_in": ("say",),
    "found": ("lookup",),
    "not_found": ("lookup",),
    "fallback": ("lookup",),
    "no_agent": ("transfer",),
    "booked": ("callback",),
    "declined": ("callback",),
    "failed": ("callback",),
    "else": ("branch",),
}
# A menu's closing silence: under 100 ms a pause inside a word ends the turn; over 3 s callers
# think the line is dead.
MIN_END_SILENCE = 0.1
MAX_END_SILENCE = 3.0
DEFAULT_EARLY_MATCH = 0.2  # seconds: `early_match: true`
_TAKES_NEXT = frozenset({"say", "collect", "set", "lookup", "call"})
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
        kinds = [k for k in KINDS if k in raw]
        if len(kinds) != 1:
            found = f"found {', '.join(kinds)}" if kinds else "found none"
            self.error(at, f"step '{name}' must have exactly one of {', '.join(KINDS)} ({found})")
            return None
        kind = kinds[0]
        for field_name, owners in _ROUTING_FIELDS.items():
            if field_name in raw and kind not in owners:
                self.error(
                    self.doc.mark((*path, field_name), key=True),
                    f"'{field_name}' does not apply to a '{kind}' step",
                )
        if "next" in raw and kind not in _TAKES_NEXT:
            self.error(self.doc.mark((*path, "next"), key=True), f"'next' does not apply to a '{kind}' step")
        common: dict[str, Any] = {
            "name": name,
            "at": at,
            "next": self.ref(raw.get("next"), (*path, "next")) if kind in _TAKES_NEXT else None,
            "human": self.override(raw.get("human"), (*path, "human")),
        }
        value = raw[kind]
        kp: PathKey = (*path, kind)
        if kind == "say":
            return m.SayStep(
                prompt=self.prompt(value, kp), barge_in=bool(raw.get("barge_in", True)), **common
            )
        if kind == "menu":
            return self.menu(value, kp, common)
        if kind == "ask":
            routes: dict[str, m.Ref] = {}
            for intent, target in value["intents"].items():
                if intent not in self.intents:
                    self.error(
                        self.doc.mark((*kp, "intents", intent), key=True),
                        f"unknown intent '{intent}' (define it under settings.intents)",
                    )
                ref = self.ref(target, (*kp, "intents", intent))
                assert ref is not None
                routes[intent] = ref
            return m.AskStep(
                prompt=self.prompt(value["prompt"], (*kp, "prompt")),
                routes=routes,
                retries=self.retries(value, kp),
                **common,
            )
        if kind == "collect":
            return self.collect(value, kp, common)
        if kind == "set":
            assignments = tuple(
                m.Assignment(var, self.expr(v, (*kp, var)), self.doc.text_mark((*kp, var), 1))
                for var, v in value.items()
            )
            return m.SetStep(assignments=assignments, **common)
        if kind == "branch":
            cases = tuple(
                m.Case(
                    self.expr(c["if"], (*kp, i, "if")),
                    self._required_ref(c["then"], (*kp, i, "then")),
                    self.doc.text_mark((*kp, i, "if"), 1),
                )
                for i, c in enumerate(value)
            )
            return m.BranchStep(cases=cases, otherwise=self.ref(raw.get("else"), (*path, "else")), **common)
        if kind == "lookup":
            return self.lookup(value, kp, raw, path, common)
        if kind == "transfer":
            return m.TransferStep(
                skill=value.get("skill"),
                queue=value.get("queue"),
                language=value.get("language"),
                mode=value.get("mode", "bridge"),
                say=self.prompt(value["say"], (*kp, "say")) if "say" in value else None,
                no_agent=self.ref(raw.get("no_agent"), (*path, "no_agent")),
                **common,
            )
        if kind == "callback":
            return m.CallbackStep(
                say=self.prompt(value["say"], (*kp, "say")) if "say" in value else None,
                number=self.expr(value["number"], (*kp, "number")) if "number" in value else None,
                booked=self.ref(raw.get("booked"), (*path, "booked")),
                declined=self.ref(raw.get("declined"), (*path, "declined")),
                failed=self.ref(raw.get("failed"), (*path, "failed")),
                **common,
            )
        if kind == "hangup":
            options = value if isinstance(value, dict) else {}
            return m.HangupStep(
                say=self.prompt(options["say"], (*kp, "say")) if "say" in options else None,
                reason=str(options.get("reason", "resolved")),
                **common,
            )
        if kind == "goto":
            return m.GotoStep(target=self._required_ref(value, kp), **common)
        if kind == "call":
            return m.CallStep(subflow=self._required_ref(value, kp), **common)
        return m.ReturnStep(**common)

    def _required_ref(self, value: object, path: PathKey) -> m.Ref:
        return m.Ref(str(value), self.doc.mark(path))

    def override(self, raw: object, path: PathKey) -> m.FastPathOverride | None:
        if not isinstance(raw, dict):
            return None
        reason = raw.get("reason")
        return m.FastPathOverride(
            bool(raw.get("disabled", False)), str(reason) if reason else None, self.doc.mark(path, key=True)
        )

    def retries(self, value: dict[str, Any], path: PathKey) -> m.Retries:
        return m.Retries(
            attempts=int(value.get("attempts", self.defaults.attempts)),
            timeout=self.duration(value.get("timeout"), (*path, "timeout"), self.defaults.timeout),
            no_input=self.prompts(value.get("no_input"), (*path, "no_input")),
            no_match=self.prompts(value.get("no_match"), (*path, "no_match")),
            escalate=self.ref(value.get("escalate"), (*path, "escalate")) or self.defaults.escalate,
            at=self.doc.mark(path, key=True),
        )

    def menu(self, value: dict[str, Any], path: PathKey, common: dict[str, Any]) -> m.MenuStep:
        choices: list[m.Choice] = []
        for i, c in enumerate(value["choices"]):
            cp: PathKey = (*path, "choices", i)
            phrases = [str(p) for p in c.get("phrases", ())]
            if "intent" in c:
                if c["intent"] in self.intents:
                    phrases += self.intents[c["intent"]]
                else:
                    self.error(
                        self.doc.mark((*cp, "intent")),
                        f"unknown intent '{c['intent']}' (define it under settings.intents)",
                    )
            key = c.get("key")
            if key is None and not phrases:
                self.error(self.doc.mark(cp), "menu choice needs a key or phrases")
            choices.append(
                m.Choice(
                    None if key is None else str(key),
                    tuple(phrases),
                    self._required_ref(c["next"], (*cp, "next")),
                    self.doc.mark(cp),
                )
            )
        end_silence, early_match = self.endpointing(value, path, choices)
        return m.MenuStep(
            prompt=self.prompt(value["prompt"], (*path, "prompt")),
            choices=tuple(choices),
            retries=self.retries(value, path),
            end_silence=end_silence,
            early_match=early_match,
            **common,
        )

    def endpointing(
        self, value: dict[str, Any], path: PathKey, choices: list[m.Choice]
    ) -> tuple[float | None, float | None]:
        """A menu's ``end_silence`` and ``early_match`` (``true`` means DEFAULT_EARLY_MATCH)."""
        end_silence = None
        if "end_silence" in value:
            end_silence = self.duration(value["end_silence"], (*path, "end_silence"), DEFAULT_END_SILENCE)
            if not MIN_END_SILENCE <= end_silence <= MAX_END_SILENCE:
                self.error(
                    self.doc.mark((*path, "end_silence")),
                    f"end_silence must be between {MIN_END_SILENCE * 1000:.0f}ms and {MAX_END_SILENCE:.0f}s"
                    " (callers pause between words; longer only delays every answer)",
                )
        raw = value.get("early_match", False)
        if raw is False:
            return end_silence, None
        ep: PathKey = (*path, "early_match")
        early = DEFAULT_EARLY_MATCH if raw is True else self.duration(raw, ep, DEFAULT_EARLY_MATCH)
        closing = end_silence if end_silence is not None else DEFAULT_END_SILENCE
        if not any(c.phrases for c in choices):
            self.error(
                self.doc.mark(ep), "early_match needs spoken phrases, and no choice of this menu has any"
            )
        elif not 0.02 <= early < closing:
            self.error(
                self.doc.mark(ep),
                f"early_match ({early * 1000:.0f}ms) must be shorter than end_silence"
                f" ({closing * 1000:.0f}ms), or it never ends a turn early",
            )
        return end_silence, early

    def collect(self, value: dict[str, Any], path: PathKey, common: dict[str, Any]) -> m.CollectStep:
        low = int(value.get("min", 1))
        high = int(value.get("max", max(low, 1)))
        if low > high:
            self.error(self.doc.mark((*path, "min")), f"min ({low}) is larger than max ({high})")
        return m.CollectStep(
            prompt=self.prompt(value["prompt"], (*path, "prompt")),
            into=str(value["into"]),
            min_digits=low,
            max_digits=high,
            terminator=value.get("terminator", "#"),
            inter_digit_timeout=self.duration(
                value.get("inter_digit_timeout"),
                (*path, "inter_digit_timeout"),
                self.defaults.inter_digit_timeout,
            ),
            pattern=self.pattern(value.get("pattern"), (*path, "pattern")),
            retries=self.retries(value, path),
            **common,
        )

    def lookup(
        self,
        value: dict[str, Any],
        path: PathKey,
        raw: dict[str, Any],
        step_path: PathKey,
        common: dict[str, Any],
    ) -> m.LookupStep:
        source: m.TableSource | m.HttpSource
        at = self.doc.mark(path, key=True)
        if ("table" in value) == ("url" in value):
            self.error(at, "lookup needs exactly one of 'table' or 'url'")
        if "url" in value:
            timeout = 0.0
            if "timeout" not in value:
                self.error(at, "webhook lookup has no timeout (add e.g. timeout: 2s)")
            else:
                timeout = self.duration(value["timeout"], (*path, "timeout"), 0.0)
            params = {k: self.expr(v, (*path, "params", k)) for k, v in (value.get("params") or {}).items()}
            source = m.HttpSource(str(value["url"]), params, timeout, self.doc.mark((*path, "url")))
        else:
            source = self.table(str(value.get("table", "")), (*path, "table"))
            if "key" not in value or "value" not in value:
                self.error(at, "table lookup needs 'key' (a column) and 'value' (an expression)")
            elif source.rows and value["key"] not in source.rows[0]:
                self.error(
                    self.doc.mark((*path, "key")), f"table '{source.path}' has no column '{value['key']}'"
                )
        return m.LookupStep(
            source=source,
            key=value.get("key"),
            value=self.expr(value["value"], (*path, "value")) if "value" in value else None,
            value_at=self.doc.text_mark((*path, "value"), 1),
            into=str(value["into"]),
            found=self.ref(raw.get("found"), (*step_path, "found")),
            not_found=self.ref(raw.get("not_found"), (*step_path, "not_found")),
            fallback=self.ref(raw.get("fallback"), (*step_path, "fallback")),
            **common,
        )

    def table(self, name: str, path: PathKey) -> m.TableSource:
        at = self.doc.mark(path)
        rows = load_table(self.base_dir / name) if name else None
        if isinstance(rows, str):
            self.error(at, f"cannot read table '{name}': {rows}")
            rows = None
        return m.TableSource(name, tuple(rows or ()), at)


def load_table(path: Path) -> list[dict[str, str]] | str:
    """Rows of a CSV (with a header line) or YAML (a list of mappings) file; an error text if not."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)
    if path.suffix.lower() == ".csv":
        return [
            {k.strip(): (v or "").strip() for k, v in row.items() if k}
            for row in csv.DictReader(text.splitlines())
        ]
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return f"not valid YAML: {exc}"
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        return "expected a list of rows (mappings)"
    return [{str(k): "" if v is None else str(v) for k, v in row.items()} for row in data]


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
