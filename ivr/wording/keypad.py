"""Prompt wording when nobody can listen to speech: "press 1 or say 'outage'" becomes "press 1".

Flows are written for callers who may speak or press keys. When a language has no speech model
(or speech is switched off), offering to "say" something the IVR cannot hear would break the
caller's trust at the first step, so the spoken alternatives are taken out of the prompt.
"""

from __future__ import annotations

import re

# Straight quotes, typographic single quotes and German low-high quotes (written as escapes).
_QUOTED = "(?:'[^']*'|\"[^\"]*\"|\u2018[^\u2019]*\u2019|\u201e[^\u201c]*\u201c)"
_OR_SAY = {
    "en": re.compile(rf"\s*,?\s+or\s+say\s+{_QUOTED}", re.IGNORECASE),
    "de": re.compile(rf"\s*,?\s+oder\s+sagen\s+Sie\s+{_QUOTED}", re.IGNORECASE),
}


def keypad_only(text: str, language: str) -> str:
    """``text`` without its "or say '...'" alternatives (English and German phrasing)."""
    pattern = _OR_SAY.get(language.split("-")[0].lower())
    if pattern is None:
        return text
    return pattern.sub("", text)
