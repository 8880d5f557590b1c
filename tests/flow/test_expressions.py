"""The expression language: what it computes, where it reports mistakes, and that it cannot escape."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.flow.expressions import ExprError, Value, parse

VARS: dict[str, Value] = {
    "caller": "+4930123456",
    "count": 2,
    "lookup": {"outage": {"eta": "2024-05-06 18:00", "service": "TV"}, "order": None},
    "tags": ["a", "b"],
}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1 + 2 - 4", -1),
        ("'a' + \"b\"", "ab"),
        ("count >= 2 and not (count > 5)", True),
        ("count == 2 or missing", True),
        ("lookup.outage.service == 'TV'", True),
        ("lookup.order.status", None),  # null-safe through a missing lookup
        ("lookup.nothing.at.all == none", True),
        ("'b' in tags and 'c' not in tags", True),
        ("'493' in caller", True),
        ("len(caller) - 1", 10),
        ("lower('AbC') + upper('x')", "abcX"),
        ("matches(caller, '^\\+49')", True),
        ("number('42') + 1", 43),
        ("text(count) + '!'", "2!"),
        ("digits('+49 (30) 1')", "49301"),
        ("[1, 'x', true]", [1, "x", True]),
        ("5 == '5'", False),
        ("-count", -2),
        ("1.5 + 1", 2.5),
    ],
)
def test_evaluates(text: str, value: Value) -> None:
    assert parse(text).evaluate(VARS) == value


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("count >", "unexpected end of expression", 8),
        ("count ! 2", "unexpected character '!'", 7),
        ("'open", "unterminated string", 1),
        ("foo(1)", "unknown function 'foo'", 1),
        ("(1 + 2", "expected ')', found end of expression", 7),
        ("a.", "expected a name after '.'", 3),
        ("1 2", "unexpected '2'", 3),
    ],
)
def test_parse_errors_carry_columns(text: str, message: str, column: int) -> None:
    with pytest.raises(ExprError) as err:
        parse(text)
    assert err.value.message.startswith(message)
    assert err.value.column == column


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("'a' + 1", "cannot add text and number", 5),
        ("count < 'x'", "cannot compare number with text", 7),
        ("len(1)", "len() of a number", 1),
        ("number('x1')", "text 'x1' is not a number", 1),
        ("matches('a', '[')", "bad pattern", 1),
        ("len(1, 2)", "len() takes 1 argument(s), got 2", 1),
    ],
)
def test_evaluation_errors_carry_columns(text: str, message: str, column: int) -> None:
    with pytest.raises(ExprError) as err:
        parse(text).evaluate(VARS)
    assert err.value.message.startswith(message)
    assert err.value.column == column


@pytest.mark.parametrize(
    "text",
    ["__import__('os')", "caller.__class__", "().__class__", "eval('1')", "caller.upper()", "lookup['x']"],
)
def test_no_escape_hatches(text: str) -> None:
    """Attribute access, subscripts, dunder names and Python builtins do not exist in the language."""
    try:
        value = parse(text).evaluate(VARS)
    except ExprError:
        return
    # A dotted name is only a mapping lookup: "caller.__class__" reads a key of a text, which is none.
    assert value is None


def test_nesting_is_bounded() -> None:
    with pytest.raises(ExprError, match="nested too deeply"):
        parse("(" * 200 + "1" + ")" * 200)
    with pytest.raises(ExprError, match="nested too deeply"):
        parse("not " * 200 + "1")


WORDS = ["and", "or", "not", "in", "len(", "count", "tags"]
ALPHABET = st.sampled_from([*"ab1 0.+-=!<>()[],'\"_", *WORDS])


@settings(max_examples=400, deadline=None)
@given(st.lists(ALPHABET, max_size=30).map("".join))
def test_never_raises_anything_but_its_own_error(text: str) -> None:
    try:
        parse(text).evaluate(VARS)
    except ExprError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_arbitrary_text_only_raises_expr_error(text: str) -> None:
    try:
        parse(text).evaluate(VARS)
    except ExprError:
        pass
