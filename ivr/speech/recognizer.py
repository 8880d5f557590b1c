"""One streaming recognizer per listening call, over a model every call shares.

Two modes:

- Grammar (menus): Vosk decodes against the step's phrases only, which is faster and far more
  accurate than dictation.  A Vosk grammar is a loop over its phrases, so "yes yes" or "yes no"
  come out of it too; only a result that is exactly one allowed phrase counts, anything else is
  no-match.  Phrases with words the model does not know are dropped with a warning (Kaldi would
  drop the word silently and the phrase would change meaning), and ``[unk]``, the usual garbage
  word, is only added when the model's vocabulary has it (many small models lack it).
- Free-form: the model's own language model, with word timings and confidences (``SetWords``);
  the flow then matches the transcript against its intents (``ivr.flow.matching``).

Either way, a result whose mean word confidence is under the threshold is no-match.

Audio comes in as the call's 8 kHz int16 frames and is resampled to the model's rate with one
``soxr.ResampleStream`` per recognizer, so chunk edges leave no clicks.  Every method that touches
Vosk blocks for as long as decoding takes: call them from a worker thread (``decode_pool``), one
call at a time per recognizer.  Vosk releases the GIL while decoding (it is a cffi binding), so
threads use every core; see BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import soxr  # type: ignore[import-untyped]

from ivr.logs import get_logger
from ivr.speech.models import VoskModel

__all__ = [
    "DEFAULT_THRESHOLD",
    "Recognition",
    "StreamingRecognizer",
    "Word",
    "decode_pool",
    "normalize_phrase",
]

Int16Array = npt.NDArray[np.int16]
DEFAULT_THRESHOLD = 0.6  # measured: noise forced through a small grammar scores ~0.45-0.6
INPUT_RATE = 8000
log = get_logger()


@dataclass(frozen=True, slots=True)
class Word:
    word: str
    conf: float
    start: float  # seconds from the first sample fed
    end: float


@dataclass(frozen=True, slots=True)
class Recognition:
    """What one utterance decoded to; ``matched`` False means no-match (text kept for the record)."""

    text: str
    confidence: float  # mean word confidence, 0.0 when no words
    words: tuple[Word, ...]
    matched: bool
    phrase: str | None = None  # grammar mode: the allowed phrase it is exactly equal to


def normalize_phrase(text: str) -> str:
    return " ".join(text.casefold().split())


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def decode_pool(workers: int | None = None) -> ThreadPoolExecutor:
    """The process-wide decoding pool: one thread per core, since Vosk releases the GIL.

    More threads than cores would only add context switches to CPU-bound work; the event loop's
    own thread stays free because it never decodes.
    """
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2, thread_name_prefix="asr")
        return _pool


# Short, common words that a menu never offers. A grammar decoder must pick *some* allowed phrase
# for whatever it hears; with only the menu's phrases, a cough or line noise comes out as a menu
# choice, often with high confidence. Models with an "[unk]" word get that; the others get these
# as somewhere else for noise to land (a result naming one of them is no match).
GARBAGE_WORDS = (
    "uh", "um", "the", "a", "and", "so", "well", "hello",
    "äh", "ähm", "und", "also", "ja", "hallo",
    "그", "저", "것", "수",
)  # fmt: skip


def garbage_words(model: VoskModel, phrases: Sequence[str]) -> list[str]:
    if model.has_word("[unk]"):
        return ["[unk]"]
    taken = {word for phrase in phrases for word in phrase.split()}
    return [w for w in GARBAGE_WORDS if w not in taken and model.has_word(w)]


class StreamingRecognizer:
    """Feed 8 kHz frames with ``accept``; ``finish`` ends the utterance and judges the result.

    Not thread-safe: one thread at a time (the listener serialises its jobs).
    """

    def __init__(
        self,
        model: VoskModel,
        phrases: Sequence[str] | None = None,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        input_rate: int = INPUT_RATE,
    ) -> None:
        import vosk  # type: ignore[import-untyped]

        self.model = model
        self.threshold = threshold
        self.rate = model.sample_rate
        self.phrases: tuple[str, ...] | None = None
        self.dropped: tuple[str, ...] = ()
        handle: Any
        if phrases is None:
            handle = vosk.KaldiRecognizer(model.handle, float(self.rate))
        else:
            usable, dropped = self._usable(model, phrases)
            self.phrases, self.dropped = tuple(usable), tuple(dropped)
            if dropped:
                log.warning("grammar phrases not in the model's vocabulary", phrases=list(dropped))
            grammar = list(usable) + garbage_words(model, usable)
            # ensure_ascii=False: Vosk does not decode \\u escapes, so "네" would become an unknown word.
            handle = vosk.KaldiRecognizer(
                model.handle, float(self.rate), json.dumps(grammar, ensure_ascii=False)
            )
        handle.SetWords(True)
        self._handle = handle
        self._allowed = {normalize_phrase(p): p for p in self.phrases or ()}
        self._resampler = (
            soxr.ResampleStream(input_rate, self.rate, 1, dtype="int16", quality="HQ")
            if input_rate != self.rate
            else None
        )
        self.samples_fed = 0  # at the model's rate

    @staticmethod
    def _usable(model: VoskModel, phrases: Sequence[str]) -> tuple[list[str], list[str]]:
        usable: list[str] = []
        dropped: list[str] = []
        for phrase in phrases:
            words = phrase.split()
            target = usable if words and all(model.has_word(w) for w in words) else dropped
            if phrase not in target:
                target.append(phrase)
        return usable, dropped

    def accept(self, audio: Int16Array) -> None:
        """Decode more of the utterance (8 kHz int16, any length)."""
        data = self._resample(audio, last=False)
        if len(data):
            self._handle.AcceptWaveform(data.tobytes())
            self.samples_fed += len(data)

    def partial(self) -> str:
        """The best guess so far (not judged; for display and early decisions)."""
        return str(json.loads(self._handle.PartialResult()).get("partial", ""))

    def finish(self) -> Recognition:
        """End of utterance: flush the resampler, decode the rest, judge, and get ready for the next."""
        tail = self._resample(np.zeros(0, np.int16), last=True)
        if len(tail):
            self._handle.AcceptWaveform(tail.tobytes())
            self.samples_fed += len(tail)
        result = json.loads(self._handle.FinalResult())
        recognition = self.judge(result)
        if self._resampler is not None:
            self._resampler.clear()
        self.samples_fed = 0
        return recognition

    def _resample(self, audio: Int16Array, *, last: bool) -> Int16Array:
        if self._resampler is None:
            return audio
        out: Int16Array = self._resampler.resample_chunk(np.ascontiguousarray(audio, np.int16), last=last)
        return out

    def judge(self, result: dict[str, Any]) -> Recognition:
        """Turn Vosk's JSON result into a Recognition, applying the grammar and threshold rules."""
        words = tuple(
            Word(str(w["word"]), float(w.get("conf", 0.0)), float(w["start"]), float(w["end"]))
            for w in result.get("result", ())
            if w.get("word") != "[unk]"
        )
        text = str(result.get("text", "")).strip()
        confidence = sum(w.conf for w in words) / len(words) if words else 0.0
        if not text or "[unk]" in text.split() or confidence < self.threshold:
            return Recognition(text, confidence, words, False)
        if self.phrases is None:
            return Recognition(text, confidence, words, True)
        phrase = self._allowed.get(normalize_phrase(text))
        return Recognition(text, confidence, words, phrase is not None, phrase)
