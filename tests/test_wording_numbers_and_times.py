"""Spoken wording in English and German: numbers, times, dates, places in line, promises."""

from __future__ import annotations

import datetime as dt

import pytest

from ivr.wording.handoff import say_place_in_line, say_promised_by, say_promised_window
from ivr.wording.numbers import cardinal, digits_apart, spell_digits
from ivr.wording.times import say_date, say_day_part, say_time, speak_duration, speak_within


@pytest.mark.parametrize(
    ("n", "en", "de"),
    [
        (0, "zero", "null"),
        (1, "one", "eins"),
        (21, "twenty-one", "einundzwanzig"),
        (101, "one hundred and one", "einhunderteins"),
        (1000, "one thousand", "eintausend"),
        (1961, "one thousand nine hundred and sixty-one", "eintausendneunhunderteinundsechzig"),
        (2_000_017, "two million and seventeen", "zwei Millionen siebzehn"),
        (1_000_000, "one million", "eine Million"),
        (-3, "minus three", "minus drei"),
    ],
)
def test_cardinals(n: int, en: str, de: str) -> None:
    assert cardinal(n, "en") == en
    assert cardinal(n, "de") == de


def test_digits_one_by_one() -> None:
    assert spell_digits("10115", "en") == "one zero one one five"
    assert spell_digits("+49 30#", "de") == "plus vier neun drei null Raute"


@pytest.mark.parametrize(
    ("clock", "en", "de"),
    [
        (dt.time(18, 0), "six p m", "achtzehn Uhr"),
        (dt.time(9, 5), "nine oh five a m", "neun Uhr fünf"),
        (dt.time(13, 45), "one forty-five p m", "dreizehn Uhr fünfundvierzig"),
        (dt.time(12, 0), "twelve noon", "zwölf Uhr"),
        (dt.time(0, 0), "midnight", "null Uhr"),
        (dt.time(1, 1), "one oh one a m", "ein Uhr eins"),
    ],
)
def test_times(clock: dt.time, en: str, de: str) -> None:
    assert say_time(clock, "en") == en
    assert say_time(clock, "de") == de


def test_dates_absolute_and_relative() -> None:
    day = dt.date(2024, 5, 3)
    assert say_date(day, "en") == "Friday, May third"
    assert say_date(day, "de") == "Freitag, der dritte Mai"
    assert say_date(dt.date(2024, 12, 21), "en") == "Saturday, December twenty-first"
    assert say_date(dt.date(2024, 12, 21), "de") == "Samstag, der einundzwanzigste Dezember"
    assert say_date(dt.date(2024, 5, 7), "en", today=dt.date(2024, 5, 6)) == "tomorrow"
    assert say_date(dt.date(2024, 5, 6), "de", today=dt.date(2024, 5, 6)) == "heute"


def test_phone_numbers_digit_by_digit_for_the_voice() -> None:
    assert digits_apart("+4930123") == "4 9 3 0 1 2 3"


def test_parts_of_a_day_relative_to_today() -> None:
    monday = dt.date(2024, 5, 6)
    assert say_day_part(monday, "afternoon", "en", monday) == "this afternoon"
    assert say_day_part(dt.date(2024, 5, 7), "morning", "de-DE", monday) == "morgen Vormittag"
    assert say_day_part(dt.date(2024, 5, 9), "evening", "en", monday) == "on Thursday evening"
    assert say_day_part(dt.date(2024, 5, 9), "evening", "de", monday) == "am Donnerstag Abend"


def test_places_in_line_and_promises() -> None:
    assert say_place_in_line(1, "about four minutes", True, "en") == (
        "You are next in line. The wait is about four minutes."
    )
    assert say_place_in_line(3, "etwa zehn Minuten", True, "de") == (
        "Sie sind an Position drei. Die Wartezeit beträgt etwa zehn Minuten."
    )
    tomorrow = dt.datetime(2024, 5, 7, 9, 15)
    assert say_promised_by(tomorrow, "en", dt.datetime(2024, 5, 6, 20)) == "by tomorrow at nine fifteen a m"
    assert say_promised_window("this afternoon", None, dt.time(17), "de") == "this afternoon bis siebzehn Uhr"
    assert say_promised_window("tomorrow morning", dt.time(9), dt.time(12), "en") == (
        "tomorrow morning, between nine a m and twelve noon"
    )


@pytest.mark.parametrize(
    ("seconds", "en", "de"),
    [
        (20, "less than a minute", "weniger als eine Minute"),
        (100, "less than two minutes", "weniger als zwei Minuten"),
        (241, "about five minutes", "etwa fünf Minuten"),
        (660, "about fifteen minutes", "etwa fünfzehn Minuten"),
        (3500, "about sixty minutes", "etwa sechzig Minuten"),
        (3700, "about an hour and a half", "etwa eineinhalb Stunden"),
        (7200, "about two hours", "etwa zwei Stunden"),
    ],
)
def test_waits_are_spoken_rounded_up(seconds: float, en: str, de: str) -> None:
    assert speak_duration(seconds, "en") == en
    assert speak_duration(seconds, "de-DE") == de


def test_promise_words() -> None:
    assert speak_within(1380, "en") == "within twenty-five minutes"
    assert speak_within(100, "en") == "within five minutes"
    assert speak_within(1380, "de") == "innerhalb von fünfundzwanzig Minuten"
    assert speak_within(4000, "de") == "innerhalb von eineinhalb Stunden"
