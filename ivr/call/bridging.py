"""Joining two calls of this engine: the caller and an agent (B2BUA media relay).

The IVR stays in the middle of both legs (it sees the outcome, keeps the call record and can
take the caller back if the agent drops). Before the caller is put through, the agent can hear
a short whisper (what the IVR learned) while the caller hears the hold prompt.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ivr.call.call import Call
from ivr.media.bridge import Bridge

Int16Array = npt.NDArray[np.int16]


@dataclass(frozen=True)
class BridgeOutcome:
    first_to_hang_up: str  # "caller" or "agent"
    talk_seconds: float  # from the moment the two could hear each other
    whisper_heard: bool


async def connect_calls(
    caller: Call,
    agent: Call,
    *,
    whisper: Int16Array | None = None,
    hold: Int16Array | None = None,
) -> BridgeOutcome:
    """Bridge ``caller`` and ``agent`` until one hangs up; then hang up the other."""
    caller.media.player.stop()
    agent.media.player.stop()
    # Keys now belong to the conversation: they are relayed to the agent, not acted upon here.
    caller.barge_in_enabled = False
    bridge = Bridge(caller.media, agent.media, connect=whisper is None)
    caller.subscribe(bridge)
    agent.subscribe(bridge)
    connected_at = asyncio.get_running_loop().create_future()
    if whisper is not None:

        def whispered(_: object) -> None:
            if not connected_at.done():
                connected_at.set_result(time.monotonic())

        bridge.whisper(whisper, hold=hold, connect_after=True, on_done=whispered)
    else:
        connected_at.set_result(time.monotonic())
    ended = [asyncio.ensure_future(caller.ended.wait()), asyncio.ensure_future(agent.ended.wait())]
    try:
        await asyncio.wait(ended, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in ended:
            waiter.cancel()
        bridge.close()
        caller.unsubscribe(bridge)
        agent.unsubscribe(bridge)
    first = "caller" if caller.ended.is_set() else "agent"
    caller.hangup("agent hung up") if first == "agent" else agent.hangup("caller hung up")
    talk = time.monotonic() - connected_at.result() if connected_at.done() else 0.0
    return BridgeOutcome(first, talk, whisper is not None and connected_at.done())
