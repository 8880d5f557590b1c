"""``ivr demo``: the IVR on loopback, called by the project's own caller, both sides narrated.

Two calls, both real SIP/RTP over 127.0.0.1 and both driven by the YAML flows in ``flows/``:
the digit read-back flow (keys, barge-in, read-back, the IVR hangs up) and the support line's
menu (type-ahead into a menu, a self-service answer). It works offline: prompts are rendered by
espeak-ng once and cached.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ivr.app.caller import Action, CallReport, place_call
from ivr.app.flow_application import FlowApplication
from ivr.call.engine import Engine, EngineConfig
from ivr.flow.reload import FlowRegistry
from ivr.speech.prompt_library import PromptLibrary

Narrator = Callable[[str], None]


@dataclass(frozen=True)
class DemoCall:
    flow: str
    actions: tuple[Action, ...]
    what: str
    ended_by: str  # who is expected to hang up


DEMO_CALLS = (
    DemoCall("demo", (Action(2.0, "keys", "1234#"),), "press 1 2 3 4 # during the greeting", "remote"),
    DemoCall(
        "support",
        (Action(1.5, "keys", "3"), Action(16.0, "hangup")),
        "press 3 (opening hours) while the greeting plays, then hang up",
        "caller",
    ),
)


async def run_demo(cache_dir: Path, flows_dir: Path) -> int:
    """Serve the flows on loopback, make the demo calls, print both sides. Returns an exit code."""
    started = time.monotonic()

    def narrator(side: str) -> Narrator:
        return lambda what: print(f"[{time.monotonic() - started:6.2f}s] {side:>6}: {what}", flush=True)

    registry = FlowRegistry(flows_dir)
    report = registry.reload()
    missing = [call.flow for call in DEMO_CALLS if registry.get(call.flow) is None]
    if missing:
        for errors in report.rejected.values():
            for error in errors:
                print(error)
        print(f"demo FAILED: flows {missing} not found or invalid in {flows_dir}")
        return 1
    prompts = PromptLibrary(cache_dir)
    application = FlowApplication(registry, "demo", prompts, narrate=narrator("ivr"))
    await application.prepare()
    server = Engine(EngineConfig(host="127.0.0.1", port=0, rtp_low=40000, rtp_high=40998), application)
    host, port = await server.start()
    caller = Engine(EngineConfig(host="127.0.0.1", port=0, user="demo-caller", rtp_low=41000, rtp_high=41998))
    await caller.start()
    say = narrator("caller")
    ok = True
    try:
        for demo in DEMO_CALLS:
            uri = f"sip:{demo.flow}@{host}:{port}"
            say(f"dials {uri} and will {demo.what}")
            result = await place_call(caller, uri, list(demo.actions), prompts, max_duration=40)
            ok = _report(result, demo, say) and ok
    finally:
        await caller.stop(drain_timeout=1.0)
        await server.stop(drain_timeout=1.0)
    print("demo " + ("OK" if ok else "FAILED"), flush=True)
    return 0 if ok else 1


def _report(result: CallReport, demo: DemoCall, say: Narrator) -> bool:
    if not result.answered:
        say(f"call failed: {result.status} {result.reason}")
        return False
    for start, end in result.heard:
        say(f"heard the IVR speak from {start:.2f}s to {end:.2f}s after the answer")
    say(
        f"call set up in {1000 * (result.setup_seconds or 0):.1f} ms, "
        f"lasted {result.duration:.1f}s, ended by {result.ended_by}"
    )
    return result.ended_by == demo.ended_by and bool(result.heard)


def main_demo(cache_dir: Path, flows_dir: Path) -> int:
    return asyncio.run(run_demo(cache_dir, flows_dir))
