"""What the handoff dialogue says, in English and German: questions, whispers, places in line, promises.

Honest and short: say what happens and how long it takes, and always name the way out.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ivr.wording.numbers import cardinal
from ivr.wording.times import say_datetime, say_time

TEXTS: dict[str, dict[str, str]] = {
    "whisper": {
        "en": "Next caller {caller}. {facts}.",
        "de": "Nächster Anruf von {caller}. {facts}.",
    },
    "no_details": {"en": "No details collected", "de": "Keine Angaben erfasst"},
    "nobody_working": {
        "en": "I am sorry, nobody from our team is available at the moment.",
        "de": "Es tut mir leid, im Moment ist niemand aus unserem Team erreichbar.",
    },
    "all_busy": {
        "en": "All our agents are busy. {ahead_text} The expected wait is {wait}. "
        "To wait, press 1. To be called back instead, without losing your place, press 2.",
        "de": "Alle Mitarbeiter sind im Gespräch. {ahead_text} Die Wartezeit beträgt {wait}. "
        "Um zu warten, drücken Sie die 1. Für einen Rückruf, ohne Ihren Platz zu verlieren, die 2.",
    },
    "ahead_none": {"en": "You are next in line.", "de": "Sie sind als Nächstes dran."},
    "ahead_one": {"en": "There is one caller ahead of you.", "de": "Vor Ihnen ist ein Anrufer."},
    "ahead_many": {"en": "There are {ahead} callers ahead of you.", "de": "Vor Ihnen sind {ahead} Anrufer."},
    "waiting": {
        "en": "Thank you for waiting. You can press 2 at any time to be called back instead.",
        "de": "Danke, dass Sie warten. Mit der 2 können Sie jederzeit einen Rückruf wählen.",
    },
    "still_waiting": {
        "en": "You are number {position} in line. The expected wait is {wait}.",
        "de": "Sie sind an Position {position}. Die Wartezeit beträgt {wait}.",
    },
    "still_waiting_offer": {
        "en": "You are number {position} in line. The expected wait is {wait}. "
        "To be called back instead, without losing your place, press 2.",
        "de": "Sie sind an Position {position}. Die Wartezeit beträgt {wait}. "
        "Für einen Rückruf, ohne Ihren Platz zu verlieren, drücken Sie die 2.",
    },
    "confirm_number": {
        "en": "We will call you back at {number}. To confirm, press 1. For a different number, press 2.",
        "de": "Wir rufen Sie unter {number} zurück. Zum Bestätigen drücken Sie die 1, "
        "für eine andere Nummer die 2.",
    },
    "enter_number": {
        "en": "Please enter the number we should call, with the area code, then press the hash key.",
        "de": "Bitte geben Sie die Rückrufnummer mit Vorwahl ein und drücken Sie dann die Raute-Taste.",
    },
    "number_refused": {
        "en": "Sorry, we cannot call that number.",
        "de": "Diese Nummer können wir leider nicht anrufen.",
    },
    "choose_window": {
        "en": "For the first free slot, {asap}, press 1. {slot_choices}",
        "de": "Für den nächsten freien Termin, {asap}, drücken Sie die 1. {slot_choices}",
    },
    "slot_choice": {"en": "For {slot}, press {digit}.", "de": "Für {slot} drücken Sie die {digit}."},
    "shutdown_booked": {
        "en": "I am sorry, this line has to close for maintenance now. So that you do not lose your place, "
        "we have booked a callback to {number}: we will call you {promise}. Goodbye.",
        "de": "Es tut mir leid, diese Leitung muss jetzt für Wartungsarbeiten schließen. Damit Sie Ihren "
        "Platz nicht verlieren, haben wir einen Rückruf an {number} gebucht: wir rufen Sie {promise} "
        "an. Auf Wiederhören.",
    },
    "shutdown_sorry": {
        "en": "I am sorry, this line has to close for maintenance now. Please call again in a few minutes.",
        "de": "Es tut mir leid, diese Leitung muss jetzt für Wartungsarbeiten schließen. Bitte rufen Sie "
        "in ein paar Minuten wieder an.",
    },
    # When the caller can be heard, every question names its spoken answers too (see asking.py).
    "all_busy_speech": {
        "en": "All our agents are busy. {ahead_text} The expected wait is {wait}. "
        "To wait, say 'wait' or press 1. To be called back instead, without losing your place, "
        "say 'call me back' or press 2.",
        "de": "Alle Mitarbeiter sind im Gespräch. {ahead_text} Die Wartezeit beträgt {wait}. "
        "Um zu warten, sagen Sie 'warten' oder drücken Sie die 1. Für einen Rückruf, ohne Ihren Platz "
        "zu verlieren, sagen Sie 'Rückruf' oder drücken Sie die 2.",
    },
    "confirm_number_speech": {
        "en": "We will call you back at {number}. Is that right? Say yes or press 1. "
        "For a different number, say no or press 2.",
        "de": "Wir rufen Sie unter {number} zurück. Ist das richtig? Sagen Sie ja oder drücken Sie die 1, "
        "für eine andere Nummer sagen Sie nein oder drücken Sie die 2.",
    },
    "choose_window_speech": {
        "en": "For the first free slot, {asap}, say 'as soon as possible' or press 1. {slot_choices}",
        "de": "Für den nächsten freien Termin, {asap}, sagen Sie 'so schnell wie möglich' oder drücken "
        "Sie die 1. {slot_choices}",
    },
    "slot_choice_speech": {
        "en": "For {slot}, say '{slot}' or press {digit}.",
        "de": "Für {slot} sagen Sie '{slot}' oder drücken Sie die {digit}.",
    },
    "callback_whisper": {
        "en": "Callback to {number}. {facts}. Dialling now.",
        "de": "Rückruf an {number}. {facts}. Wird gewählt.",
    },
    "callback_not_reached": {
        "en": "The customer could not be reached. We will try again later.",
        "de": "Der Kunde war nicht erreichbar. Wir versuchen es später noch einmal.",
    },
    "machine_message": {
        "en": "Hello, this is Riverside Cable returning your call. We will try again shortly.",
        "de": "Guten Tag, hier ist Riverside Cable mit Ihrem Rückruf. Wir versuchen es gleich noch einmal.",
    },
}


def say(key: str, language: str, *, speech: bool = False, **values: Any) -> str:
    """The text for ``key``; with ``speech``, its wording that also names the spoken answers."""
    lang = "de" if language.lower().startswith("de") else "en"
    wording = f"{key}_speech" if speech and f"{key}_speech" in TEXTS else key
    return TEXTS[wording][lang].format(**_filled(key, language, speech, values))


def _filled(key: str, language: str, speech: bool, values: dict[str, Any]) -> dict[str, Any]:
    if key == "all_busy":
        ahead = int(values.get("ahead", 0))
        which = "ahead_none" if ahead == 0 else "ahead_one" if ahead == 1 else "ahead_many"
        values["ahead_text"] = say(which, language, ahead=ahead)
    if key == "choose_window":
        slots = values.get("slots", [])
        values["slot_choices"] = " ".join(
            say("slot_choice", language, speech=speech, slot=name, digit=index + 2)
            for index, name in enumerate(slots)
        )
    return values


def say_place_in_line(position: int, wait: str, wait_known: bool, language: str) -> str:
    """'You are number three in line. The wait is about six minutes.' (``wait`` already spoken)."""
    de = language.lower().startswith("de")
    if position <= 1:
        head = "Sie sind als Nächstes an der Reihe." if de else "You are next in line."
    else:
        number = cardinal(position, "de" if de else "en")
        head = f"Sie sind an Position {number}." if de else f"You are number {number} in line."
    if not wait_known:
        tail = wait + "."
    elif de:
        tail = f"Die Wartezeit beträgt {wait}."
    else:
        tail = f"The wait is {wait}."
    return f"{head} {tail}"


def say_promised_by(deadline: dt.datetime, language: str, now: dt.datetime) -> str:
    """'by tomorrow at nine fifteen a m' / 'bis morgen um neun Uhr fünfzehn'."""
    lang = "de" if language.lower().startswith("de") else "en"
    return f"{'bis' if lang == 'de' else 'by'} {say_datetime(deadline, lang, now)}"


def say_promised_window(window: str, start: dt.time | None, end: dt.time, language: str) -> str:
    """'tomorrow morning, between nine a m and twelve noon'; once begun (``start`` None), 'before'."""
    lang = "de" if language.lower().startswith("de") else "en"
    if start is None:
        return f"{window}{' bis' if lang == 'de' else ', before'} {say_time(end, lang)}"
    if lang == "de":
        return f"{window} zwischen {say_time(start, lang)} und {say_time(end, lang)}"
    return f"{window}, between {say_time(start, lang)} and {say_time(end, lang)}"
