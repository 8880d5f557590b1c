"""The built-in demo: an IVR that greets, reads digits and reads them back, and ``ivr demo``,
which starts that IVR on loopback and calls it with the project's own caller.

It works offline: prompts are rendered by espeak-ng on first use and cached.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from ivr.call.call import Call, PlayOutcome
from ivr.call.engine import Engine, EngineConfig
from ivr.caller import Action, place_call
from ivr.speech.prompts import PromptLibrary

Narrator = Callable[[str], None]

GREETING = "Welcome to the demo line. Please enter up to four digits, then press the hash key."
NO_INPUT = "We did not receive any digits."
GOODBYE = "Thank you for calling. Goodbye."
DIGIT_WORDS = {"*": "star", "#": "hash"}


def _quiet(_: str) -> None:
    pass


async def prepare(prompts: PromptLibrary) -> None:
    """Render the fixed prompts before the first call, so callers never wait for TTS."""
    for text in (GREETING, NO_INPUT, GOODBYE, "You entered"):
        await prompts.text(text)


def digit_application(
    prompts: PromptLibrary, narrate: Narrator = _quiet
) -> Callable[[Call], Awaitable[None]]:
    """The demo's call script, as an application coroutine for ``Engine``."""

    async def say(call: Call, text: str, interruptible: bool = True) -> PlayOutcome:
        narrate(f'says "{text}"')
        call.log.info("say", text=text)
        outcome = await call.play(await prompts.text(text), interruptible=interruptible)
        if outcome is PlayOutcome.INTERRUPTED:
            narrate("prompt cut short by a key press (barge-in)")
        return outcome

    async def application(call: Call) -> None:
        narrate(f"answers a call from {call.info.caller or 'unknown'}")
        await say(call, GREETING)
        digits = await call.collect_digits(4, first_timeout=6.0, inter_digit_timeout=3.0, terminator="#")
        narrate(f"collected digits {digits!r}")
        if digits:
            spoken = " ".join(DIGIT_WORDS.get(d, d) for d in digits)
            await say(call, f"You entered {spoken}.", interruptible=False)
        else:
            await say(call, NO_INPUT, interruptible=False)
        await say(call, GOODBYE, interruptible=False)
        narrate("hangs up")
        call.hangup("ivr hung up")

    return application


async def run_demo(cache_dir: Path, keys: str = "1234#", keys_at: float = 2.0) -> int:
    """Serve the demo IVR on loopback, call it, print both sides. Returns a process exit code."""
    started = time.monotonic()

    def narrator(side: str) -> Narrator:
        return lambda what: print(f"[{time.monotonic() - started:6.2f}s] {side:>6}: {what}", flush=True)

    prompts = PromptLibrary(cache_dir)
    await prepare(prompts)
    server = Engine(
        EngineConfig(host="127.0.0.1", port=0, rtp_low=40000, rtp_high=40998),
        digit_application(prompts, narrator("ivr")),
    )
    host, port = await server.start()
    caller = Engine(EngineConfig(host="127.0.0.1", port=0, user="demo-caller", rtp_low=41000, rtp_high=41998))
    await caller.start()
    say = narrator("caller")
    say(f"dials sip:ivr@{host}:{port} and will press {' '.join(keys)} {keys_at:.1f}s after the answer")
    try:
        report = await place_call(
            caller, f"sip:ivr@{host}:{port}", [Action(keys_at, "keys", keys)], prompts, max_duration=60
        )
    finally:
        await caller.stop(drain_timeout=1.0)
        await server.stop(drain_timeout=1.0)
    for start, end in report.heard:
        say(f"heard the IVR speak from {start:.2f}s to {end:.2f}s after the answer")
    if not report.answered:
        say(f"call failed: {report.status} {report.reason}")
        return 1
    say(
        f"call set up in {1000 * (report.setup_seconds or 0):.1f} ms, "
        f"lasted {report.duration:.1f}s, ended by {report.ended_by}"
    )
    ok = report.ended_by == "remote" and bool(report.heard)
    print("demo " + ("OK" if ok else "FAILED"), flush=True)
    return 0 if ok else 1


def main_demo(cache_dir: Path) -> int:
    return asyncio.run(run_demo(cache_dir))
