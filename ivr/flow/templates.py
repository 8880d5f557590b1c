"""Prompt text with variables, spoken naturally in English and German.

``"Your order {order_number:digits} arrives {lookup.order.eta:datetime}."`` is parsed once into
literal parts and fields. A field names a variable (dotted, like expressions) and optionally how to
speak it:

- ``digits``: one digit at a time ("one zero one one five"): order, customer and phone numbers;
- ``number``: a cardinal ("twenty-one", "einundzwanzig");
- ``time``: a clock time ("six thirty p m", "achtzehn Uhr dreißig");
- ``date``: "Friday, May third" / "Freitag, der dritte Mai" ("today"/"heute" when it is today);
- ``datetime``: date and time ("tomorrow at nine a m", "morgen um neun Uhr").

Without a format the value is inserted as text and the TTS voice reads it its own way. Words are
produced here rather than left to the voice so that the same prompt sounds the same with every
voice, and so tests can check what the caller will hear. Only English and German are covered; other
languages fall back to plain text, honestly.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ivr.flow.expressions import Value, lookup_path

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


_EN_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_DE_DIGITS = ("null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun")
_SYMBOLS = {"en": {"*": "star", "#": "hash", "+": "plus"}, "de": {"*": "Stern", "#": "Raute", "+": "plus"}}


def spell_digits(text: str, lang: str) -> str:
    names = _DE_DIGITS if lang == "de" else _EN_DIGITS
    symbols = _SYMBOLS["de" if lang == "de" else "en"]
    words = [names[int(c)] if c.isdigit() else symbols.get(c, c) for c in text if not c.isspace()]
    return " ".join(w for w in words if w not in "-/.")


_EN_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen"
).split()
_EN_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_DE_ONES = (
    "null eins zwei drei vier fünf sechs sieben acht neun zehn elf zwölf dreizehn vierzehn fünfzehn "
    "sechzehn siebzehn achtzehn neunzehn"
).split()
_DE_TENS = "_ _ zwanzig dreißig vierzig fünfzig sechzig siebzig achtzig neunzig".split()


def cardinal(n: int, lang: str) -> str:
    if lang == "de":
        return _de_cardinal(n)
    if lang == "en":
        return _en_cardinal(n)
    return str(n)


def _en_cardinal(n: int) -> str:
    if n < 0:
        return "minus " + _en_cardinal(-n)
    if n < 20:
        return _EN_ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _EN_TENS[tens] + (f"-{_EN_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_EN_ONES[hundreds]} hundred" + (f" and {_en_cardinal(rest)}" if rest else "")
    for size, word in ((10**9, "billion"), (10**6, "million"), (1000, "thousand")):
        if n >= size:
            high, rest = divmod(n, size)
            tail = "" if not rest else (" and " if rest < 100 else " ") + _en_cardinal(rest)
            return f"{_en_cardinal(high)} {word}{tail}"
    raise AssertionError("unreachable")


def _de_cardinal(n: int, final: bool = True) -> str:
    # German writes numbers below a million as one word; "eins" only stands at the very end.
    if n < 0:
        return "minus " + _de_cardinal(-n)
    if n == 1:
        return "eins" if final else "ein"
    if n < 20:
        return _DE_ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return (f"{_de_cardinal(ones, False)}und" if ones else "") + _DE_TENS[tens]
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_de_cardinal(hundreds, False)}hundert" + (_de_cardinal(rest, final) if rest else "")
    if n < 10**6:
        high, rest = divmod(n, 1000)
        return f"{_de_cardinal(high, False)}tausend" + (_de_cardinal(rest, final) if rest else "")
    for size, one, many in ((10**9, "eine Milliarde", "Milliarden"), (10**6, "eine Million", "Millionen")):
        if n >= size:
            high, rest = divmod(n, size)
            head = one if high == 1 else f"{_de_cardinal(high)} {many}"
            return head + (f" {_de_cardinal(rest)}" if rest else "")
    raise AssertionError("unreachable")


def say_time(clock: dt.time, lang: str) -> str:
    if lang == "de":
        words = f"{_de_cardinal(clock.hour, False) if clock.hour == 1 else _de_cardinal(clock.hour)} Uhr"
        return words + (f" {_de_cardinal(clock.minute)}" if clock.minute else "")
    if lang != "en":
        return clock.strftime("%H:%M")
    if clock.hour == 12 and clock.minute == 0:
        return "twelve noon"
    if clock.hour == 0 and clock.minute == 0:
        return "midnight"
    hour12 = clock.hour % 12 or 12
    suffix = "a m" if clock.hour < 12 else "p m"
    if clock.minute == 0:
        return f"{_en_cardinal(hour12)} {suffix}"
    minutes = _en_cardinal(clock.minute) if clock.minute >= 10 else f"oh {_en_cardinal(clock.minute)}"
    return f"{_en_cardinal(hour12)} {minutes} {suffix}"


_EN_ORDINALS = {1: "first", 2: "second", 3: "third", 5: "fifth", 8: "eighth", 9: "ninth", 12: "twelfth"}
_EN_MONTHS = "January February March April May June July August September October November December".split()
_DE_MONTHS = "Januar Februar März April Mai Juni Juli August September Oktober November Dezember".split()
_EN_DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
_DE_DAYS = "Montag Dienstag Mittwoch Donnerstag Freitag Samstag Sonntag".split()


def en_ordinal(n: int) -> str:
    if n in _EN_ORDINALS:
        return _EN_ORDINALS[n]
    if n > 20 and n % 10:
        tens = _EN_TENS[n // 10]
        return f"{tens}-{en_ordinal(n % 10)}"
    word = _en_cardinal(n)
    return word[:-1] + "ieth" if word.endswith("y") else word + "th"


def de_ordinal(n: int) -> str:
    """Nominative ordinal after "der": "der erste", "der dritte", "der zwanzigste"."""
    special = {1: "erste", 3: "dritte", 7: "siebte", 8: "achte"}
    if n in special:
        return special[n]
    return _de_cardinal(n) + ("ste" if n >= 20 else "te")


def say_date(day: dt.date, lang: str, today: dt.date | None = None) -> str:
    if today is not None:
        relative = {0: ("today", "heute"), 1: ("tomorrow", "morgen"), -1: ("yesterday", "gestern")}
        pair = relative.get((day - today).days)
        if pair is not None and lang in ("en", "de"):
            return pair[1] if lang == "de" else pair[0]
    if lang == "de":
        return f"{_DE_DAYS[day.weekday()]}, der {de_ordinal(day.day)} {_DE_MONTHS[day.month - 1]}"
    if lang == "en":
        return f"{_EN_DAYS[day.weekday()]}, {_EN_MONTHS[day.month - 1]} {en_ordinal(day.day)}"
    return day.isoformat()


def say_datetime(moment: dt.datetime, lang: str, now: dt.datetime | None = None) -> str:
    today = None
    if now is not None:
        local_now = now.astimezone(moment.tzinfo) if (now.tzinfo and moment.tzinfo) else now
        today = local_now.date()
    joiner = " um " if lang == "de" else " at "
    return say_date(moment.date(), lang, today) + joiner + say_time(moment.time(), lang)
