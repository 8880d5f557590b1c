"""Caller and agent joined by the IVR over real sockets: whisper first, then both ways."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np

from ivr.app.caller import speech_segments
from ivr.call.bridging import BridgeOutcome, connect_calls
from ivr.call.call import Call
from ivr.call.engine import Engine, EngineConfig
from ivr.media.prompts import tone


def test_agent_hears_the_whisper_then_both_hear_each_other(tmp_path: Path) -> None:
    outcome: list[BridgeOutcome] = []
    heard: dict[str, np.ndarray] = {}

    async def agent_phone(call: Call) -> None:  # answers, records, speaks a 1 kHz tone, hangs up
        call.media.start_recording()
        await asyncio.sleep(1.6)
        await call.play(tone(1000, 600), interruptible=False)
        await asyncio.sleep(0.4)
        heard["agent"] = call.media.stop_recording()
        call.hangup()

    async def ivr(call: Call) -> None:
        agent_call = await ivr_engine.dial(f"sip:agent@127.0.0.1:{agent_port}")
        outcome.append(await connect_calls(call, agent_call, whisper=tone(600, 800), hold=tone(300, 200)))

    async def scenario() -> None:
        nonlocal ivr_engine, agent_port
        agents = Engine(EngineConfig(port=0, user="agent", rtp_low=44000, rtp_high=44998), agent_phone)
        agent_port = (await agents.start())[1]
        ivr_engine = Engine(EngineConfig(port=0, rtp_low=45000, rtp_high=45998), ivr)
        ivr_port = (await ivr_engine.start())[1]
        customer = Engine(EngineConfig(port=0, user="customer", rtp_low=46000, rtp_high=46998))
        await customer.start()
        try:
            call = await customer.dial(f"sip:ivr@127.0.0.1:{ivr_port}", record=True)
            await asyncio.sleep(1.2)
            await call.play(tone(440, 300), interruptible=False)  # the customer speaks
            await call.wait_ended(5)
            heard["customer"] = call.media.stop_recording()
        finally:
            for engine in (customer, ivr_engine, agents):
                await engine.stop(drain_timeout=0.5)

    ivr_engine: Engine
    agent_port: int
    asyncio.run(scenario())
    assert outcome and outcome[0].first_to_hang_up == "agent" and outcome[0].whisper_heard
    agent_heard = speech_segments(heard["agent"])
    customer_heard = speech_segments(heard["customer"])
    # The agent heard the whisper (0.8 s) first and then the customer's 0.3 s tone.
    assert len(agent_heard) == 2
    assert 0.7 <= agent_heard[0][1] - agent_heard[0][0] <= 0.9
    assert 0.2 <= agent_heard[1][1] - agent_heard[1][0] <= 0.4
    # The customer heard the hold prompt while the agent got the whisper, then the agent's tone.
    assert len(customer_heard) == 2
    assert customer_heard[0][1] <= agent_heard[0][1] + 0.1
    assert 0.5 <= customer_heard[1][1] - customer_heard[1][0] <= 0.7
