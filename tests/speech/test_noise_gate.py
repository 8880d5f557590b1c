"""The noise gate in front of grammar decoding: voiced speech passes, hiss does not."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from ivr.media.prompts import load_wav
from ivr.speech.listener import NOISE_FLATNESS, spectral_flatness


def _frames(samples: np.ndarray) -> list[np.ndarray]:
    return [samples[i : i + 160] for i in range(0, len(samples) - 160, 160)]


def test_speech_is_not_flat_and_white_noise_is(tmp_path: Path) -> None:
    wav = tmp_path / "speech.wav"
    subprocess.run(["espeak-ng", "-w", str(wav), "please connect me to an agent"], check=True)
    speech = [f for f in map(spectral_flatness, _frames(load_wav(wav))) if f is not None]
    noise_samples = np.random.default_rng(3).normal(0, 3000, 16000).clip(-32768, 32767).astype(np.int16)
    noise = [f for f in map(spectral_flatness, _frames(noise_samples)) if f is not None]
    assert len(speech) > 20 and len(noise) > 90
    assert sum(f > NOISE_FLATNESS for f in speech) < 0.1 * len(speech)
    assert sum(f > NOISE_FLATNESS for f in noise) > 0.7 * len(noise)


def test_quiet_frames_are_not_judged() -> None:
    assert spectral_flatness(np.zeros(160, np.int16)) is None
    assert spectral_flatness(np.full(160, 50, np.int16)) is None
