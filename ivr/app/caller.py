"""``ivr call``: the project's own caller, a SIP UAC on the same engine as the server.

It dials, sends keys (RFC 4733) and speech (a WAV file or text rendered by TTS) at given moments
after the answer, records what it hears, and reports what happened: when the call was answered,
when the far end spoke (from the energy of the received audio), and who hung up.
"""

from __future__ import annotations

import asyncio
import re
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ivr.call.call import Call, CallGone
from ivr.call.engine import DialFailed, Engine
from ivr.speech.prompt_library import PromptLibrary

Int16Array = npt.NDArray[np.int16]
FRAME = 160
RATE = 8000


@dataclass(frozen=True)
class Action:
    at: float  # seconds after the answer
    kind: str  # "keys", "say" (text through TTS), "play" (a WAV file), "hangup"
    value: str = ""


_ACTION = re.compile(r"^(?P<at>\d+(?:\.\d+)?)\s*:\s*(?P<value>.*)$", re.S)


def parse_timed(kind: str, text: str) -> Action:
    """``"2.5:123#"`` -> Action(2.5, kind, "123#")."""
    match = _ACTION.match(text.strip())
    if match is None:
        raise ValueError(f"expected SECONDS:VALUE for {kind}, got {text!r}")
    value = match["value"]
    if kind == "keys" and not re.fullmatch(r"[0-9*#A-Da-d]+", value):
        raise ValueError(f"keys must be 0-9, *, #, A-D: {value!r}")
    return Action(float(match["at"]), kind, value.upper() if kind == "keys" else value)


@dataclass
class CallReport:
    target: str
    answered: bool = False
    status: int | None = None
    reason: str = ""
    setup_seconds: float | None = None
    duration: float = 0.0
    ended_by: str = ""
    timeline: list[tuple[float, str]] = field(default_factory=list)
    heard: list[tuple[float, float]] = field(default_factory=list)
    recording: Int16Array | None = None

    def lines(self) -> list[str]:
        out = [f"{t:7.2f}s  {what}" for t, what in self.timeline]
        for start, end in self.heard:
            out.append(f"heard audio {start:6.2f}s - {end:6.2f}s")
        return out


def speech_segments(
    samples: Int16Array, threshold: float = 300.0, min_gap: float = 0.3
) -> list[tuple[float, float]]:
    """Stretches of sound (frame RMS above ``threshold``), gaps under ``min_gap`` s bridged."""
    frames = len(samples) // FRAME
    if frames == 0:
        return []
    blocks = samples[: frames * FRAME].astype(np.float64).reshape(frames, FRAME)
    loud = np.sqrt(np.mean(blocks * blocks, axis=1)) > threshold
    segments: list[tuple[float, float]] = []
    start: int | None = None
    quiet = 0
    gap_frames = int(min_gap * RATE / FRAME)
    for index, is_loud in enumerate(loud):
        if is_loud:
            if start is None:
                start = index
            quiet = 0
        elif start is not None:
            quiet += 1
            if quiet > gap_frames:
                segments.append((start * FRAME / RATE, (index - quiet + 1) * FRAME / RATE))
                start, quiet = None, 0
    if start is not None:
        segments.append((start * FRAME / RATE, (frames - quiet) * FRAME / RATE))
    return segments


def write_wav(path: Path, samples: Int16Array) -> None:
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(RATE)
        handle.writeframes(samples.astype("<i2").tobytes())


async def place_call(
    engine: Engine,
    target: str,
    actions: list[Action],
    prompts: PromptLibrary | None = None,
    *,
    language: str = "en",
    max_duration: float = 60.0,
    headers: list[tuple[str, str]] | None = None,
) -> CallReport:
    report = CallReport(target)
    started = time.monotonic()

    def note(what: str) -> None:
        report.timeline.append((time.monotonic() - started, what))

    note(f"dialing {target}")
    try:
        call = await engine.dial(target, headers=headers, record=True)
    except DialFailed as exc:
        report.status, report.reason = exc.status, exc.reason
        note(f"call failed: {exc.status} {exc.reason}")
        return report
    report.answered = True
    report.setup_seconds = time.monotonic() - started
    note("answered")
    answered_at = time.monotonic()
    try:
        await asyncio.wait_for(_perform(call, actions, prompts, language, answered_at, note), max_duration)
        if call.active:
            # Script done: stay on the line until the far end hangs up (or max_duration).
            remaining = max_duration - (time.monotonic() - answered_at)
            await call.wait_ended(max(remaining, 0.0))
    except (CallGone, TimeoutError):
        pass
    if call.active:
        call.hangup("caller hung up")
        report.ended_by = "caller"
        note("caller hung up")
    else:
        report.ended_by = "caller" if call.ended_by == "local" else "remote"
        if report.ended_by == "remote":
            note(f"remote ended the call ({call.end_reason})")
    report.duration = time.monotonic() - answered_at
    report.recording = call.media.stop_recording() if call.media.recording else None
    if report.recording is not None:
        report.heard = speech_segments(report.recording)
    return report


async def _perform(
    call: Call,
    actions: list[Action],
    prompts: PromptLibrary | None,
    language: str,
    answered_at: float,
    note: object,
) -> None:
    assert callable(note)
    for action in sorted(actions, key=lambda a: a.at):
        delay = answered_at + action.at - time.monotonic()
        if delay > 0:
            if await call.wait_ended(delay):
                return
        if not call.active:
            return
        if action.kind == "keys":
            note(f"pressing {' '.join(action.value)}")
            call.send_dtmf(action.value)
        elif action.kind == "hangup":
            call.hangup("caller hung up")
            note("caller hung up")
            return
        else:
            if prompts is None:
                raise ValueError("speech needs a prompt library")
            if action.kind == "say":
                samples = await prompts.text(action.value, language)
                note(f"saying {action.value!r}")
            else:
                samples = await prompts.file(Path(action.value))
                note(f"playing {action.value}")
            # Fire and forget: the caller keeps to its timeline while it talks.
            call.media.player.play(samples, interruptible=False)
