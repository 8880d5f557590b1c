"""Questions of the handoff dialogue answered by key or by voice (a scripted caller, no sockets)."""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

from ivr.flow.conversation_tests import ScriptedPort
from ivr.flow.hours import hours_from_windows, offer_slots
from ivr.handoff.asking import Answer, ask_by_voice, chosen_window, phrases_for, speakable_windows
from ivr.wording.handoff import say

BERLIN = ZoneInfo("Europe/Berlin")
HOURS = hours_from_windows(["mon-fri 08:00-18:00"], "Europe/Berlin")
MONDAY_NOON = dt.datetime(2026, 11, 23, 12, 0, tzinfo=BERLIN)


def ask(inputs: list[str], question: str = "confirm_number", language: str = "en", **kw: object) -> Answer:
    port = ScriptedPort(inputs)
    answer = asyncio.run(ask_by_voice(port, "Is that right?", question, language, **kw))  # type: ignore[arg-type]
    assert port.heard == ["Is that right?"]
    (spec,) = port.listens
    assert spec.keys and spec.speech and spec.max_digits == 1
    assert set(phrases_for(question, language)) <= set(spec.grammar)
    return answer


def test_a_spoken_answer_stands_for_its_key_in_both_languages() -> None:
    assert ask(["yes"]) == Answer("1", "yes", heard=True)
    assert ask(["That is  right"]) == Answer("1", "that is right", heard=True)
    assert ask(["different number"]) == Answer("2", "different number", heard=True)
    assert ask(["nein"], language="de") == Answer("2", "nein", heard=True)
    assert ask(["Rückruf"], question="all_busy", language="de").digit == "2"
    assert ask(["wait"], question="all_busy").digit == "1"


def test_keys_still_work_and_silence_differs_from_not_understood() -> None:
    assert ask(["#2"]) == Answer("2", heard=True)
    assert ask([]) == Answer(heard=False)
    assert ask(["!nomatch"]) == Answer(heard=True)


def test_windows_can_be_named_beyond_the_two_offered_by_key() -> None:
    named = speakable_windows(HOURS, MONDAY_NOON, "en", "Europe/Berlin")
    assert list(named)[:4] == ["this afternoon", "this evening", "tomorrow morning", "tomorrow afternoon"]
    assert named["wednesday morning"] is named["on wednesday morning"]
    offered = offer_slots(HOURS, MONDAY_NOON, count=2, timezone="Europe/Berlin")
    answer = ask(["tomorrow afternoon"], question="choose_window", extra=list(named))
    chosen = chosen_window(answer, offered, named)
    assert chosen is not None and chosen.start == dt.datetime(2026, 11, 24, 12, 0, tzinfo=BERLIN)
    by_key = chosen_window(ask(["#3"], question="choose_window", extra=list(named)), offered, named)
    assert by_key == offered[1]  # 3: the second window offered
    assert chosen_window(ask(["as soon as possible"], question="choose_window"), offered, named) is None
    assert chosen_window(Answer("9", heard=True), offered, named) is None


def test_german_windows_and_the_spoken_wording() -> None:
    named = speakable_windows(HOURS, MONDAY_NOON, "de", "Europe/Berlin")
    assert "heute nachmittag" in named and "morgen vormittag" in named and "mittwoch vormittag" in named
    text = say(
        "choose_window", "de", speech=True, asap="innerhalb von 20 Minuten", slots=["morgen Vormittag"]
    )
    assert "sagen Sie 'so schnell wie möglich' oder drücken Sie die 1" in text
    assert "Für morgen Vormittag sagen Sie 'morgen Vormittag' oder drücken Sie die 2." in text
    keys_only = say("confirm_number", "en", number="4 9 3 0")
    assert "say" not in keys_only.lower() and "press 1" in keys_only
    assert "Say yes or press 1" in say("confirm_number", "en", speech=True, number="4 9 3 0")
