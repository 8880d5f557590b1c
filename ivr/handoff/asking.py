"""Asking the caller one question in the handoff dialogue: by key, or by voice when they can be heard.

Every question has numbered answers ("to confirm, press 1"); when the flow's language has a speech
model, each answer can also be said ("yes", "this afternoon"), so a caller who has been talking
to the IVR is not pushed back to the keypad just because they asked for a person. Keys always
work as well. The phrases are a grammar (exactly one phrase, or no match), like menus.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ivr.flow.hours import HoursLike, Slot, offer_slots
from ivr.flow.port import Heard, ListenSpec, SayResult

# What a caller may say for each numbered answer, by question and language. Short, common words:
# grammars only help when the words are in the model's vocabulary.
PHRASES: dict[str, dict[str, dict[str, tuple[str, ...]]]] = {
    "all_busy": {
        "en": {"1": ("wait", "i will wait", "hold"), "2": ("call me back", "callback", "call back")},
        "de": {"1": ("warten", "ich warte"), "2": ("rückruf", "zurückrufen", "rufen sie mich zurück")},
    },
    "confirm_number": {
        "en": {"1": ("yes", "correct", "that is right", "right"), "2": ("no", "different number")},
        "de": {"1": ("ja", "richtig", "genau", "stimmt"), "2": ("nein", "andere nummer")},
    },
    "choose_window": {
        "en": {"1": ("as soon as possible", "first free slot", "now")},
        "de": {"1": ("so schnell wie möglich", "nächster termin", "sofort")},
    },
}


class Dialogue(Protocol):
    """The two things a question needs from the call: the flow's ``CallPort`` has them."""

    async def say(self, text: str, *, barge_in: bool, recording: str | None = None) -> SayResult: ...

    async def listen(self, spec: ListenSpec) -> Heard: ...


@dataclass(frozen=True)
class Answer:
    digit: str = ""  # the key pressed, or the key the spoken answer stands for ("" if none)
    words: str = ""  # what was said, when the answer was spoken
    heard: bool = False  # the caller pressed or said something (silence: False)


def phrases_for(question: str, language: str) -> dict[str, str]:
    """Phrase -> the digit it stands for."""
    lang = "de" if language.lower().startswith("de") else "en"
    table = PHRASES.get(question, {}).get(lang, {})
    return {phrase: digit for digit, phrases in table.items() for phrase in phrases}


async def ask_by_voice(
    dialogue: Dialogue,
    text: str,
    question: str,
    language: str,
    *,
    extra: Sequence[str] = (),
    timeout: float = 6.0,
) -> Answer:
    """Say ``text`` (the caller may cut it short), then take one key or one allowed phrase.

    ``extra`` are more phrases allowed besides the question's own (e.g. the windows a caller may
    name); they come back in ``words`` with no digit.
    """
    by_phrase = phrases_for(question, language)
    grammar = tuple(dict.fromkeys([*by_phrase, *(p.lower() for p in extra)]))
    await dialogue.say(text, barge_in=True)
    heard = await dialogue.listen(
        ListenSpec(keys=True, speech=True, max_digits=1, timeout=timeout, grammar=grammar, language=language)
    )
    if heard.kind == "keys":
        return Answer(heard.digits[:1], heard=True)
    if heard.kind == "speech":
        words = " ".join(heard.transcript.lower().split())
        return Answer(by_phrase.get(words, ""), words, heard=True)
    return Answer(heard=heard.kind == "nomatch")


def speakable_windows(
    hours: HoursLike | None, now: dt.datetime, language: str, timezone: str, count: int = 6
) -> dict[str, Slot]:
    """The next windows a caller may ask for by voice, by name, beyond the ones offered by key.

    "on Monday evening" may also be said as "Monday evening" ("am Montag Abend": "Montag Abend").
    """
    names: dict[str, Slot] = {}
    for window in offer_slots(hours, now, count=count, timezone=timezone):
        name = window.name(language, now).lower()
        names[name] = window
        for lead in ("on ", "am "):
            if name.startswith(lead):
                names[name[len(lead) :]] = window
    return names


def chosen_window(answer: Answer, offered: Sequence[Slot], named: Mapping[str, Slot]) -> Slot | None:
    """The window picked: by key (2, 3, ... for the offered ones, in order) or by its name."""
    if answer.digit.isdigit() and 2 <= int(answer.digit) < 2 + len(offered):
        return offered[int(answer.digit) - 2]
    return named.get(answer.words) if answer.words else None
