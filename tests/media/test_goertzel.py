from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from ivr.media.g711 import ulaw_decode, ulaw_encode
from ivr.media.goertzel import DTMF_FREQUENCIES, DtmfDetector, classify_frame, generate_dtmf
from ivr.media.prompts import load_wav

Int16Array = npt.NDArray[np.int16]

SPEECH = [
    "Welcome to the callback service. Please press one to book a callback.",
    "Your estimated waiting time is four minutes. Thank you for holding, an agent will be with you.",
    "Nine eight seven six five four three two one zero, star, pound.",
    "She sells sea shells by the sea shore; the quick brown fox jumps over the lazy dog.",
]


def detect(signal: Int16Array, detector: DtmfDetector | None = None) -> str:
    detector = detector or DtmfDetector()
    signal = np.concatenate([signal, np.zeros((-len(signal)) % 160, np.int16)])
    digits = [detector.process(signal[i : i + 160]) for i in range(0, len(signal), 160)]
    return "".join(d for d in digits if d)


def gap(ms: int) -> Int16Array:
    return np.zeros(8 * ms, np.int16)


@pytest.mark.parametrize("digit", list(DTMF_FREQUENCIES))
def test_every_digit_detected_once(digit: str) -> None:
    assert detect(np.concatenate([gap(30), generate_dtmf(digit, 100), gap(60)])) == digit


def test_tone_generator_frequencies() -> None:
    tone = generate_dtmf("5", 1000).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(tone))
    peaks = sorted(np.argsort(spectrum)[-2:].tolist())
    assert peaks == [770, 1336]  # 1 Hz bins for one second
    assert len(generate_dtmf("1", 40)) == 320
    assert np.abs(tone).max() <= 32767 * 0.5 + 1
    with pytest.raises(ValueError):
        generate_dtmf("X", 100)


def test_held_tone_is_one_digit() -> None:
    assert detect(generate_dtmf("7", 1500)) == "7"


def test_fast_sequence_40ms_on_40ms_off() -> None:
    digits = "0123456789*#ABCD"
    signal = np.concatenate([np.concatenate([generate_dtmf(d, 40), gap(40)]) for d in digits])
    assert detect(signal) == digits


def test_misaligned_frames() -> None:
    # Tones that start mid-frame still count, repeated digits need the gap in between.
    signal = np.concatenate([gap(7), generate_dtmf("3", 60), gap(50), generate_dtmf("3", 60), gap(45)])
    assert detect(signal) == "33"


def test_too_short_tone_is_ignored() -> None:
    assert detect(np.concatenate([gap(20), generate_dtmf("4", 20), gap(40)])) == ""


def test_same_digit_without_a_gap_is_one_press() -> None:
    signal = np.concatenate([generate_dtmf("8", 100), gap(20), generate_dtmf("8", 100)])
    assert detect(signal) == "8"


def test_survives_g711_and_moderate_noise() -> None:
    rng = np.random.default_rng(1)
    signal = np.concatenate([generate_dtmf(d, 60, amplitude=0.1) for d in "159#"] + [gap(1)])
    spaced = np.concatenate(
        [np.concatenate([signal[i : i + 480], gap(60)]) for i in range(0, len(signal) - 8, 480)]
    )
    noisy = np.clip(spaced + rng.normal(0, 200, len(spaced)), -32768, 32767).astype(np.int16)
    assert detect(ulaw_decode(ulaw_encode(noisy))) == "159#"


def test_twist_limits() -> None:
    t = np.arange(160) / 8000
    low, high = DTMF_FREQUENCIES["1"]

    def two_tone(row_amp: float, col_amp: float) -> Int16Array:
        x = row_amp * np.sin(2 * np.pi * low * t) + col_amp * np.sin(2 * np.pi * high * t)
        return x.astype(np.int16)

    assert classify_frame(two_tone(5000, 5000)) == "1"
    assert classify_frame(two_tone(5000, 5000 * 10 ** (-6 / 20))) == "1"  # 6 dB normal twist
    assert classify_frame(two_tone(5000, 5000 * 10 ** (-12 / 20))) is None
    assert classify_frame(two_tone(5000, 5000 * 10 ** (8 / 20))) is None  # 8 dB reverse twist


def test_single_tone_and_too_quiet_rejected() -> None:
    t = np.arange(160) / 8000
    assert classify_frame((8000 * np.sin(2 * np.pi * 697 * t)).astype(np.int16)) is None
    assert classify_frame(generate_dtmf("1", 20, amplitude=0.001)) is None
    assert classify_frame(np.zeros(160, np.int16)) is None
    with pytest.raises(ValueError):
        classify_frame(np.zeros(100, np.int16))


@pytest.mark.parametrize("sigma", [300.0, 3000.0, 12000.0])
def test_white_noise_never_triggers(sigma: float) -> None:
    rng = np.random.default_rng(int(sigma))
    noise = np.clip(rng.normal(0, sigma, 8000 * 20), -32768, 32767).astype(np.int16)
    assert detect(noise) == ""


@pytest.mark.parametrize("voice", ["en", "en-us", "de", "fr"])
def test_speech_never_triggers(tmp_path: Path, voice: str) -> None:
    total = 0
    for i, text in enumerate(SPEECH):
        wav = tmp_path / f"speech{i}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(wav), text], check=True, capture_output=True)
        speech = load_wav(wav)
        total += len(speech)
        assert detect(speech) == "", text
        # Louder and through the codec, as a caller would sound.
        loud = np.clip(speech.astype(np.int32) * 3, -32768, 32767).astype(np.int16)
        assert detect(ulaw_decode(ulaw_encode(loud))) == "", text
    assert total > 8000 * 10  # well over ten seconds of speech checked


def test_speech_with_a_digit_in_it(tmp_path: Path) -> None:
    wav = tmp_path / "s.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), SPEECH[0]], check=True, capture_output=True)
    speech = load_wav(wav)
    signal = np.concatenate([speech[:16000], generate_dtmf("6", 80), gap(40), speech[16000:]])
    assert detect(signal) == "6"


def test_reset_and_active_digit() -> None:
    detector = DtmfDetector()
    tone = generate_dtmf("9", 60)
    detector.process(tone[:160])
    assert detector.process(tone[160:320]) == "9"
    assert detector.active_digit == "9"
    detector.reset()
    assert detector.active_digit is None
    assert detector.process(None) is None
