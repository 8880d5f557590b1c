"""Keypad-only wording: no offer to "say" what nobody can hear."""

from __future__ import annotations

from ivr.wording import keypad_only


def test_english_alternatives_are_removed() -> None:
    assert (
        keypad_only("To talk to a person, press 0 or say 'agent' at any time.", "en")
        == "To talk to a person, press 0 at any time."
    )
    assert (
        keypad_only("Press 1 or say 'yes'. Press 9 or say \"no\" to end the call.", "en")
        == "Press 1. Press 9 to end the call."
    )


def test_german_alternatives_are_removed() -> None:
    assert (
        keypad_only("Drücken Sie jederzeit die 0 oder sagen Sie 'Mitarbeiter'.", "de")
        == "Drücken Sie jederzeit die 0."
    )


def test_other_text_is_left_alone() -> None:
    text = "Please say your name after the tone, or press the hash key."
    assert keypad_only(text, "en") == text
    assert keypad_only("Press 1 or say 'outage'.", "ko") == "Press 1 or say 'outage'."
