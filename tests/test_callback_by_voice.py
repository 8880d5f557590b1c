"""The callback dialogue answered by voice, on a real call, booked in a real store.

The caller's words come from a scripted port (the recogniser's side is proven over SIP in
test_speech_calls; no English model is available here): what is tested is that spoken answers
confirm the number and pick any named window, and that the booking holds what was chosen.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.app.handoff_adapters import flow_handlers
from ivr.call.call import Call
from ivr.call.engine import Engine, EngineConfig
from ivr.flow.conversation_tests import ScriptedPort
from ivr.flow.hours import hours_from_windows, offer_slots
from ivr.flow.port import CallbackOutcome, CallbackRequest
from ivr.handoff.agents import AgentPool
from ivr.handoff.asking import speakable_windows
from ivr.handoff.service import Handoff, HandoffConfig
from ivr.speech.prompt_library import PromptLibrary
from ivr.store.base import ACTIVE_STATES, CallbackRecord
from ivr.store.sqlite import SqliteStore

ZONE = "Europe/Berlin"
WINDOWS = ("mon-sun 00:00-24:00",)
NUMBER = "+4930123456"


def book_by_voice(tmp_path: Path, words: list[str]) -> tuple[CallbackOutcome, ScriptedPort, CallbackRecord]:
    store = SqliteStore(tmp_path / "ivr.db")
    handoff = Handoff(AgentPool(), store, PromptLibrary(tmp_path / "audio"), HandoffConfig(timezone=ZONE))
    caller_words = ScriptedPort(list(words))
    request = CallbackRequest(
        number=NUMBER, language="en", attempts=3, spacing=None,
        allowed_numbers=(r"^\+49[1-9][0-9]{6,13}$",), windows=WINDOWS,
    )  # fmt: skip
    outcomes: list[CallbackOutcome] = []

    _, offer_callback = flow_handlers(handoff)

    async def ivr(call: Call) -> None:
        outcomes.append(await offer_callback(call, request, caller_words))
        call.hangup()

    async def scenario() -> None:
        ivr_engine = Engine(EngineConfig(port=0, rtp_low=47000, rtp_high=47998), ivr)
        port = (await ivr_engine.start())[1]
        phone = Engine(EngineConfig(port=0, user="customer", rtp_low=48000, rtp_high=48998))
        await phone.start()
        try:
            call = await phone.dial(f"sip:ivr@127.0.0.1:{port}")
            await call.wait_ended(20)
        finally:
            for engine in (phone, ivr_engine):
                await engine.stop(drain_timeout=0.5)

    asyncio.run(scenario())
    (record,) = store.list_callbacks(ACTIVE_STATES)
    store.close()
    return outcomes[0], caller_words, record


def test_yes_and_as_soon_as_possible(tmp_path: Path) -> None:
    outcome, port, record = book_by_voice(tmp_path, ["yes", "as soon as possible"])
    assert outcome.booked and outcome.number == NUMBER
    assert "Say yes or press 1" in port.heard[0] and "say 'as soon as possible' or press 1" in port.heard[1]
    assert record.number == NUMBER and record.window_start <= time.time()
    assert record.promise_text == outcome.promise


def test_a_window_named_by_voice_that_was_not_offered_by_key(tmp_path: Path) -> None:
    now = dt.datetime.now(ZoneInfo(ZONE))
    hours = hours_from_windows(list(WINDOWS), ZONE)
    offered = {s.start for s in offer_slots(hours, now, count=2, timezone=ZONE)}
    named = speakable_windows(hours, now, "en", ZONE)
    name, window = next((n, s) for n, s in reversed(named.items()) if s.start not in offered)
    outcome, port, record = book_by_voice(tmp_path, ["correct", name])
    assert outcome.booked
    assert name in port.listens[1].grammar
    assert record.window_start == pytest.approx(window.start.timestamp())
    assert record.promised_by == pytest.approx(window.end.timestamp())
