"""Voice activity detection over 20 ms frames: energy + zero crossings, adaptive noise floor.

Built for speech barge-in and end-of-utterance detection (endpointing) in front of ASR; it is not
a codec VAD (no comfort noise parameters, RFC 3389) and makes no claim to G.729 Annex B quality.

Features, per 160-sample frame
------------------------------
- Energy in the telephone voice band, 300-3400 Hz (ITU-T G.712),
  in dB relative to a full-scale sine: one 160-point real FFT of the Hann-windowed frame, summed
  over bins 6..68.  Mains hum at 50/60 Hz and its first harmonics fall outside the band, and the
  window's sidelobes leave less than about -40 dB of them inside: hum neither looks like speech
  nor raises the floor that speech must clear.  White noise keeps ~80 % of its energy.
- Zero-crossing rate of the band-passed frame (inverse FFT of the same bins), the share of sign
  changes between neighbouring samples: voiced speech is dominated by its first formants and
  crosses zero rarely (0.1-0.3); band-limited white noise crosses about half the time or more.
  A speech onset must lie between `min_zcr` and `max_zcr`.  (Measured on the raw frame instead,
  a strong hum would own the zero crossings and hide speech.)

Noise floor
-----------
The floor follows the quietest frames: it drops quickly toward a quieter frame (`floor_down` of
the difference per frame) and rises at most `floor_rise_db` per frame (5 dB/s by default), so the
gaps between syllables keep it low while a steady noise or hum that starts mid-call is absorbed
within seconds.  It starts at the first frame's level, so noise present from the start is floor at
once, and never goes below `min_floor_db`.

Decisions
---------
A frame is a speech candidate when its energy is at least `start_margin_db` over the floor and
over the absolute `min_level_db`, and its zero-crossing rate is in range.  `start_frames` candidate
frames in a row (3 = 60 ms) make a `SpeechStart`, stamped with the first of them: one click (one or
two frames) never does.  Once speaking, a frame `continue_margin_db` over the floor counts as
speech whatever its zero crossings (fricatives); `end_silence_ms` without one makes a `SpeechEnd`,
stamped with the first quiet frame.  `speaking_now` is the frame-level decision with a hangover of
`hangover_frames`, to gate audio toward a recogniser without clipping word ends.

Timestamps are in samples (8 kHz), as given with each frame, or counted from 0 if not given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["SpeechEnd", "SpeechStart", "Vad", "VadConfig", "VadEvent"]

FRAME = 160
Int16Array = npt.NDArray[np.int16]

# Mean square of a full-scale sine: energies are in dB below it (dBFS, sine-referenced).
_FULL_SCALE = 10.0 * math.log10(32768.0**2 / 2.0)
# Hann window scaled to unit mean square, so windowing keeps the frame's energy.
_WINDOW = np.hanning(FRAME) * math.sqrt(8.0 / 3.0)
_WINDOW.setflags(write=False)
# The voice band of a telephone channel (ITU-T G.712: 300-3400 Hz), in 50 Hz bins of a 160-point DFT.
_LOW_BIN = 6
_HIGH_BIN = 69
# The windowed frame's ends are near zero: count crossings in its middle three quarters.
_ZCR_SPAN = slice(FRAME // 8, FRAME - FRAME // 8)


@dataclass(frozen=True, slots=True)
class SpeechStart:
    """Speech began at `timestamp` (its first frame); reported on the frame stamped `at`."""

    timestamp: int
    at: int


@dataclass(frozen=True, slots=True)
class SpeechEnd:
    """Speech ended at `timestamp` (the first quiet frame); reported on the frame stamped `at`."""

    timestamp: int
    at: int


VadEvent = SpeechStart | SpeechEnd


@dataclass(frozen=True, slots=True)
class VadConfig:
    start_frames: int = 3  # consecutive speech frames before SpeechStart (60 ms)
    end_silence_ms: int = 600  # quiet time that ends an utterance
    hangover_frames: int = 8  # `speaking_now` stays true this long after a speech frame
    start_margin_db: float = 9.0  # over the noise floor, to start
    continue_margin_db: float = 5.0  # over the noise floor, to keep speaking
    min_level_db: float = -45.0  # absolute: quieter is never speech (voice-band energy)
    min_zcr: float = 0.03  # below: hum and other low rumble
    max_zcr: float = 0.5  # above: noise-like (white noise sits at ~0.5)
    floor_rise_db: float = 0.1  # per frame, at most
    floor_down: float = 0.3  # share of the distance per frame toward a quieter frame
    min_floor_db: float = -70.0

    def __post_init__(self) -> None:
        if self.start_frames < 1:
            raise ValueError("start_frames must be at least 1")
        if self.end_silence_ms < 20:
            raise ValueError("end_silence_ms must be at least one frame (20 ms)")
        if not 0.0 < self.floor_down <= 1.0:
            raise ValueError("floor_down must be in (0, 1]")


class Vad:
    """`process(frame, timestamp)` once per 20 ms frame; returns a `VadEvent` or None."""

    def __init__(self, config: VadConfig | None = None) -> None:
        self.config = config if config is not None else VadConfig()
        self._end_frames = max(1, round(self.config.end_silence_ms / 20))
        self.reset()

    def reset(self) -> None:
        """Forget the floor and state (a new call leg, the stream was reset)."""
        self.floor_db: float | None = None
        self.speaking = False  # between SpeechStart and SpeechEnd
        self.level_db = -math.inf  # last frame's voice-band energy
        self.zcr = 0.0  # last frame's zero-crossing rate
        self._run = 0  # consecutive candidate frames (while not speaking)
        self._run_start = 0
        self._quiet = 0  # consecutive quiet frames (while speaking)
        self._quiet_start = 0
        self._since_speech = 1 << 30  # frames since the last speech frame, for the hangover
        self._timestamp = 0

    @property
    def speaking_now(self) -> bool:
        """Frame-level decision with hangover (for gating audio), not the utterance state."""
        return self._since_speech <= self.config.hangover_frames

    @property
    def quiet_frames(self) -> int:
        """Quiet frames in a row since the last speech frame of an utterance (0 outside one)."""
        return self._quiet if self.speaking else 0

    def _features(self, frame: Int16Array | None) -> tuple[float, float]:
        if frame is None:
            return -math.inf, 0.0
        x = frame.astype(np.float64)
        spectrum = np.fft.rfft(x * _WINDOW)
        band = spectrum[_LOW_BIN:_HIGH_BIN]
        # Parseval, one-sided spectrum: mean square of the band-passed frame.
        energy = 2.0 * float(np.vdot(band, band).real) / (len(x) * len(x))
        level = 10.0 * math.log10(energy) - _FULL_SCALE if energy > 0.0 else -math.inf
        # Zero crossings of the band-passed frame: hum would otherwise own them.
        spectrum[:_LOW_BIN] = 0.0
        spectrum[_HIGH_BIN:] = 0.0
        signs = np.signbit(np.fft.irfft(spectrum, len(x))[_ZCR_SPAN])
        zcr = float(np.count_nonzero(signs[1:] != signs[:-1])) / (len(signs) - 1)
        return level, zcr

    def process(self, frame: Int16Array | None, timestamp: int | None = None) -> VadEvent | None:
        """Feed one 20 ms frame (None: nothing received, counts as silence)."""
        cfg = self.config
        ts = self._timestamp if timestamp is None else timestamp
        self._timestamp = (ts + FRAME) & 0xFFFF_FFFF
        level, zcr = self._features(frame)
        self.level_db, self.zcr = level, zcr
        floor = self._update_floor(level)

        event: VadEvent | None = None
        if not self.speaking:
            candidate = (
                level >= floor + cfg.start_margin_db
                and level >= cfg.min_level_db
                and cfg.min_zcr <= zcr <= cfg.max_zcr
            )
            if candidate:
                if self._run == 0:
                    self._run_start = ts
                self._run += 1
                self._since_speech = 0
                if self._run >= cfg.start_frames:
                    self.speaking = True
                    self._quiet = 0
                    event = SpeechStart(self._run_start, ts)
            else:
                self._run = 0
                self._since_speech += 1
        else:
            if level >= floor + cfg.continue_margin_db and level >= cfg.min_level_db - cfg.continue_margin_db:
                self._quiet = 0
                self._since_speech = 0
            else:
                if self._quiet == 0:
                    self._quiet_start = ts
                self._quiet += 1
                self._since_speech += 1
                if self._quiet >= self._end_frames:
                    self.speaking = False
                    self._run = 0
                    event = SpeechEnd(self._quiet_start, ts)
        return event

    def _update_floor(self, level: float) -> float:
        cfg = self.config
        level = max(level, cfg.min_floor_db)
        floor = self.floor_db
        if floor is None:
            floor = level
        elif level < floor:
            floor += cfg.floor_down * (level - floor)
        else:
            floor += min(level - floor, cfg.floor_rise_db)
        # The decision for this frame uses the floor as it was before the frame could raise it
        # much: a rise of at most floor_rise_db cannot hide an onset.
        self.floor_db = floor
        return floor
