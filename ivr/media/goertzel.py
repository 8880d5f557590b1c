"""In-band DTMF: a Goertzel detector per 20 ms frame and a tone generator.

Detection measures the eight DTMF frequencies (ITU-T Q.23) in each 160-sample frame.  The Goertzel
recurrence computes one DFT bin; evaluating the same bins as a dot product with precomputed
cosine/sine vectors gives identical powers and, in numpy, costs one small matrix product per frame
instead of a Python loop per sample.

A frame is a candidate digit when (thresholds after ITU-T Q.24 practice):

- both the strongest row and the strongest column tone are above a minimum level;
- each is clearly stronger than the other tones of its group (a chord of three tones is no digit);
- the twist (column level relative to row level) is within +4 dB / -8 dB;
- the two tones carry most of the frame's energy: speech and noise spread theirs across the band,
  which is what keeps the detector quiet on voice.

Debounce: a digit is reported once it has been seen in two consecutive frames (>= 40 ms on) and
the next one only after the detector has seen at least two frames without it (>= 40 ms off), so a
tone held for a second is still one digit.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["DTMF_FREQUENCIES", "DtmfDetector", "generate_dtmf"]

SAMPLE_RATE = 8000
FRAME = 160
ROWS = (697.0, 770.0, 852.0, 941.0)
COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")
DTMF_FREQUENCIES: dict[str, tuple[float, float]] = {
    KEYPAD[r][c]: (ROWS[r], COLUMNS[c]) for r in range(4) for c in range(4)
}

# Per-tone amplitude below which nothing counts: about -45 dBFS, well under the -25 dBm0 a
# receiver must still accept (ITU-T Q.24) after G.711 at nominal level.
MIN_AMPLITUDE = 180.0
GROUP_DOMINANCE = 6.0  # strongest tone vs. the next in its group, power ratio (~8 dB)
MAX_NORMAL_TWIST_DB = 8.0  # columns may be this much weaker than rows
MAX_REVERSE_TWIST_DB = 4.0  # ... or this much stronger
MIN_TONE_ENERGY_SHARE = 0.70  # row+column tones must carry this share of the frame energy
ON_FRAMES = 2
OFF_FRAMES = 2


def _bin_matrix() -> npt.NDArray[np.float64]:
    n = np.arange(FRAME, dtype=np.float64)
    freqs = np.array(ROWS + COLUMNS)
    phase = 2.0 * np.pi * np.outer(freqs, n) / SAMPLE_RATE
    return np.vstack([np.cos(phase), np.sin(phase)])  # 16 x 160


_BINS = _bin_matrix()
_BINS.setflags(write=False)
_MIN_POWER = (MIN_AMPLITUDE * FRAME / 2.0) ** 2
_NORMAL_TWIST = 10.0 ** (-MAX_NORMAL_TWIST_DB / 10.0)
_REVERSE_TWIST = 10.0 ** (MAX_REVERSE_TWIST_DB / 10.0)


def classify_frame(frame: npt.NDArray[np.int16]) -> str | None:
    """The digit whose two tones dominate this 160-sample frame, or None."""
    if frame.shape != (FRAME,):
        raise ValueError(f"expected a frame of {FRAME} samples, got shape {frame.shape}")
    projections = _BINS @ frame
    squares = projections * projections
    # |X(f)|^2 for the 8 frequencies; four numbers a group are cheaper to compare in Python.
    power: list[float] = (squares[:8] + squares[8:]).tolist()
    rows = power[:4]
    cols = power[4:]
    row_power = max(rows)
    col_power = max(cols)
    if row_power < _MIN_POWER or col_power < _MIN_POWER:
        return None  # the common case (silence, speech, noise) stops here
    r = rows.index(row_power)
    c = cols.index(col_power)
    if row_power < GROUP_DOMINANCE * sorted(rows)[-2] or col_power < GROUP_DOMINANCE * sorted(cols)[-2]:
        return None
    twist = col_power / row_power
    if twist < _NORMAL_TWIST or twist > _REVERSE_TWIST:
        return None
    # A sinusoid of amplitude A has |X|^2 = (A N / 2)^2 and energy A^2 N / 2: share = 2|X|^2 / N / E.
    x = frame.astype(np.float64)
    energy = float(np.dot(x, x))
    if 2.0 * (row_power + col_power) / FRAME < MIN_TONE_ENERGY_SHARE * energy:
        return None
    return KEYPAD[r][c]


class DtmfDetector:
    """Debounced in-band detection: `process(frame)` returns a digit once per key press."""

    def __init__(self, on_frames: int = ON_FRAMES, off_frames: int = OFF_FRAMES) -> None:
        self.on_frames = on_frames
        self.off_frames = off_frames
        self._candidate: str | None = None
        self._candidate_frames = 0
        self._active: str | None = None  # digit reported and not yet released
        self._off = off_frames  # frames without the active digit
        self.frames = 0  # frames processed, for start timestamps

    @property
    def active_digit(self) -> str | None:
        return self._active

    def reset(self) -> None:
        self._candidate = None
        self._candidate_frames = 0
        self._active = None
        self._off = self.off_frames

    def process(self, frame: npt.NDArray[np.int16] | None) -> str | None:
        """Feed one frame (None = nothing received, counts as silence); returns a new digit or None."""
        self.frames += 1
        digit = None if frame is None else classify_frame(frame)
        if self._active is not None:
            if digit == self._active:
                self._off = 0
                return None
            self._off += 1
            if self._off < self.off_frames:
                return None
            self._active = None
        if digit is None:
            self._candidate = None
            self._candidate_frames = 0
            return None
        if digit == self._candidate:
            self._candidate_frames += 1
        else:
            self._candidate = digit
            self._candidate_frames = 1
        if self._candidate_frames >= self.on_frames:
            self._active = digit
            self._off = 0
            self._candidate = None
            self._candidate_frames = 0
            return digit
        return None


def generate_dtmf(
    digit: str, ms: int, amplitude: float = 0.25, sample_rate: int = SAMPLE_RATE
) -> npt.NDArray[np.int16]:
    """The two-tone signal for `digit`, `ms` long; `amplitude` per tone as a fraction of full scale."""
    try:
        low, high = DTMF_FREQUENCIES[digit.upper()]
    except KeyError:
        raise ValueError(f"{digit!r} is not a DTMF digit") from None
    if not 0.0 < amplitude <= 0.5:
        raise ValueError("amplitude per tone must be in (0, 0.5] so the sum cannot clip")
    t = np.arange(sample_rate * ms // 1000, dtype=np.float64) / sample_rate
    signal = amplitude * 32767.0 * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t))
    return np.round(signal).astype(np.int16)
