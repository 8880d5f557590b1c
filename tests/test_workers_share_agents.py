"""Two worker processes, one agent: the agent's phone never rings for both at once.

Each caller's Call-ID decides its worker; the test places calls until each worker holds one,
then both callers ask for a person at the same moment. Without the agent board both workers
would see the agent free and ring them twice.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ivr.call.call import Call
from ivr.call.engine import Engine, EngineConfig
from ivr.net.workers import owner_of
from tests.test_handoff_calls import Agent, run, said, serve, when_said
from tests.test_http_api import TOKEN, free_tcp_port, http


class CountingAgent(Agent):
    """Answers every call (a softphone with call waiting) and counts calls up at once."""

    def __init__(self, name: str, talk: float) -> None:
        super().__init__(name, talk)
        self.up = 0
        self.most = 0

    async def answer(self, call: Call) -> None:
        self.up += 1
        self.most = max(self.most, self.up)
        try:
            await super().answer(call)
        finally:
            self.up -= 1


async def one_call_per_worker(engines: list[Engine], target: str) -> dict[int, Call]:
    held: dict[int, Call] = {}
    for attempt in range(40):
        engine = engines[attempt % len(engines)]
        call = await engine.dial(target)
        worker = owner_of(f"Call-ID: {call.call_id}\r\n".encode(), 2)
        assert worker is not None
        if worker in held:
            call.hangup("that worker has a caller already")
            continue
        held[worker] = call
        if len(held) == 2:
            return held
    raise AssertionError("no Call-ID landed on the second worker in 40 calls")


def test_two_workers_never_ring_one_agent_twice(tmp_path: Path) -> None:
    agent = CountingAgent("hana", talk=6.0)

    async def scenario() -> None:
        port = await agent.start(63000)
        extra = ("--workers", "2", "--wrap-up", "1")
        with serve(tmp_path, [("hana", f"sip:hana@127.0.0.1:{port}")], *extra) as server:  # type: ignore[attr-defined]
            target = f"sip:support@127.0.0.1:{server.address[1]}"
            engines = [
                Engine(
                    EngineConfig(
                        port=0, user=f"+49301111{i}", rtp_low=64000 + 500 * i, rtp_high=64498 + 500 * i
                    )
                )
                for i in range(2)
            ]
            for engine in engines:
                await engine.start()
            calls = await one_call_per_worker(engines, target)
            await when_said(server, "To talk to a person")
            for call in calls.values():
                call.send_dtmf("0")  # both at once: each worker wants the one agent
            await when_said(server, "All our agents are busy")
            for call in calls.values():
                call.send_dtmf("1")  # the one told to wait, waits
            ended = await asyncio.gather(*(call.wait_ended(60) for call in calls.values()))
            for engine in engines:
                await engine.stop(0.5)
            finished = [line for line in server.log_lines() if line.get("event") == "flow finished"]
            taken = [
                line for line in server.log_lines() if line.get("event") == "agent taken by another worker"
            ]
        assert agent.engine is not None
        await agent.engine.stop(0.5)
        assert all(ended)
        assert agent.most == 1, "the agent's phone rang for two callers at once"
        assert len(agent.calls) == 2, "both callers reached the agent, one after the other"
        by_worker = {
            line["worker"]: line["outcome"] for line in finished if line.get("outcome") == "transferred"
        }
        assert by_worker == {0: "transferred", 1: "transferred"}
        # The waiting worker knew the agent was busy from the board (or lost the claim to it).
        assert len(taken) <= 1

    run(scenario)


def test_the_api_shows_the_calls_of_every_worker(tmp_path: Path) -> None:
    """Worker 0 serves the API; a call carried by worker 1 is listed there too, and its context
    (for the agent's screen-pop) is found, and it leaves the list when it ends."""
    http_port = free_tcp_port()

    async def api(path: str) -> tuple[int, Any]:
        return await asyncio.to_thread(http, http_port, "GET", path)

    async def until(condition: Callable[[Any], bool], path: str) -> Any:
        for _ in range(100):
            status, body = await api(path)
            if status == 200 and condition(body):
                return body
            await asyncio.sleep(0.1)
        raise AssertionError(f"{path} never matched: {body}")

    async def scenario() -> None:
        extra = ("--workers", "2", "--http-port", str(http_port), "--api-token", TOKEN)
        with serve(tmp_path, [("nobody", "sip:nobody@127.0.0.1:9")], *extra) as server:  # type: ignore[attr-defined]
            target = f"sip:support@127.0.0.1:{server.address[1]}"
            engine = Engine(EngineConfig(port=0, user="+493011110", rtp_low=64000, rtp_high=64998))
            await engine.start()
            try:
                calls = await one_call_per_worker([engine], target)
                ids = {call.call_id for call in calls.values()}
                listed = await until(lambda body: {c["call_id"] for c in body} == ids, "/api/calls")
                assert {c["flow"] for c in listed} == {"support"}
                status, context = await api(f"/api/calls/{calls[1].call_id}/context")
                assert status == 200 and context["caller"] == "+493011110" and context["flow"] == "support"
                status, state = await api(f"/api/calls/{calls[1].call_id}")
                assert status == 200 and state["step"]
                for call in calls.values():
                    call.hangup("done")
                await until(lambda body: body == [], "/api/calls")
                assert (await api(f"/api/calls/{calls[1].call_id}/context"))[0] == 404
            finally:
                await engine.stop(0.5)

    run(scenario)


def test_callers_on_hold_at_two_workers_are_served_in_the_order_they_came(tmp_path: Path) -> None:
    """One line across workers: the caller who came second, at the other worker, is told there is
    one caller ahead, and the agent, once free, takes the first caller even though either worker
    could have claimed them."""
    # Busy with the first caller while the others ask: their "0" is followed by two prompts
    # (about 5 s) before the transfer step, and the second caller asks 2.5 s after the first.
    agent = Agent("kim", talk=[20.0, 3.0, 3.0])

    async def scenario() -> None:
        port = await agent.start(63000)
        extra = ("--workers", "2", "--wrap-up", "1")
        with serve(tmp_path, [("kim", f"sip:kim@127.0.0.1:{port}")], *extra) as server:  # type: ignore[attr-defined]
            target = f"sip:support@127.0.0.1:{server.address[1]}"
            numbers = ["+4930999990", "+4930111110", "+4930111111"]
            engines = [
                Engine(EngineConfig(port=0, user=n, rtp_low=64000 + 600 * i, rtp_high=64598 + 600 * i))
                for i, n in enumerate(numbers)
            ]
            for engine in engines:
                await engine.start()
            try:
                # The first caller takes the only agent.
                first = await engines[0].dial(target)
                seen = await when_said(server, "To talk to a person")
                first.send_dtmf("0")
                while not agent.calls:
                    await asyncio.sleep(0.05)
                seen = len(said(server))
                held = await one_call_per_worker(engines[1:], target)
                early, late = held[0], held[1]  # the first to wait is on worker 0, the second on 1
                early.send_dtmf("0")  # the person key works at any time, greeting included
                seen = await when_said(server, "All our agents are busy", seen)
                assert "You are next in line" in said(server)[seen - 1]
                early.send_dtmf("1")
                await asyncio.sleep(2.5)  # published by worker 0, adopted by worker 1
                late.send_dtmf("0")
                seen = await when_said(server, "All our agents are busy", seen)
                assert "There is one caller ahead of you" in said(server)[seen - 1]
                late.send_dtmf("1")
                ended = await asyncio.gather(*(c.wait_ended(60) for c in (first, early, late)))
            finally:
                for engine in engines:
                    await engine.stop(0.5)
        assert agent.engine is not None
        await agent.engine.stop(0.5)
        assert all(ended)
        callers = [json.loads(str(record["headers"]["X-IVR-Context"]))["caller"] for record in agent.calls]  # type: ignore[index]
        assert callers == [numbers[0], early.info.caller, late.info.caller]

    run(scenario)
