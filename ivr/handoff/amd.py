"""Answering-machine detection on the first seconds of the customer leg.

The pattern contact-centre dialers use, on speech segments from ``ivr.media.vad``:

- a person answers with a short greeting ("Hello?", "Müller?") of well under two seconds and then
  waits for us: a short utterance followed by silence means **human**;
- a machine plays a long greeting ("Hi, you've reached ... leave a message after the tone"):
  continuous speech past ``long_greeting`` seconds means **machine**;
- a beep (a steady pure tone, most energy in one narrow band for a fifth of a second or more) means
  **machine**, whatever came before;
- nothing at all within ``initial_silence`` seconds is **unknown**: a person who says nothing, or a
  line that answered into silence. The dialer treats unknown as a person (bridging a person to an
  agent beats playing them a recorded message).

Feed 20 ms int16 frames at 8 kHz with ``feed``; it returns a verdict as soon as there is one, so a
person is bridged about 0.8 s after their "Hello?". ``finish`` gives the verdict when the time is up.
It is a heuristic: a person who answers with a long sentence is taken for a machine, a terse
voicemail greeting for a person. Its error rate is what it is; it errs towards "human".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from ivr.media.vad import SpeechEnd, SpeechStart, Vad, VadConfig

FRAME = 160
RATE = 8000
Verdict = Literal["human", "machine", "unknown"]


@dataclass(frozen=True)
class AmdResult:
    verdict: Verdict
    reason: str
    at: float  # seconds into the leg when decided


@dataclass(frozen=True)
class AmdConfig:
    initial_silence: float = 3.5  # no speech by then: unknown
    long_greeting: float = 2.6  # one utterance longer than this: machine
    after_greeting_silence: float = 0.8  # silence after a short greeting: human
    max_time: float = 5.0  # decide by then at the latest
    beep_min: float = 0.2  # seconds of steady tone
    beep_purity: float = 0.7  # share of the voice band's energy in the peak bins
    beep_level_db: float = -40.0


class AmdDetector:
    def __init__(self, config: AmdConfig | None = None) -> None:
        self.config = config or AmdConfig()
        # Shorter end silence than for endpointing: words of one greeting are 100-400 ms apart.
        self.vad = Vad(VadConfig(end_silence_ms=500))
        self.frames = 0
        self.speech_start: float | None = None
        self.last_end: float | None = None
        self.utterances = 0
        self.speech_total = 0.0
        self._tone_frames = 0
        self._tone_bin = -1
        self.result: AmdResult | None = None

    @property
    def elapsed(self) -> float:
        return self.frames * FRAME / RATE

    def _decide(self, verdict: Verdict, reason: str) -> AmdResult:
        self.result = AmdResult(verdict, reason, round(self.elapsed, 2))
        return self.result

    def _tone(self, frame: npt.NDArray[np.int16]) -> bool:
        """A steady pure tone: one dominant spectral peak, at the same frequency as the last frame."""
        x = frame.astype(np.float64) * np.hanning(FRAME)
        power = np.abs(np.fft.rfft(x)) ** 2
        band = power[6:69]  # 300-3400 Hz
        total = float(band.sum())
        if total <= 0:
            return False
        level = 10 * np.log10(total / (FRAME * FRAME) * 2 / (32768.0**2 / 2)) if total > 0 else -np.inf
        peak = int(np.argmax(band))
        purity = float(band[max(0, peak - 1) : peak + 2].sum()) / total
        steady = abs(peak - self._tone_bin) <= 1
        self._tone_bin = peak
        return bool(level >= self.config.beep_level_db and purity >= self.config.beep_purity and steady)

    def feed(self, frame: npt.NDArray[np.int16]) -> AmdResult | None:
        if self.result is not None:
            return self.result
        cfg = self.config
        now = self.elapsed
        self.frames += 1
        self._tone_frames = self._tone_frames + 1 if self._tone(frame) else 0
        if self._tone_frames * FRAME / RATE >= cfg.beep_min:
            return self._decide("machine", f"beep (steady tone for {cfg.beep_min:.1f} s)")
        event = self.vad.process(frame, (self.frames - 1) * FRAME)
        if isinstance(event, SpeechStart):
            self.speech_start = event.timestamp / RATE
        elif isinstance(event, SpeechEnd) and self.speech_start is not None:
            length = event.timestamp / RATE - self.speech_start
            self.utterances += 1
            self.speech_total += length
            self.last_end = event.timestamp / RATE
            self.speech_start = None
            if length > cfg.long_greeting:
                return self._decide("machine", f"greeting of {length:.1f} s")
        if self.speech_start is not None and now - self.speech_start > cfg.long_greeting:
            return self._decide("machine", f"speech longer than {cfg.long_greeting:.1f} s")
        if self.speech_total > cfg.long_greeting:
            return self._decide(
                "machine", f"{self.utterances} utterances, {self.speech_total:.1f} s of speech"
            )
        if (
            self.speech_start is None
            and self.last_end is not None
            and now + FRAME / RATE - self.last_end >= cfg.after_greeting_silence
            and self.speech_total <= cfg.long_greeting / 2
        ):
            return self._decide("human", f"short greeting ({self.speech_total:.1f} s) then silence")
        if self.utterances == 0 and self.speech_start is None and now >= cfg.initial_silence:
            return self._decide("unknown", f"no speech in {cfg.initial_silence:.1f} s")
        if now >= cfg.max_time:
            return self.finish()
        return None

    def finish(self) -> AmdResult:
        """The verdict with the audio so far (the leg ended or the time is up)."""
        if self.result is not None:
            return self.result
        if self.utterances == 0 and self.speech_start is None:
            return self._decide("unknown", "no speech")
        if self.speech_start is not None:
            return self._decide("unknown", "still speaking when time ran out")
        return self._decide("human", f"short speech ({self.speech_total:.1f} s)")


def detect(samples: npt.NDArray[np.int16], config: AmdConfig | None = None) -> AmdResult:
    """Run the detector over a whole recording (tests, offline checks)."""
    detector = AmdDetector(config)
    usable = len(samples) - len(samples) % FRAME
    for start in range(0, usable, FRAME):
        result = detector.feed(samples[start : start + FRAME])
        if result is not None:
            return result
    # The recording ended: what follows is silence.
    silence = np.zeros(FRAME, dtype=np.int16)
    while detector.elapsed < detector.config.max_time + 0.1:
        result = detector.feed(silence)
        if result is not None:
            return result
    return detector.finish()
