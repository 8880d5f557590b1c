"""Prompt templates speak numbers, times and dates naturally in English and German."""

from __future__ import annotations

import datetime as dt

import pytest

from ivr.flow.templates import TemplateError, cardinal, parse_template, say_date, say_time, spell_digits

NOW = dt.datetime(2024, 5, 6, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))


def test_fields_and_escaped_braces() -> None:
    t = parse_template("Hi {caller}, order {lookup.order.id:digits} {{literal}}")
    assert [f.path for f in t.fields] == [("caller",), ("lookup", "order", "id")]
    assert t.fields[1].format == "digits" and t.fields[1].column == 20
    text = t.render({"caller": "Ann", "lookup": {"order": {"id": "4012"}}}, "en")
    assert text == "Hi Ann, order four zero one two {literal}"


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("a {b", "'{' is never closed", 3),
        ("a } b", "'}' without '{'", 3),
        ("{x:shout}", "unknown format 'shout'", 1),
        ("{1x}", "bad variable '1x'", 1),
    ],
)
def test_template_errors(text: str, message: str, column: int) -> None:
    with pytest.raises(TemplateError) as err:
        parse_template(text)
    assert err.value.message.startswith(message) and err.value.column == column


def test_missing_values_are_silent_not_none() -> None:
    assert parse_template("[{nothing.here}]").render({}, "en") == "[]"


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


def test_datetime_field_relative_to_the_call() -> None:
    t = parse_template("{eta:datetime}")
    assert t.render({"eta": "2024-05-07 09:30"}, "en", NOW) == "tomorrow at nine thirty a m"
    assert t.render({"eta": "2024-05-07 09:30"}, "de", NOW) == "morgen um neun Uhr dreißig"
    assert t.render({"eta": "2024-05-10 18:00"}, "en", NOW) == "Friday, May tenth at six p m"


def test_unreadable_values_are_said_as_they_are() -> None:
    assert parse_template("{eta:time}").render({"eta": "soon"}, "en") == "soon"
    assert parse_template("{n:number}").render({"n": "many"}, "de") == "many"
    assert parse_template("{n:number}").render({"n": 7}, "fr") == "7"
