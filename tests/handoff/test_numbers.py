"""Callback numbers: normalisation and the toll-fraud checks."""

from __future__ import annotations

import pytest

from ivr.handoff.numbers import NumberPolicy, NumberRejected, approve, normalize, policy_from_flow


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("sip:+4930123456@203.0.113.5", "+4930123456"),
        ('"Anna" <sip:030123456@pbx.local;user=phone>', "+4930123456"),
        ("tel:+49-30-123456", "+4930123456"),
        ("030 123 456", "+4930123456"),
        ("0049 (30) 123456", "+4930123456"),
        ("+1 415 555 0100", "+14155550100"),
        ("30123456", "+4930123456"),  # no prefix at all: national
    ],
)
def test_normalize(raw: str, e164: str) -> None:
    assert normalize(raw, "49") == e164


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "format"),
        ("030 12#34", "format"),
        ("+0301234", "format"),
        ("0301", "length"),
        ("+49301234567890123", "length"),
        ("sip:anonymous@anonymous.invalid", "format"),
    ],
)
def test_malformed_numbers_are_rejected_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(NumberRejected) as info:
        normalize(raw, "49")
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("0900 1234567", "premium"),
        ("+49 137 1234567", "premium"),
        ("+1 900 555 0100", "premium"),
        ("+44 9098 790 100", "premium"),
        ("+33 1 23 45 67 89", "international"),
    ],
)
def test_default_policy_blocks_premium_and_international(raw: str, reason: str) -> None:
    with pytest.raises(NumberRejected) as info:
        approve(raw, NumberPolicy())
    assert info.value.reason == reason


def test_flow_patterns_restrict_further_and_can_open_other_countries() -> None:
    support = policy_from_flow((r"^\+49[1-9][0-9]{6,13}$",))
    assert approve("0151 12345678", support).e164 == "+4915112345678"
    with pytest.raises(NumberRejected, match="outside"):
        approve("+43 1 5123456", support)
    both = policy_from_flow((r"^\+49", r"^\+43"))
    assert approve("+43 1 5123456", both).e164 == "+4315123456"
    with pytest.raises(NumberRejected) as info:
        approve("+41 44 123 45 67", both)
    assert info.value.reason == "not_allowed"
    with pytest.raises(NumberRejected) as info:
        approve("+49 900 1234567", policy_from_flow((r"^\+49",)))  # blocks stay
    assert info.value.reason == "premium"


def test_bad_policy_is_an_error_at_configuration_time() -> None:
    with pytest.raises(ValueError):
        NumberPolicy(allowed=("(",))
    with pytest.raises(ValueError):
        NumberPolicy(default_country="+49")
