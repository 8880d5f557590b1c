"""Prompt templates speak numbers, times and dates naturally in English and German."""

from __future__ import annotations

import datetime as dt

import pytest

from ivr.flow.templates import TemplateError, parse_template

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


def test_datetime_field_relative_to_the_call() -> None:
    t = parse_template("{eta:datetime}")
    assert t.render({"eta": "2024-05-07 09:30"}, "en", NOW) == "tomorrow at nine thirty a m"
    assert t.render({"eta": "2024-05-07 09:30"}, "de", NOW) == "morgen um neun Uhr dreißig"
    assert t.render({"eta": "2024-05-10 18:00"}, "en", NOW) == "Friday, May tenth at six p m"


def test_unreadable_values_are_said_as_they_are() -> None:
    assert parse_template("{eta:time}").render({"eta": "soon"}, "en") == "soon"
    assert parse_template("{n:number}").render({"n": "many"}, "de") == "many"
    assert parse_template("{n:number}").render({"n": 7}, "fr") == "7"
