"""Answering-machine detection on audio rendered by espeak-ng."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from ivr.handoff.amd import AmdDetector, detect
from ivr.media.prompts import load_wav

RATE = 8000
VOICEMAIL = (
    "Hi, you have reached the voicemail of John Smith. I cannot take your call right now. "
    "Please leave your name and number after the tone and I will call you back."
)


def say(tmp_path: Path, text: str, name: str) -> npt.NDArray[np.int16]:
    out = tmp_path / f"{name}.wav"
    subprocess.run(["espeak-ng", "-w", str(out), text], check=True, timeout=30)
    return load_wav(out)


def silence(seconds: float) -> npt.NDArray[np.int16]:
    return np.zeros(int(seconds * RATE), dtype=np.int16)


def beep(seconds: float = 0.5, hz: float = 1000.0) -> npt.NDArray[np.int16]:
    t = np.arange(int(seconds * RATE)) / RATE
    return (6000 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


@pytest.mark.parametrize("greeting", ["Hello?", "Yes?", "Smith speaking."])
def test_short_greeting_then_silence_is_a_person(tmp_path: Path, greeting: str) -> None:
    result = detect(np.concatenate([silence(0.4), say(tmp_path, greeting, "h"), silence(3.0)]))
    assert result.verdict == "human", result
    assert result.at < 2.5  # bridged quickly, before the person says "hello?" again


def test_long_greeting_and_beep_is_a_machine(tmp_path: Path) -> None:
    audio = np.concatenate([silence(0.5), say(tmp_path, VOICEMAIL, "vm"), silence(0.3), beep()])
    result = detect(audio)
    assert result.verdict == "machine" and "s" in result.reason
    assert result.at < 4.0  # decided on the greeting, long before the beep


def test_beep_alone_is_a_machine() -> None:
    result = detect(np.concatenate([silence(1.0), beep(0.4, 850.0), silence(1.0)]))
    assert (result.verdict, result.reason.startswith("beep")) == ("machine", True)


def test_silence_and_line_noise_are_unknown() -> None:
    assert detect(silence(5.0)).verdict == "unknown"
    noise = np.random.default_rng(3).normal(0, 40, 5 * RATE).astype(np.int16)
    assert detect(noise).verdict == "unknown"


def test_streaming_stops_at_the_first_verdict(tmp_path: Path) -> None:
    audio = np.concatenate([say(tmp_path, "Hello?", "h"), silence(3.0)])
    detector = AmdDetector()
    verdicts = [detector.feed(audio[i : i + 160]) for i in range(0, len(audio) - 159, 160)]
    first = next(i for i, v in enumerate(verdicts) if v is not None)
    assert all(v == verdicts[first] for v in verdicts[first:])
    assert detector.finish() == verdicts[first]
