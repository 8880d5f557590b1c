"""Early match: end a menu turn on a settled partial result instead of the full closing silence.

The VAD ends an utterance after ``end_silence_ms`` of quiet (600 ms by default) because, in
general, a pause may be followed by more words.  In a menu of a few phrases the recognizer often
knows sooner.  Once its partial hypothesis is exactly one allowed phrase, has not changed over the
last ``stable_ms`` of decoded audio, and that audio ends in ``stable_ms`` of quiet, waiting for the
rest of the silence seldom changes the answer, and the caller hears the reply that much sooner.

This module only decides *when* that point is reached.  The listener then ends the utterance and
the final decode still decides *what* was said, with the usual rules (confidence, exactly one
phrase, the noise gate): an early match can make a turn shorter, never more lenient.

Time is counted in 20 ms frames of audio, as the listener counts it, so there is no clock here.
Frame numbers are positions in the utterance's audio as handed to the recognizer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ivr.speech.recognizer import normalize_phrase

__all__ = ["DEFAULT_STABLE_MS", "EarlyMatch"]

DEFAULT_STABLE_MS = 200
FRAME_MS = 20


@dataclass
class EarlyMatch:
    phrases: frozenset[str]  # normalised allowed phrases
    stable_frames: int
    text: str = ""  # the latest partial, normalised
    since: int = 0  # the decoded position at which ``text`` first appeared

    @classmethod
    def for_phrases(cls, phrases: Iterable[str], stable_ms: int = DEFAULT_STABLE_MS) -> EarlyMatch:
        return cls(frozenset(normalize_phrase(p) for p in phrases), max(1, round(stable_ms / FRAME_MS)))

    def update(self, partial: str, decoded: int) -> None:
        """The partial hypothesis after the recognizer has decoded ``decoded`` frames."""
        text = normalize_phrase(partial)
        if text != self.text:
            self.text, self.since = text, decoded

    def ready(self, decoded: int, received: int, quiet: int) -> bool:
        """May the turn end now?

        ``decoded``: frames the latest partial covers; ``received``: frames received so far
        (at least ``decoded``); ``quiet``: quiet frames in a row up to the latest received one.
        The partial must have been formed inside the quiet and stayed the same over
        ``stable_frames`` of it: the decoder has *heard* the silence after the phrase.
        """
        if self.text not in self.phrases:
            return False
        quiet_in_decoded = quiet - (received - decoded)
        if quiet_in_decoded < self.stable_frames:
            return False
        # A partial formed while the caller was still speaking may be a guess at a word not yet
        # finished ("상담..." heard as "아니요"), and the decoder is slow to drop it: it lingers for
        # 100-250 ms of silence. Only a hypothesis formed after the quiet began is trusted.
        quiet_began = decoded - quiet_in_decoded
        return self.since >= quiet_began and decoded - self.since >= self.stable_frames
