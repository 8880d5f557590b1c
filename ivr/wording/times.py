"""Clock times, dates and durations as words, in English and German.

"six thirty p m" / "achtzehn Uhr dreißig"; "Friday, May third" / "Freitag, der dritte Mai" ("today"
and "heute" when it is today); waits and promises in minutes and half hours, always rounded up, so
what a caller hears is never sooner than what the IVR expects.
"""

from __future__ import annotations

import datetime as dt
import math

from ivr.wording.numbers import cardinal, de_cardinal, de_ordinal, en_cardinal, en_ordinal

_EN_MONTHS = "January February March April May June July August September October November December".split()
_DE_MONTHS = "Januar Februar März April Mai Juni Juli August September Oktober November Dezember".split()
EN_DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
DE_DAYS = "Montag Dienstag Mittwoch Donnerstag Freitag Samstag Sonntag".split()


def say_time(clock: dt.time, lang: str) -> str:
    if lang == "de":
        words = f"{de_cardinal(clock.hour, False) if clock.hour == 1 else de_cardinal(clock.hour)} Uhr"
        return words + (f" {de_cardinal(clock.minute)}" if clock.minute else "")
    if lang != "en":
        return clock.strftime("%H:%M")
    if clock.hour == 12 and clock.minute == 0:
        return "twelve noon"
    if clock.hour == 0 and clock.minute == 0:
        return "midnight"
    hour12 = clock.hour % 12 or 12
    suffix = "a m" if clock.hour < 12 else "p m"
    if clock.minute == 0:
        return f"{en_cardinal(hour12)} {suffix}"
    minutes = en_cardinal(clock.minute) if clock.minute >= 10 else f"oh {en_cardinal(clock.minute)}"
    return f"{en_cardinal(hour12)} {minutes} {suffix}"


def say_date(day: dt.date, lang: str, today: dt.date | None = None) -> str:
    if today is not None:
        relative = {0: ("today", "heute"), 1: ("tomorrow", "morgen"), -1: ("yesterday", "gestern")}
        pair = relative.get((day - today).days)
        if pair is not None and lang in ("en", "de"):
            return pair[1] if lang == "de" else pair[0]
    if lang == "de":
        return f"{DE_DAYS[day.weekday()]}, der {de_ordinal(day.day)} {_DE_MONTHS[day.month - 1]}"
    if lang == "en":
        return f"{EN_DAYS[day.weekday()]}, {_EN_MONTHS[day.month - 1]} {en_ordinal(day.day)}"
    return day.isoformat()


def say_datetime(moment: dt.datetime, lang: str, now: dt.datetime | None = None) -> str:
    today = None
    if now is not None:
        local_now = now.astimezone(moment.tzinfo) if (now.tzinfo and moment.tzinfo) else now
        today = local_now.date()
    joiner = " um " if lang == "de" else " at "
    return say_date(moment.date(), lang, today) + joiner + say_time(moment.time(), lang)


# -- durations -----------------------------------------------------------------------------------


def _minutes_word(n: int, lang: str) -> str:
    if lang == "de":
        return "eine Minute" if n == 1 else f"{cardinal(n, 'de')} Minuten"
    return "a minute" if n == 1 else f"{cardinal(n, 'en')} minutes"


def _hours_word(half_hours: int, lang: str) -> str:
    hours, half = divmod(half_hours, 2)
    if lang == "de":
        if half:
            return "eineinhalb Stunden" if hours == 1 else f"{cardinal(hours, 'de')}einhalb Stunden"
        return "eine Stunde" if hours == 1 else f"{cardinal(hours, 'de')} Stunden"
    if half:
        return "an hour and a half" if hours == 1 else f"{cardinal(hours, 'en')} and a half hours"
    return "an hour" if hours == 1 else f"{cardinal(hours, 'en')} hours"


def round_up_minutes(seconds: float) -> int:
    """Minutes as people say them: exact up to 10, then in fives, always rounded up."""
    minutes = max(1, math.ceil(seconds / 60.0 - 1e-9))
    if minutes <= 10:
        return minutes
    return 5 * math.ceil(minutes / 5)


def speak_duration(seconds: float, language: str) -> str:
    """'less than a minute', 'about 4 minutes', 'about 25 minutes', 'about an hour and a half'."""
    lang = "de" if language.lower().startswith("de") else "en"
    if seconds < 60:
        return "weniger als eine Minute" if lang == "de" else "less than a minute"
    if seconds < 120:
        return "weniger als zwei Minuten" if lang == "de" else "less than two minutes"
    if seconds < 60 * 60:
        words = _minutes_word(round_up_minutes(seconds), lang)
        return f"etwa {words}" if lang == "de" else f"about {words}"
    half_hours = math.ceil(seconds / 1800.0 - 1e-9)
    words = _hours_word(half_hours, lang)
    return f"etwa {words}" if lang == "de" else f"about {words}"


def speak_within(seconds: float, language: str) -> str:
    """A promise bound: 'within 25 minutes' / 'innerhalb von 25 Minuten' (rounded up)."""
    lang = "de" if language.lower().startswith("de") else "en"
    if seconds < 60 * 60:
        words = _minutes_word(max(5, round_up_minutes(seconds)), lang)
        if lang == "de":
            return f"innerhalb von {words.replace('eine Minute', 'einer Minute')}"
        return f"within {words}"
    words = _hours_word(math.ceil(seconds / 1800.0 - 1e-9), lang)
    if lang == "de":
        words = words.replace("eine Stunde", "einer Stunde").replace("Stunden", "Stunden")
        return f"innerhalb von {words}"
    return f"within {words}"


def unknown_text(language: str) -> str:
    if language.lower().startswith("de"):
        return "Wir können die Wartezeit gerade nicht abschätzen"
    return "We cannot estimate the wait right now"


# -- parts of a day -------------------------------------------------------------------------------

_PART_WORDS = {
    "morning": ("morning", "Vormittag"),
    "afternoon": ("afternoon", "Nachmittag"),
    "evening": ("evening", "Abend"),
}


def say_day_part(day: dt.date, part: str, language: str, today: dt.date) -> str:
    """'this afternoon', 'tomorrow morning', 'on Monday evening' / 'heute Nachmittag' ..."""
    de = language.lower().startswith("de")
    offset = (day - today).days
    en_part, de_part = _PART_WORDS[part]
    if de:
        head = {0: "heute", 1: "morgen"}.get(offset, f"am {DE_DAYS[day.weekday()]}")
        return f"{head} {de_part}"
    head = {0: "this", 1: "tomorrow"}.get(offset, f"on {EN_DAYS[day.weekday()]}")
    return f"{head} {en_part}"
