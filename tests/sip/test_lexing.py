"""Quote-aware scanning of header text: the one lexer the parser, URIs and digest share."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.sip.errors import SipParseError
from ivr.sip.lexing import generic_params, quote_string, read_quoted, split_list, split_quoted


def test_split_list_keeps_commas_inside_quotes_and_angle_brackets() -> None:
    value = '"Doe, John" <sip:j@h;a=1,2>;tag=x , <sip:k@h> ,,sip:l@h'
    assert split_list(value) == ['"Doe, John" <sip:j@h;a=1,2>;tag=x', "<sip:k@h>", "", "sip:l@h"]


def test_split_list_honours_escaped_quotes() -> None:
    assert split_list(r'"a\", b" <sip:a@h>, <sip:b@h>') == [r'"a\", b" <sip:a@h>', "<sip:b@h>"]


def test_split_list_without_comma_is_the_stripped_value() -> None:
    assert split_list(" \t<sip:a@h> ") == ["<sip:a@h>"]


def test_split_list_is_lenient_about_an_open_quote() -> None:
    # The element that holds it is refused by whoever parses the element.
    assert split_list('<sip:a@h>, "open, <sip:b@h>') == ["<sip:a@h>", '"open, <sip:b@h>']


def test_split_quoted_ignores_angle_brackets_and_keeps_whitespace() -> None:
    assert split_quoted('a=1; b="x;y" ;c', ";") == ["a=1", ' b="x;y" ', "c"]
    assert split_quoted("<a;b>", ";") == ["<a", "b>"]


def test_split_quoted_refuses_an_unterminated_quote() -> None:
    with pytest.raises(SipParseError) as info:
        split_quoted('a="x;b', ";")
    assert (info.value.status, info.value.reason) == (400, "unterminated quoted string")


@pytest.mark.parametrize(
    ("text", "start", "expected"),
    [
        ('"abc" rest', 0, ("abc", 5)),
        ('x="a\\"b"', 2, ('a"b', 8)),
        ('"a\\\\"', 0, ("a\\", 5)),
        ('""', 0, ("", 2)),
        ('"open', 0, None),
        ('"escaped end\\"', 0, None),
        ('"trailing backslash\\', 0, None),
    ],
)
def test_read_quoted(text: str, start: int, expected: tuple[str, int] | None) -> None:
    assert read_quoted(text, start) == expected


@given(st.text())
def test_quote_string_reads_back(value: str) -> None:
    quoted = quote_string(value)
    assert read_quoted(quoted + ";tail", 0) == (value, len(quoted))


def test_generic_params() -> None:
    assert generic_params(["Branch = z9", "lr", " rport"], "bad", "empty") == {
        "branch": "z9",
        "lr": None,
        "rport": None,
    }
    with pytest.raises(SipParseError, match="bad"):
        generic_params(["", "lr"], "bad", "empty")
    with pytest.raises(SipParseError, match="bad"):
        generic_params(["a b=1"], "bad", "empty")
    with pytest.raises(SipParseError, match="empty"):
        generic_params(["ttl= "], "bad", "empty")
