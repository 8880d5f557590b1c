"""The fast path to a human and kept callback promises, end to end on 127.0.0.1.

The IVR is a real ``ivr serve`` process; callers, agents and customers are SIP user agents in
this test process (the project's engine) or SIPp, reacting to what the IVR says (its log).
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ivr.app.caller import speech_segments
from ivr.call.call import Call
from ivr.call.engine import Engine, EngineConfig
from ivr.media.prompts import tone
from ivr.speech.prompt_library import PromptLibrary
from ivr.store.base import Booking
from ivr.store.sqlite import SqliteStore
from tests.server import REPO, RunningServer, answers_options, free_udp_port, ivr_server
from tests.sipp_runner import SIPP_DIR, run_sipp, start_sipp

FLOWS = REPO / "tests" / "flows" / "handoff"
NUMBER = "+4930123456"


class Agent:
    """A softphone that answers, records what it hears, says something and hangs up.

    ``talk`` is how long each call lasts (the last value repeats), unless the IVR ends it first.
    With ``listen_first`` the agent speaks (a 1 kHz tone) only once the whisper is over, as a
    person would, and the call lasts ``talk`` seconds from then on.
    """

    def __init__(self, name: str, talk: float | list[float] = 3.0, *, listen_first: bool = False) -> None:
        self.name = name
        self.listen_first = listen_first
        self.talks = talk if isinstance(talk, list) else [talk]
        self.calls: list[dict[str, object]] = []
        self.engine: Engine | None = None

    async def start(self, rtp_low: int) -> int:
        self.engine = Engine(
            EngineConfig(port=0, user=self.name, rtp_low=rtp_low, rtp_high=rtp_low + 998), self.answer
        )
        return (await self.engine.start())[1]

    async def answer(self, call: Call) -> None:
        call.media.start_recording()
        record: dict[str, object] = {"headers": dict(call.info.headers)}
        self.calls.append(record)
        talk = self.talks[min(len(self.calls), len(self.talks)) - 1]
        try:
            if self.listen_first:
                await whisper_heard(call)
            await asyncio.sleep(min(talk / 2, 2.0))
            await call.play(tone(1000, 400), interruptible=False)
            await call.wait_ended(talk - min(talk / 2, 2.0))
        finally:
            record["heard"] = call.media.stop_recording()
            call.hangup("agent done")


async def whisper_heard(call: Call, quiet: float = 0.8, timeout: float = 20.0) -> None:
    """Wait until something was said to this leg and ``quiet`` seconds of silence followed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and call.active:
        heard = call.media.recorded_so_far()
        segments = speech_segments(heard)
        if segments and len(heard) / 8000 - segments[-1][1] >= quiet:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the agent never heard a whisper end")


def dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.argmax(spectrum)) * 8000 / len(samples)


class Customer(Agent):
    """Answers like a person: a short "Hello?", then listens until the call ends."""

    def __init__(self) -> None:
        super().__init__("customer")
        self.library = PromptLibrary(REPO / "audio" / "cache")

    async def answer(self, call: Call) -> None:
        call.media.start_recording()
        record: dict[str, object] = {"headers": dict(call.info.headers)}
        self.calls.append(record)
        try:
            await asyncio.sleep(0.3)
            await call.play(await self.library.text("Hello?"), interruptible=False)
            await call.wait_ended(8.0)
        finally:
            record["heard"] = call.media.stop_recording()
            call.hangup("customer done")


def said(server: RunningServer) -> list[str]:
    return [str(line["text"]) for line in server.log_lines() if line.get("event") == "say"]


async def when_said(server: RunningServer, fragment: str, seen: int = 0, timeout: float = 30.0) -> int:
    """Wait until the IVR has said ``fragment`` (after the first ``seen`` prompts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        texts = said(server)
        for index in range(seen, len(texts)):
            if fragment in texts[index]:
                return index + 1
        await asyncio.sleep(0.05)
    raise AssertionError(f"the IVR never said {fragment!r}; it said {said(server)[-5:]}")


async def busy_line(server: RunningServer) -> tuple[Engine, Engine, Call, int]:
    """A first caller takes the only agent; a second caller asks for a person and hears that all
    agents are busy. Returns both callers' engines, the second call and the prompts seen so far."""
    target = f"sip:support@127.0.0.1:{server.address[1]}"
    first = Engine(EngineConfig(port=0, user="+4930111111", rtp_low=61000, rtp_high=61498))
    second = Engine(EngineConfig(port=0, user=NUMBER, rtp_low=61500, rtp_high=61998))
    await first.start()
    await second.start()
    one = await first.dial(target)
    seen = await when_said(server, "To talk to a person")
    one.send_dtmf("0")  # takes the only agent
    await when_said(server, "Please hold", seen)
    two = await second.dial(target)
    seen = await when_said(server, "To talk to a person", seen)
    two.send_dtmf("0")
    seen = await when_said(server, "All our agents are busy", seen)
    return first, second, two, seen


def serve(tmp: Path, agents: list[tuple[str, str]], *extra: str) -> RunningServer:
    spec = tmp / "agents.yaml"
    spec.write_text(
        "agents:\n"
        + "".join(
            f"  - {{id: {i}, name: {i}, uri: '{uri}', languages: [en], skills: [support]}}\n"
            for i, uri in agents
        )
    )
    args = [
        "--flows",
        str(FLOWS),
        "--flow",
        "support",
        "--keypad-only",
        "--agents",
        str(spec),
        "--db",
        str(tmp / "ivr.db"),
        "--ring-timeout",
        "2",
        "--wrap-up",
        "1",
        # Far longer than any test: retries follow the flow's own spacing (2 s) or not at all.
        "--retry-spacing",
        "600",
        *extra,
    ]
    return ivr_server(tmp, *args, rtp_base=54000)  # type: ignore[return-value]


def run(coro_factory: Callable[[], object]) -> None:
    asyncio.run(coro_factory())  # type: ignore[arg-type]


def callbacks(db: Path) -> list[dict[str, object]]:
    out = subprocess.run(
        [sys.executable, "-m", "ivr", "callbacks", "--db", str(db), "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def test_free_agent_hears_the_whisper_first_with_the_context_in_the_headers(tmp_path: Path) -> None:
    agent = Agent("alice", talk=3.0, listen_first=True)

    async def scenario() -> None:
        port = await agent.start(56000)
        with serve(tmp_path, [("alice", f"sip:alice@127.0.0.1:{port}")]) as server:  # type: ignore[attr-defined]
            caller = Engine(EngineConfig(port=0, user=NUMBER, rtp_low=57000, rtp_high=57998))
            await caller.start()
            call = await caller.dial(f"sip:support@127.0.0.1:{server.address[1]}", record=True)
            await when_said(server, "To talk to a person")
            call.send_dtmf("0")
            await call.wait_ended(30)
            heard = call.media.stop_recording()
            await caller.stop(0.5)
            finished = [line for line in server.log_lines() if line.get("event") == "flow finished"]
            assert finished[-1]["outcome"] == "transferred", finished
            # The caller heard the agent's 0.4 s tone once they were connected (the hold music
            # they heard during the whisper is quieter, 0.6 s long and at 440/554 Hz).
            tones = [
                (start, end)
                for start, end in speech_segments(heard)
                if 0.3 <= end - start <= 0.6
                and abs(dominant_hz(heard[int(start * 8000) : int(end * 8000)]) - 1000) < 20
            ]
            assert tones, speech_segments(heard)
        assert agent.engine is not None
        await agent.engine.stop(0.5)

    run(scenario)
    cdr = subprocess.run(
        [sys.executable, "-m", "ivr", "cdr", "--db", str(tmp_path / "ivr.db"), "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    (row,) = json.loads(cdr.stdout)
    assert row["outcome"] == "transferred" and row["handoff"] == "bridge:alice" and row["caller"] == NUMBER
    assert "to_agent" in row["path"] and row["flow"] == "support" and row["flow_version"]
    (record,) = agent.calls
    headers = record["headers"]
    assert isinstance(headers, dict)
    context = json.loads(headers["X-IVR-Context"])
    assert context["caller"] == NUMBER and context["call_id"]
    heard = record["heard"]
    assert isinstance(heard, np.ndarray)
    segments = speech_segments(heard)
    assert segments and segments[0][0] < 0.5, "the whisper starts as soon as the agent answers"
    assert segments[0][1] - segments[0][0] > 3.0, "the whisper names the caller and what they said"


def test_agent_who_does_not_answer_is_skipped(tmp_path: Path) -> None:
    agent = Agent("bob", talk=2.0)
    silent_port = free_udp_port()

    async def scenario() -> None:
        port = await agent.start(58000)
        ringing = start_sipp(
            SIPP_DIR / "uas_ring_no_answer.xml", None, local_port=silent_port, calls=1, timeout=40
        )
        agents = [("a-silent", f"sip:silent@127.0.0.1:{silent_port}"), ("b-bob", f"sip:bob@127.0.0.1:{port}")]
        with serve(tmp_path, agents) as server:  # type: ignore[attr-defined]
            caller = Engine(EngineConfig(port=0, user=NUMBER, rtp_low=59000, rtp_high=59998))
            await caller.start()
            call = await caller.dial(f"sip:support@127.0.0.1:{server.address[1]}")
            await when_said(server, "To talk to a person")
            call.send_dtmf("0")
            await call.wait_ended(30)
            await caller.stop(0.5)
            missed = [line for line in server.log_lines() if line.get("event") == "agent did not answer"]
            finished = [line for line in server.log_lines() if line.get("event") == "flow finished"]
        ringing.stop()
        assert agent.engine is not None
        await agent.engine.stop(0.5)
        assert [line["agent"] for line in missed] == ["a-silent"]
        assert finished[-1]["outcome"] == "transferred"

    run(scenario)
    assert len(agent.calls) == 1


def test_busy_agents_mean_a_callback_that_is_kept_agent_first_with_a_retry(tmp_path: Path) -> None:
    agent = Agent("carol", talk=[6.0, 60.0])
    customer_port = free_udp_port()

    async def scenario() -> None:
        port = await agent.start(60000)
        extra = ("--customer-uri", f"sip:{{number}}@127.0.0.1:{customer_port}")
        with serve(tmp_path, [("carol", f"sip:carol@127.0.0.1:{port}")], *extra) as server:  # type: ignore[attr-defined]
            first, second, two, seen = await busy_line(server)
            two.send_dtmf("2")  # call me back
            seen = await when_said(server, "We will call you back at", seen)
            two.send_dtmf("1")  # that number is right
            seen = await when_said(server, "first free slot", seen)
            two.send_dtmf("1")  # as soon as possible
            await when_said(server, "Your callback is booked", seen)
            await two.wait_ended(15)
            (booked,) = callbacks(tmp_path / "ivr.db")
            # Durable before the caller heard "booked"; the agent may already be ringing for it.
            assert booked["number"] == NUMBER and booked["state"] in ("pending", "dialing_agent")
            # Attempt 1: the customer's line is busy (SIPp answers 486).
            busy = start_sipp(SIPP_DIR / "uas_busy.xml", None, local_port=customer_port, calls=1, timeout=40)
            assert busy.wait(timeout=40).ok
            # Attempt 2, two seconds later: the customer answers, says hello, and is put through.
            customer = Customer()
            customer.engine = Engine(
                EngineConfig(port=customer_port, user="customer", rtp_low=62000, rtp_high=62998),
                customer.answer,
            )
            await customer.engine.start()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not (customer.calls and "heard" in customer.calls[0]):
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)
            await customer.engine.stop(0.5)
            await first.stop(0.5)
            await second.stop(0.5)
            attempts = [line for line in server.log_lines() if line.get("event") == "callback attempt"]
            assert [line["result"] for line in attempts] == ["busy", "answered"]
        (done,) = callbacks(tmp_path / "ivr.db")
        assert done["state"] == "connected" and done["attempts"] == "2/3"
        assert agent.engine is not None
        await agent.engine.stop(0.5)

    run(scenario)
    # The agent took the first caller, then the callback twice: whisper first each time.
    assert len(agent.calls) == 3
    assert all(call["headers"].get("X-IVR-Context") for call in agent.calls)  # type: ignore[union-attr]


def test_blind_transfer_with_refer_for_pbx_deployments(tmp_path: Path) -> None:
    with serve(tmp_path, [("dave", "sip:dave@127.0.0.1:5099")]) as server:  # type: ignore[attr-defined]
        result = run_sipp(
            SIPP_DIR / "uas_accepts_refer.xml", f"127.0.0.1:{server.address[1]}", service="refer"
        )
        assert result.ok, result.describe()
        finished = [line for line in server.log_lines() if line.get("event") == "flow finished"]
    assert finished[-1]["flow"] == "refer" and finished[-1]["outcome"] == "transferred"


def test_a_waiting_caller_hears_position_and_wait_and_is_connected_when_an_agent_frees_up(
    tmp_path: Path,
) -> None:
    agent = Agent("erin", talk=[25.0, 3.0])

    async def scenario() -> None:
        port = await agent.start(60000)
        extra = ("--announce-every", "3", "--wait-limit", "1")
        with serve(tmp_path, [("erin", f"sip:erin@127.0.0.1:{port}")], *extra) as server:  # type: ignore[attr-defined]
            first, second, two, seen = await busy_line(server)
            two.send_dtmf("1")  # wait
            seen = await when_said(server, "Thank you for waiting", seen)
            # Above the wait limit, the repeated announcement offers the callback again.
            await when_said(server, "You are number 1 in line", seen)
            assert await two.wait_ended(40), "the waiting caller was put through and the agent hung up"
            await first.stop(0.5)
            await second.stop(0.5)
            texts = said(server)
            finished = [line for line in server.log_lines() if line.get("event") == "flow finished"]
        assert any(
            "To be called back instead, without losing your place, press 2" in t and "number 1" in t
            for t in texts
        )
        assert [line["outcome"] for line in finished] == ["transferred", "transferred"]
        assert agent.engine is not None
        await agent.engine.stop(0.5)

    run(scenario)
    assert len(agent.calls) == 2
    cdr = subprocess.run(
        [sys.executable, "-m", "ivr", "cdr", "--db", str(tmp_path / "ivr.db"), "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    (waited,) = [row for row in json.loads(cdr.stdout) if row["caller"] == NUMBER]
    # The call record keeps what the caller was told and what really happened.
    assert waited["announced_wait"] > 0 and 5 < waited["actual_wait"] < 40


class Voicemail(Customer):
    """First an answering machine (long greeting and a beep), then a person."""

    async def answer(self, call: Call) -> None:
        if self.calls:
            await super().answer(call)
            return
        call.media.start_recording()
        record: dict[str, object] = {"headers": dict(call.info.headers), "machine": True}
        self.calls.append(record)
        greeting = await self.library.text(
            "Hello, you have reached the voicemail of Alex Miller. I cannot take your call right now. "
            "Please leave your name and number after the tone and I will call you back."
        )
        try:
            await call.play(greeting, interruptible=False)
            await call.play(tone(1000, 500, 0.5), interruptible=False)
            await call.wait_ended(10.0)
        finally:
            record["heard"] = call.media.stop_recording()
            call.hangup("machine done")


def test_an_answering_machine_gets_a_short_message_and_the_attempt_does_not_count_as_reached(
    tmp_path: Path,
) -> None:
    agent = Agent("frank", talk=60.0)
    customer = Voicemail()
    customer_port = free_udp_port()
    store = SqliteStore(tmp_path / "ivr.db")
    now = time.time()
    store.book(Booking(NUMBER, "en", now, now, now + 900, max_attempts=3, retry_spacing=2.0), now)
    store.close()

    async def scenario() -> None:
        port = await agent.start(60000)
        customer.engine = Engine(
            EngineConfig(port=customer_port, user="customer", rtp_low=62000, rtp_high=62998), customer.answer
        )
        await customer.engine.start()
        extra = ("--customer-uri", f"sip:{{number}}@127.0.0.1:{customer_port}")
        with serve(tmp_path, [("frank", f"sip:frank@127.0.0.1:{port}")], *extra) as server:  # type: ignore[attr-defined]
            deadline = time.monotonic() + 60
            attempts: list[object] = []
            while time.monotonic() < deadline and len(attempts) < 2:
                await asyncio.sleep(0.2)
                attempts = [
                    line["result"] for line in server.log_lines() if line.get("event") == "callback attempt"
                ]
            said = [str(line["text"]) for line in server.log_lines() if line.get("event") == "say"]
        await customer.engine.stop(0.5)
        assert agent.engine is not None
        await agent.engine.stop(0.5)
        assert attempts[:2] == ["machine", "answered"], attempts
        assert any("returning your call" in text for text in said), "the machine got the short message"

    run(scenario)
    (done,) = callbacks(tmp_path / "ivr.db")
    assert done["state"] == "connected" and done["attempts"] == "2/3"


def test_a_store_that_cannot_commit_gets_an_honest_answer_never_a_false_promise(tmp_path: Path) -> None:
    agent = Agent("ida", talk=30.0)

    async def scenario() -> None:
        port = await agent.start(60000)
        with serve(tmp_path, [("ida", f"sip:ida@127.0.0.1:{port}")]) as server:  # type: ignore[attr-defined]
            first, second, two, seen = await busy_line(server)
            two.send_dtmf("2")  # call me back
            seen = await when_said(server, "We will call you back at", seen)
            two.send_dtmf("1")
            seen = await when_said(server, "first free slot", seen)
            # Another process holds the store's write lock past the busy timeout (a stuck backup,
            # a failing disk): the booking cannot be committed.
            blocker = sqlite3.connect(tmp_path / "ivr.db", timeout=0)
            blocker.execute("BEGIN EXCLUSIVE")
            try:
                two.send_dtmf("1")
                await when_said(server, "could not book a callback", seen, timeout=30)
                assert await two.wait_ended(15)
            finally:
                blocker.rollback()
                blocker.close()
            await first.stop(0.5)
            await second.stop(0.5)
            assert server.process.poll() is None and answers_options(server.address)
            texts = said(server)
            errors = [
                line for line in server.log_lines() if line.get("event") == "callback could not be stored"
            ]
        assert agent.engine is not None
        await agent.engine.stop(0.5)
        assert not any("Your callback is booked" in text for text in texts), "a promise that was not stored"
        assert len(errors) == 1

    run(scenario)
    assert callbacks(tmp_path / "ivr.db") == []


def test_sigterm_turns_a_waiting_caller_into_a_callback_that_keeps_their_place(tmp_path: Path) -> None:
    agent = Agent("jan", talk=30.0)

    async def scenario() -> None:
        port = await agent.start(60000)
        extra = ("--drain-timeout", "20", "--announce-every", "60")
        with serve(tmp_path, [("jan", f"sip:jan@127.0.0.1:{port}")], *extra) as server:  # type: ignore[attr-defined]
            first, second, two, seen = await busy_line(server)
            two.send_dtmf("1")  # wait
            seen = await when_said(server, "Thank you for waiting", seen)
            waiting_since = time.time()
            server.process.send_signal(signal.SIGTERM)
            await when_said(server, "we have booked a callback to", seen)
            assert await two.wait_ended(20), "the IVR ended the call after saying so"
            await first.stop(0.5)
            await second.stop(0.5)
            server.process.wait(30)
        assert agent.engine is not None
        await agent.engine.stop(0.5)
        (booked,) = callbacks(tmp_path / "ivr.db")
        assert booked["number"] == NUMBER and booked["state"] == "pending"
        # Virtual hold: the callback keeps the time the caller joined the line, not the shutdown's.
        with SqliteStore(tmp_path / "ivr.db") as store:
            (record,) = store.list_callbacks()
        assert record.queue_entered_at < waiting_since and record.context

    run(scenario)


def test_after_an_agent_rejects_the_caller_hears_the_next_question_at_once(tmp_path: Path) -> None:
    # The hold music played while the agent's phone rang (20 s of it) must stop when the agent
    # rejects: otherwise the question behind it is heard 20 s late, after keys already answered it.
    agent_port = free_udp_port()

    async def scenario() -> None:
        rejecting = start_sipp(SIPP_DIR / "uas_busy.xml", None, local_port=agent_port, calls=1, timeout=40)
        with serve(tmp_path, [("kim", f"sip:kim@127.0.0.1:{agent_port}")]) as server:  # type: ignore[attr-defined]
            caller = Engine(EngineConfig(port=0, user=NUMBER, rtp_low=59000, rtp_high=59998))
            await caller.start()
            call = await caller.dial(f"sip:support@127.0.0.1:{server.address[1]}")
            seen = await when_said(server, "To talk to a person")
            call.send_dtmf("0")
            # kim is rejected and logged out after no more tries: nobody is free, so the caller
            # is offered a callback right away or told that nobody is available.
            seen = await when_said(server, "agent", seen)
            asked_at = time.monotonic()
            call.send_dtmf("2")
            await when_said(server, "We will call you back at", seen, timeout=30)
            waited = time.monotonic() - asked_at
            call.hangup()
            await caller.stop(0.5)
        assert rejecting.wait(timeout=10).ok
        assert waited < 15, f"the question came {waited:.1f} s late: it queued behind the hold music"

    run(scenario)
