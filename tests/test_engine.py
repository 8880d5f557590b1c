"""Two engines on 127.0.0.1 calling each other over real UDP sockets: the whole call path."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest

from ivr.app.caller import Action, place_call, speech_segments
from ivr.call.call import Call, CallGone, PlayOutcome
from ivr.call.engine import DialFailed, Engine, EngineConfig
from ivr.media.prompts import tone
from ivr.speech.prompt_library import PromptLibrary

App = Callable[[Call], Awaitable[None]]


async def _pair(app: App, tmp_path: Path) -> tuple[Engine, Engine, str]:
    server = Engine(EngineConfig(port=0, rtp_low=42000, rtp_high=42998), app)
    host, port = await server.start()
    caller = Engine(EngineConfig(port=0, user="tester", rtp_low=43000, rtp_high=43998))
    await caller.start()
    return server, caller, f"sip:ivr@{host}:{port}"


async def _close(*engines: Engine) -> None:
    for engine in engines:
        await engine.stop(drain_timeout=0.5)


def test_keys_reach_the_application_and_cut_the_prompt(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    async def app(call: Call) -> None:
        seen["outcome"] = await call.play(tone(440, 3000))
        seen["digits"] = await call.collect_digits(4, first_timeout=3)
        seen["barge_ins"] = call.barge_ins
        call.hangup()

    async def scenario() -> None:
        server, caller, uri = await _pair(app, tmp_path)
        try:
            report = await place_call(caller, uri, [Action(0.5, "keys", "42#")], max_duration=10)
        finally:
            await _close(caller, server)
        assert report.answered and report.ended_by == "remote"
        # The 3 s tone stopped at the first key: the caller heard about half a second of it.
        (start, end), *_ = report.heard
        assert end - start < 1.0

    asyncio.run(scenario())
    assert seen == {"outcome": PlayOutcome.INTERRUPTED, "digits": "42", "barge_ins": 1}


def test_caller_hanging_up_mid_prompt_ends_the_application(tmp_path: Path) -> None:
    outcome: list[str] = []

    async def app(call: Call) -> None:
        try:
            await call.play(tone(440, 10_000), interruptible=False)
            outcome.append("finished")
        except CallGone as gone:
            outcome.append(f"gone: {gone}")

    async def scenario() -> None:
        server, caller, uri = await _pair(app, tmp_path)
        try:
            report = await place_call(caller, uri, [Action(0.5, "hangup")], max_duration=10)
            await asyncio.sleep(0.2)
            assert server.active_calls == 0
            assert report.ended_by == "caller"
        finally:
            await _close(caller, server)

    asyncio.run(scenario())
    assert len(outcome) == 1 and outcome[0].startswith("gone")


def test_giving_up_while_it_rings_cancels_and_frees_everything(tmp_path: Path) -> None:
    started: list[str] = []

    async def app(call: Call) -> None:
        started.append(call.call_id)

    async def scenario() -> None:
        server, caller, uri = await _pair(app, tmp_path)
        try:
            with pytest.raises(DialFailed) as failure:
                await caller.dial(uri, headers=[("X-IVR-Answer-Delay", "3000")], timeout=0.5)
            assert failure.value.status == 408
            await asyncio.sleep(0.3)
            assert server.active_calls == 0 and caller.active_calls == 0
            assert server.counters.get("CallCancelled") == 1
        finally:
            await _close(caller, server)

    asyncio.run(scenario())
    assert started == []


def test_a_crashing_application_ends_only_its_own_call(tmp_path: Path) -> None:
    async def app(call: Call) -> None:
        if call.info.headers.get("X-Crash"):
            raise RuntimeError("flow bug")
        await call.play(tone(300, 1000))

    async def scenario() -> None:
        server, caller, uri = await _pair(app, tmp_path)
        try:
            bad, good = await asyncio.gather(
                place_call(caller, uri, [], headers=[("X-Crash", "1")], max_duration=5),
                place_call(caller, uri, [], max_duration=5),
            )
        finally:
            await _close(caller, server)
        assert bad.answered and bad.ended_by == "remote" and not bad.heard
        assert good.answered and good.ended_by == "remote" and good.heard

    asyncio.run(scenario())


def test_speech_from_tts_arrives_as_audio(tmp_path: Path) -> None:
    received: list[np.ndarray] = []

    async def app(call: Call) -> None:
        call.media.start_recording()
        await asyncio.sleep(3.0)
        received.append(call.media.stop_recording())

    async def scenario() -> None:
        server, caller, uri = await _pair(app, tmp_path)
        prompts = PromptLibrary(tmp_path / "cache")
        try:
            await place_call(caller, uri, [Action(0.3, "say", "one two three")], prompts, max_duration=6)
        finally:
            await _close(caller, server)

    asyncio.run(scenario())
    segments = speech_segments(received[0])
    assert segments, "the IVR must hear the caller's speech"
    assert 0.2 <= segments[0][0] <= 0.8


def test_keys_as_tones_in_the_audio_from_a_trunk_without_telephone_events(tmp_path: Path) -> None:
    seen: dict[str, object] = {}

    async def app(call: Call) -> None:
        seen["digits"] = await call.collect_digits(3, first_timeout=5)
        seen["sources"] = {key.source for key in call.key_log}
        call.hangup()

    async def scenario() -> None:
        server, caller, uri = await _pair(app, tmp_path)
        try:
            call = await caller.dial(uri, telephone_events=False)
            await asyncio.sleep(0.5)
            call.send_dtmf("719")
            await call.wait_ended(8)
        finally:
            await _close(caller, server)

    asyncio.run(scenario())
    # No telephone-event was negotiated, so the IVR listened for the tones (Goertzel) by itself.
    assert seen == {"digits": "719", "sources": {"inband"}}


def test_a_caller_known_only_by_host_name_is_reached_for_signalling_and_audio(tmp_path: Path) -> None:
    """The caller's Contact and SDP say "localhost", and it is dialled by name: the INVITE, the
    IVR's audio (SDP c= line) and the IVR's BYE (Contact) all reach it, looked up off the loop."""

    async def app(call: Call) -> None:
        await call.play(tone(440, 600))
        call.hangup()

    async def scenario() -> None:
        server = Engine(EngineConfig(port=0, rtp_low=42000, rtp_high=42998), app)
        _, port = await server.start()
        caller = Engine(
            EngineConfig(port=0, user="tester", rtp_low=43000, rtp_high=43998, advertised_host="localhost")
        )
        await caller.start()
        try:
            report = await place_call(caller, f"sip:ivr@localhost:{port}", [], max_duration=10)
        finally:
            await _close(caller, server)
        assert report.answered and report.ended_by == "remote", report
        assert report.heard and 0.4 <= report.heard[0][1] - report.heard[0][0] <= 0.8, report.heard
        # The name went through the resolver (looked up once, then cached), nothing was dropped.
        resolver = server.endpoint.resolver
        assert resolver.address_now(("localhost", 5060)) == ("127.0.0.1", 5060) and resolver.dropped == 0

    asyncio.run(scenario())
