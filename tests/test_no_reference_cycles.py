"""A finished call leaves no reference cycles behind.

Objects in a cycle are freed only by the cyclic garbage collector, and its full collections stop
the event loop, every call's 20 ms audio included, for tens of milliseconds once a few hundred
calls' worth of cycles have piled up (BENCHMARKS.md, keypad capacity). Freed by reference counting
instead, a call's objects go the moment it ends. These tests place real calls on 127.0.0.1 through
the flow interpreter and look at what only the collector could free.
"""

from __future__ import annotations

import asyncio
import collections
import gc
from collections.abc import Iterator

import pytest

from ivr.app.caller import Action, place_call
from ivr.app.flow_application import FlowApplication
from ivr.call.engine import Engine, EngineConfig
from ivr.flow.reload import FlowRegistry
from ivr.speech.prompt_library import PromptLibrary
from tests.server import REPO

# What makes up a call; one of these in a cycle drags the call's buffers along with it.
CALL_PARTS = {
    "Call", "MediaStream", "Player", "JitterBuffer", "RtpSocket", "_Leg", "Interpreter",
    "LiveCall", "SipCallPort", "Task", "Future", "coroutine", "frame",
}  # fmt: skip


@pytest.fixture
def cyclic_garbage() -> Iterator[None]:
    """From here on the collector keeps what it finds unreachable in ``gc.garbage``."""
    gc.collect()
    gc.freeze()  # what existed before is not the test's business
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.unfreeze()


def collect() -> collections.Counter[str]:
    """Kinds of objects only the cyclic collector could free since the last call."""
    gc.collect()
    kinds = collections.Counter(type(item).__qualname__ for item in gc.garbage)
    # Free them for good: kept in gc.garbage they are still cycles, and the next collection
    # would find (and count) them again.
    gc.set_debug(0)
    gc.garbage.clear()
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    return kinds


async def keypad_calls(count: int) -> collections.Counter[str]:
    """What ``count`` keypad calls and one abandoned call leave to the collector, server and
    caller side together; start-up (flows parsed, prompts loaded) and a first call are excluded."""
    registry = FlowRegistry(REPO / "flows")
    registry.reload()
    prompts = PromptLibrary(REPO / "audio" / "cache")
    application = FlowApplication(registry, "demo", prompts, speech=False)
    await application.prepare()
    server = Engine(EngineConfig(host="127.0.0.1", port=0, rtp_low=42000, rtp_high=42998), application)
    host, port = await server.start()
    caller = Engine(EngineConfig(host="127.0.0.1", port=0, user="caller", rtp_low=43000, rtp_high=43998))
    await caller.start()
    target = f"sip:demo@{host}:{port}"
    try:
        await place_call(caller, target, [Action(1.0, "keys", "12#")])  # first-use caches fill
        collect()
        for _ in range(count):
            # Keys during the greeting (barge-in), the read-back, the IVR hangs up.
            report = await place_call(caller, target, [Action(1.0, "keys", "12#")])
            assert report.answered and report.ended_by == "remote", report
        # And one the caller leaves while the IVR is still talking.
        report = await place_call(caller, target, [Action(1.0, "hangup")])
        assert report.answered and report.ended_by == "caller", report
        await asyncio.sleep(0.5)  # the server's side of the last call ends
        return collect()
    finally:
        await caller.stop(drain_timeout=1.0)
        await server.stop(drain_timeout=1.0)
        application.decoders.shutdown()


@pytest.mark.usefixtures("cyclic_garbage")
def test_keypad_calls_through_a_flow_leave_no_cycles() -> None:
    kinds = asyncio.run(keypad_calls(3))
    assert not kinds, f"freed only by the cyclic collector: {kinds.most_common(30)}"


@pytest.mark.usefixtures("cyclic_garbage")
def test_the_check_sees_a_call_kept_in_a_cycle() -> None:
    """The fixture really catches a leak of this kind (a closure over the call, as before)."""

    async def leaky() -> None:
        class Holder:
            pass

        holder = Holder()
        holder.self_ref = holder  # type: ignore[attr-defined]
        holder.future = asyncio.get_running_loop().create_future()  # type: ignore[attr-defined]

    asyncio.run(leaky())
    assert collect()["Future"] >= 1
