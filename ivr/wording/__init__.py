"""What the IVR says, in words: the one home of spoken wording, English and German.

- ``numbers``: digit by digit, cardinals, ordinals, phone numbers for the voice;
- ``times``: clock times, dates, parts of a day, waits and promise bounds ("within 25 minutes");
- ``keypad``: prompts without their "or say ..." alternatives when nobody can listen;
- ``handoff``: the handoff dialogue's texts, places in line and callback promises.

Pure text functions with no dependency, so the flow language, the handoff and the servers can all
use them.
"""

from __future__ import annotations

from ivr.wording.keypad import keypad_only
from ivr.wording.numbers import cardinal, digits_apart, spell_digits
from ivr.wording.times import say_date, say_datetime, say_time, speak_duration, speak_within

__all__ = [
    "cardinal",
    "digits_apart",
    "keypad_only",
    "say_date",
    "say_datetime",
    "say_time",
    "speak_duration",
    "speak_within",
    "spell_digits",
]
