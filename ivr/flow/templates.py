"""Prompt text with variables, spoken naturally in English and German.

``"Your order {order_number:digits} arrives {lookup.order.eta:datetime}."`` is parsed once into
literal parts and fields. A field names a variable (dotted, like expressions) and optionally how to
speak it:

- ``digits``: one digit at a time ("one zero one one five"): order, customer and phone numbers;
- ``number``: a cardinal ("twenty-one", "einundzwanzig");
- ``time``: a clock time ("six thirty p m", "achtzehn Uhr dreißig");
- ``date``: "Friday, May third" / "Freitag, der dritte Mai" ("today"/"heute" when it is today);
- ``datetime``: date and time ("tomorrow at nine a m", "morgen um neun Uhr").

Without a format the value is inserted as text and the TTS voice reads it its own way. The words
come from ``ivr.wording``, the one home of spoken numbers, times and dates (English and
German; other languages fall back to plain text, honestly).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ivr.flow.expressions import Value, lookup_path
from ivr.wording.numbers import cardinal, spell_digits
from ivr.wording.times import say_date, say_datetime, say_time

FORMATS = ("digits", "number", "time", "date", "datetime")


class TemplateError(Exception):
    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"{message} (column {column})")
        self.message = message
        self.column = column


@dataclass(frozen=True)
class Field:
    path: tuple[str, ...]
    format: str | None
    column: int  # 1-based column of the opening brace within the text


@dataclass(frozen=True)
class Template:
    source: str
    parts: tuple[str | Field, ...]

    @property
    def fields(self) -> list[Field]:
        return [p for p in self.parts if isinstance(p, Field)]

    def render(self, variables: Mapping[str, Value], language: str, now: dt.datetime | None = None) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                out.append(speak(lookup_path(variables, part.path), part.format, language, now))
        return "".join(out)


_FIELD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)(?::([a-z]+))?")


def parse_template(text: str) -> Template:
    parts: list[str | Field] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "{" and text.startswith("{{", i):
            literal.append("{")
            i += 2
            continue
        if ch == "}" and text.startswith("}}", i):
            literal.append("}")
            i += 2
            continue
        if ch == "}":
            raise TemplateError("'}' without '{' (write '}}' for a brace)", i + 1)
        if ch != "{":
            literal.append(ch)
            i += 1
            continue
        end = text.find("}", i)
        if end < 0:
            raise TemplateError("'{' is never closed", i + 1)
        inner = text[i + 1 : end].strip()
        match = _FIELD.fullmatch(inner)
        if match is None:
            raise TemplateError(f"bad variable {inner!r} in braces", i + 1)
        fmt = match.group(2)
        if fmt is not None and fmt not in FORMATS:
            raise TemplateError(f"unknown format {fmt!r} (use {', '.join(FORMATS)})", i + 1)
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(Field(tuple(match.group(1).split(".")), fmt, i + 1))
        i = end + 1
    if literal:
        parts.append("".join(literal))
    return Template(text, tuple(parts))


# -- speaking values ------------------------------------------------------------------------------


def speak(value: Value, fmt: str | None, language: str, now: dt.datetime | None = None) -> str:
    lang = language.split("-")[0].lower()
    if value is None:
        return ""
    if fmt == "digits":
        return spell_digits(str(value), lang)
    if fmt == "number":
        number = _as_int(value)
        return cardinal(number, lang) if number is not None else str(value)
    if fmt in ("time", "date", "datetime"):
        moment = _as_datetime(value)
        if moment is None:
            return str(value)
        if fmt == "time":
            return say_time(moment.time(), lang)
        if fmt == "date":
            return say_date(moment.date(), lang, now.date() if now else None)
        return say_datetime(moment, lang, now)
    if isinstance(value, bool):
        return {"de": ("ja", "nein")}.get(lang, ("yes", "no"))[0 if value else 1]
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _as_int(value: Value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,15}", value.strip()):
        return int(value)
    return None


def _as_datetime(value: Value) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if re.fullmatch(r"\d{1,2}:\d{2}", text):
            hour, minute = text.split(":")
            return dt.datetime(2000, 1, 1, int(hour), int(minute))
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None
