"""Matching what a caller said against menu phrases, intents and the human fast path.

Deliberately plain and predictable, so an operator can reason about it: text is lower-cased and
stripped of punctuation; a phrase matches when its words appear in order in what was said; an
intent without such a phrase can still match by word overlap (most of its words present). The
longest matching phrase wins, so "internet down" beats "internet". Recognition scores and fuzzier
matching belong to the speech layer, which hands over a transcript and a confidence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

_WORD = re.compile(r"[\w']+", re.UNICODE)
OVERLAP_THRESHOLD = 0.75  # share of an intent phrase's words that must be present
# Words too common to count as evidence of an intent.
_STOP = frozenset(
    "a an the my i is it to of and or in on for me you your please is are am be "
    "ich mein meine ist der die das ein eine und oder zu mir bitte".split()
)


def words(text: str) -> list[str]:
    return [w.strip("'") for w in _WORD.findall(text.casefold()) if w.strip("'")]


def normalize(text: str) -> str:
    return " ".join(words(text))


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether ``phrase`` occurs in ``text`` as whole words ("agent" is not in "agentur")."""
    said = f" {normalize(text)} "
    wanted = normalize(phrase)
    return bool(wanted) and f" {wanted} " in said


def best_phrase(text: str, candidates: Iterable[tuple[str, str]]) -> tuple[str, float] | None:
    """The label of the longest phrase contained in ``text``, with a score of 1.0.

    ``candidates`` are (label, phrase) pairs.
    """
    best: tuple[str, int] | None = None
    for label, phrase in candidates:
        if contains_phrase(text, phrase):
            length = len(words(phrase))
            if best is None or length > best[1]:
                best = (label, length)
    return (best[0], 1.0) if best else None


def match_intent(text: str, intents: Mapping[str, Iterable[str]]) -> tuple[str, float] | None:
    """The intent ``text`` expresses, with a score in (0, 1]; None when nothing fits."""
    pairs = [(name, phrase) for name, phrases in intents.items() for phrase in phrases]
    exact = best_phrase(text, pairs)
    if exact is not None:
        return exact
    said = set(words(text))
    best: tuple[str, float] | None = None
    for name, phrase in pairs:
        content = [w for w in words(phrase) if w not in _STOP] or words(phrase)
        if not content:
            continue
        score = sum(1 for w in content if w in said) / len(content)
        if score >= OVERLAP_THRESHOLD and (best is None or score > best[1]):
            best = (name, round(score, 3))
    return best


_SPOKEN_DIGITS = {
    "zero": "0",
    "oh": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "null": "0",
    "eins": "1",
    "ein": "1",
    "zwei": "2",
    "zwo": "2",
    "drei": "3",
    "vier": "4",
    "fünf": "5",
    "sechs": "6",
    "sieben": "7",
    "acht": "8",
    "neun": "9",
}


def spoken_digits(text: str) -> str | None:
    """Digits said one by one ("one zero one one five", "10115") as "10115"; None if not digits."""
    out: list[str] = []
    for word in words(text):
        if word.isdigit():
            out.append(word)
        elif word in _SPOKEN_DIGITS:
            out.append(_SPOKEN_DIGITS[word])
        else:
            return None
    return "".join(out) or None
