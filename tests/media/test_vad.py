from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ivr.media.prompts import load_wav
from ivr.media.stream import MediaStream
from ivr.media.vad import SpeechEnd, SpeechStart, Vad, VadConfig, VadEvent

FRAME = 160
RATE = 8000


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """espeak-ng speech at about -30 dBFS, a usual telephone level (float, 8 kHz)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    wav = Path(tmp_path_factory.mktemp("vad")) / "speech.wav"
    text = "Hello, I would like to book a callback for tomorrow morning please."
    subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, capture_output=True)
    samples = load_wav(wav).astype(np.float64)
    scaled: np.ndarray = samples * (0.03 * 32768 / np.sqrt(np.mean(samples**2)))
    return scaled


def pcm(x: np.ndarray) -> np.ndarray:
    x = np.concatenate([x, np.zeros((-len(x)) % FRAME)])
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def silence(ms: int) -> np.ndarray:
    return np.zeros(RATE * ms // 1000)


def noise(ms: int, rms: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, rms, RATE * ms // 1000)


def hum(ms: int, freq: float, amplitude: float) -> np.ndarray:
    t = np.arange(RATE * ms // 1000) / RATE
    # Mains hum with a third harmonic, as rectifiers and transformers make it.
    return amplitude * (np.sin(2 * np.pi * freq * t) + 0.2 * np.sin(2 * np.pi * 3 * freq * t))


def run(signal: np.ndarray, vad: Vad | None = None) -> list[VadEvent]:
    vad = vad if vad is not None else Vad()
    samples = pcm(signal)
    events = []
    for i in range(len(samples) // FRAME):
        event = vad.process(samples[i * FRAME : (i + 1) * FRAME], i * FRAME)
        if event is not None:
            events.append(event)
    return events


def onset(clean: np.ndarray, offset: int) -> int:
    """First frame of `clean` louder than 20 dB below its loudest frame, as a timestamp."""
    frames = pcm(clean).astype(np.float64).reshape(-1, FRAME)
    rms = np.sqrt((frames**2).mean(axis=1))
    return offset + int(np.flatnonzero(rms > rms.max() / 10)[0]) * FRAME


def last_voiced(clean: np.ndarray, offset: int) -> int:
    frames = pcm(clean).astype(np.float64).reshape(-1, FRAME)
    rms = np.sqrt((frames**2).mean(axis=1))
    return offset + (int(np.flatnonzero(rms > rms.max() / 10)[-1]) + 1) * FRAME


def test_speech_start_within_100ms_and_end_after_600ms(speech: np.ndarray) -> None:
    lead = silence(1000)
    events = run(np.concatenate([lead, speech, silence(1500)]))
    assert [type(e) for e in events] == [SpeechStart, SpeechEnd]
    start, end = events
    speech_onset = onset(speech, len(lead))
    # Reported at the end of frame `at`: barge-in within 100 ms of the onset.
    assert start.at + FRAME - speech_onset <= 100 * RATE // 1000
    assert start.timestamp <= start.at
    assert abs(end.timestamp - last_voiced(speech, len(lead))) <= 160 * RATE // 1000
    assert end.at - end.timestamp == (600 // 20 - 1) * FRAME


@pytest.mark.parametrize("background", ["white noise", "50 Hz hum", "60 Hz hum"])
def test_speech_heard_over_background(speech: np.ndarray, background: str) -> None:
    total = 1000 + len(speech) * 1000 // RATE + 1500
    if background == "white noise":
        bed = noise(total + 20, rms=100)  # -50 dBFS: 20 dB under the speech
    else:
        bed = hum(total + 20, 50.0 if background == "50 Hz hum" else 60.0, amplitude=5000)  # -16 dBFS
    clean = np.concatenate([silence(1000), speech, silence(1500)])
    events = run(clean + bed[: len(clean)])
    assert [type(e) for e in events] == [SpeechStart, SpeechEnd]
    assert events[0].at + FRAME - onset(speech, RATE) <= 160 * RATE // 1000


@pytest.mark.parametrize(
    "signal",
    [
        pytest.param(lambda: hum(3000, 50.0, 10000), id="50 Hz hum, -10 dBFS"),
        pytest.param(lambda: hum(3000, 60.0, 10000), id="60 Hz hum, -10 dBFS"),
        pytest.param(lambda: np.concatenate([silence(500), hum(3000, 60.0, 20000)]), id="hum switched on"),
        pytest.param(lambda: noise(3000, rms=100), id="low white noise"),
        pytest.param(lambda: np.concatenate([silence(500), noise(3000, rms=100, seed=3)]), id="noise starts"),
        pytest.param(lambda: noise(3000, rms=1000, seed=4), id="white noise -30 dBFS from the start"),
    ],
)
def test_not_speech(signal: object) -> None:
    assert callable(signal)
    assert run(signal()) == []


@pytest.mark.parametrize("at", [8000, 8150, 8300])  # inside a frame, across a boundary
def test_a_click_is_not_speech(at: int) -> None:
    x = silence(2000)
    x[at : at + 16] = 30000.0
    x[at + 16 : at + 32] = -30000.0
    assert run(x) == []
    with_noise = noise(2000, rms=50, seed=at)
    with_noise[at : at + 8] = 25000.0
    assert run(with_noise) == []


def test_short_pause_is_one_utterance_long_pause_is_two(speech: np.ndarray) -> None:
    word = speech[: len(speech) // 3]
    one = run(np.concatenate([silence(500), word, silence(300), word, silence(1000)]))
    assert [type(e) for e in one] == [SpeechStart, SpeechEnd]
    two = run(np.concatenate([silence(500), word, silence(1200), word, silence(1000)]))
    assert [type(e) for e in two] == [SpeechStart, SpeechEnd] * 2


def test_configurable_start_and_end(speech: np.ndarray) -> None:
    signal = np.concatenate([silence(500), speech, silence(2000)])
    quick = run(signal, Vad(VadConfig(start_frames=1, end_silence_ms=300)))
    slow = run(signal, Vad(VadConfig(start_frames=5, end_silence_ms=1200)))
    assert quick[0].at < slow[0].at
    assert quick[-1].at - quick[-1].timestamp == (300 // 20 - 1) * FRAME
    assert slow[-1].at - slow[-1].timestamp == (1200 // 20 - 1) * FRAME
    with pytest.raises(ValueError):
        VadConfig(start_frames=0)
    with pytest.raises(ValueError):
        VadConfig(end_silence_ms=10)


def test_missing_frames_count_as_silence_and_timestamps_count_on(speech: np.ndarray) -> None:
    vad = Vad()
    samples = pcm(speech)
    events: list[VadEvent] = []
    for i in range(len(samples) // FRAME):
        event = vad.process(samples[i * FRAME : (i + 1) * FRAME])
        if event is not None:
            events.append(event)
    assert vad.speaking_now or vad.speaking
    for _ in range(40):
        event = vad.process(None)
        if event is not None:
            events.append(event)
    assert [type(e) for e in events] == [SpeechStart, SpeechEnd]
    assert events[0].timestamp < len(samples) < events[1].at
    assert not vad.speaking and not vad.speaking_now
    vad.reset()
    assert vad.floor_db is None


def test_speech_barge_in_through_a_stream(speech: np.ndarray) -> None:
    """The caller talks over a prompt: the prompt stops within 100 ms of the speech reaching us."""
    caller = MediaStream("PCMU", 101, ("10.0.0.2", 5000), rng=random.Random(1))
    ivr = MediaStream("PCMU", 101, ("10.0.0.1", 4000), rng=random.Random(2))
    ivr.player.play(np.full(160 * 500, 2000, np.int16))  # the prompt
    caller.player.play(pcm(np.concatenate([silence(400), speech])))
    vad = Vad()
    heard_onset: int | None = None
    stopped_at: int | None = None
    now = 10.0
    for tick in range(150):
        now += 0.02
        out = caller.tick(now)
        if out is not None:
            ivr.receive(out, ("10.0.0.1", 4000), now)
        ivr.tick(now)
        frame = ivr.received_frame
        if heard_onset is None and frame is not None and np.abs(frame).max() > 1000:
            heard_onset = tick
        if isinstance(vad.process(frame), SpeechStart):
            ivr.player.stop_interruptible()
            stopped_at = tick
    assert heard_onset is not None and stopped_at is not None
    assert (stopped_at + 1 - heard_onset) * 20 <= 100
    assert not ivr.player.playing
