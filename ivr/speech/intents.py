"""Matching a free-form transcript against a flow's intents, with a score.

Each intent has phrases (its synonyms).  A transcript is scored against every phrase three ways,
on normalised text (case-folded, punctuation dropped, German umlauts and ß spelled out, so
"Größe", "groesse" and "GRÖSSE" are one word), and the best of them counts:

- exact: the phrase is the whole transcript (1.0) or occurs in it as whole words (0.95);
- overlap: Jaccard similarity of the token sets, after dropping words too common to be evidence;
- fuzzy: each phrase token's best ``difflib`` ratio against the transcript's tokens, counted from
  0.8 up and averaged over the phrase (recognisers misspell inflections: "Rechnungen" for
  "Rechnung"), scaled by 0.9 so that a fuzzy match never beats an exact one.

The intent with the best score wins if it reaches the threshold.  ``difflib`` is in the standard
library; transcripts are a few words and one match runs per utterance, so a faster fuzzy library
(rapidfuzz) would save microseconds and add a dependency.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

__all__ = ["DEFAULT_INTENT_THRESHOLD", "Intent", "IntentMatch", "match_intent", "normalize", "tokens"]

DEFAULT_INTENT_THRESHOLD = 0.6
FUZZY_TOKEN = 0.8  # a token ratio under this is a different word
FUZZY_WEIGHT = 0.9
CONTAINED = 0.95

_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ẞ": "ss"})
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)
# Too common to be evidence of an intent (English, German).
STOP_WORDS = frozenset(
    "a an the my i i'm im is it to of and or in on for me you your please are am be with want would "
    "like need can could do ich mein meine meinen ist der die das den dem ein eine einen und oder zu "
    "mir bitte moechte will habe hab mit von fuer".split()
)


@dataclass(frozen=True, slots=True)
class Intent:
    name: str
    phrases: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IntentMatch:
    intent: str
    score: float
    phrase: str
    method: str  # "exact" | "contained" | "overlap" | "fuzzy"


def normalize(text: str) -> str:
    """Case-folded words separated by single spaces; umlauts and ß spelled out."""
    text = text.casefold().translate(_UMLAUTS)
    # Other accents (é, ç) fold to their base letter: drop the combining marks of the Latin
    # range only (U+0300-U+036F), so Hangul, which NFKD splits into jamo, recomposes unchanged.
    decomposed = unicodedata.normalize("NFKD", text)
    text = unicodedata.normalize("NFC", "".join(c for c in decomposed if not 0x300 <= ord(c) <= 0x36F))
    return " ".join(_NON_WORD.sub(" ", text).split())


def tokens(text: str) -> list[str]:
    return normalize(text).split()


def _content(words: Iterable[str]) -> set[str]:
    return {w for w in words if w not in STOP_WORDS}


def _score(said: str, said_tokens: list[str], phrase: str) -> tuple[float, str]:
    wanted = normalize(phrase)
    if not wanted:
        return 0.0, "none"
    if said == wanted:
        return 1.0, "exact"
    if f" {wanted} " in f" {said} ":
        return CONTAINED, "contained"
    wanted_tokens = wanted.split()
    a, b = _content(said_tokens), _content(wanted_tokens)
    overlap = len(a & b) / len(a | b) if a and b else 0.0
    content = [w for w in wanted_tokens if w not in STOP_WORDS] or wanted_tokens
    total = 0.0
    for w in content:
        best = max((SequenceMatcher(None, w, s).ratio() for s in said_tokens), default=0.0)
        total += best if best >= FUZZY_TOKEN else 0.0
    fuzzy = FUZZY_WEIGHT * total / len(content)
    return (overlap, "overlap") if overlap >= fuzzy else (fuzzy, "fuzzy")


def match_intent(
    text: str, intents: Sequence[Intent], threshold: float = DEFAULT_INTENT_THRESHOLD
) -> IntentMatch | None:
    """The best-scoring intent for ``text`` if it reaches ``threshold``, else None."""
    said = normalize(text)
    if not said:
        return None
    said_tokens = said.split()
    best: IntentMatch | None = None
    for intent in intents:
        for phrase in intent.phrases:
            score, method = _score(said, said_tokens, phrase)
            # Ties go to the longer phrase: "internet down" is more specific than "internet".
            if best is None or (score, len(phrase)) > (best.score, len(best.phrase)):
                best = IntentMatch(intent.name, round(score, 4), phrase, method)
    return best if best is not None and best.score >= threshold else None
