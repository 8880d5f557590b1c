"""Prompts rendered in process by pyttsx3 on its one thread: same audio as the espeak-ng command,
safe under concurrent requests, and the command takes over where pyttsx3 cannot help."""

from __future__ import annotations

import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ivr.speech.pyttsx3_worker import Pyttsx3Renderer, shared_renderer
from ivr.speech.tts import TextToSpeech


def frames(path: Path) -> int:
    with wave.open(str(path)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        return wav.getnframes()


@pytest.mark.parametrize(
    ("text", "voice"), [("Welcome to the demo line.", "en-us"), ("Guten Tag, 123.", "de")]
)
def test_in_process_audio_is_the_same_speech_as_the_command(tmp_path: Path, text: str, voice: str) -> None:
    in_process = TextToSpeech(tmp_path / "a", in_process=True).render_sync(text, voice)
    command = TextToSpeech(tmp_path / "b").render_sync(text, voice)
    assert in_process.name == command.name  # the cache key does not depend on the renderer
    # The same synthesizer, voice and rate; in process its state carries over from earlier
    # prompts (why the command is the default), which moves the length by a few percent.
    assert abs(frames(in_process) - frames(command)) <= 0.05 * frames(command)


def test_concurrent_requests_all_get_their_own_audio(tmp_path: Path) -> None:
    tts = TextToSpeech(tmp_path, in_process=True)
    texts = [f"Your order number {n} is on its way." for n in range(12)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        paths = list(pool.map(lambda text: tts.render_sync(text, "en-us"), texts))
    assert len(set(paths)) == 12 and all(frames(p) > 8000 for p in paths)
    assert not list(tmp_path.glob("*.part")), "no half-written prompt is left behind"
    assert tts.in_process is not None and tts.in_process.broken is None


def test_unknown_voices_go_to_the_command(tmp_path: Path) -> None:
    # pyttsx3 would quietly keep the previous call's voice; the command decides (its default voice).
    renderer = shared_renderer()
    assert not renderer.render("hello", "no-such-voice", 160, tmp_path / "x.wav")
    assert renderer.broken is None, "one bad voice does not disable the renderer"
    assert frames(TextToSpeech(tmp_path, in_process=True).render_sync("hello", "no-such-voice")) > 4000


def test_without_pyttsx3_the_command_renders(tmp_path: Path) -> None:
    tts = TextToSpeech(tmp_path, in_process=True)
    tts.in_process = Pyttsx3Renderer()
    tts.in_process.broken = "pyttsx3 not installed"
    assert frames(tts.render_sync("Still speaking.", "en-us")) > 8000
