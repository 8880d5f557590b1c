"""The SIPp scenarios for the real call types, each against a real ``ivr serve`` on 127.0.0.1.

- ``uac_ask_human.xml``: presses 0 in the support flow and is bridged to an agent played by SIPp.
- ``uac_book_callback.xml``: finds the only agent on a call (with a ``uac_ask_human.xml`` caller) and
  books a callback by keypad; the dialer then keeps it, agent first (SIPp ``uas_agent.xml``), to a
  customer (SIPp ``uas_hangs_up.xml``: answers, listens, hangs up).
- ``speech/uac_speaking.xml``: says a Korean word (rtp_stream) into the speech menu and is routed by it.

What happened is read from the server's JSON log and its store, never from SIPp's timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.server import REPO, RunningServer, ivr_server
from tests.sipp_runner import SippProcess, find_free_udp_port, run_sipp, start_sipp

pytestmark = pytest.mark.sipp

HANDOFF = REPO / "tests" / "flows" / "handoff"
KOREAN = REPO / "tests" / "flows" / "korean"
NUMBER = "+4930123456"  # the callers' From user: a number the support flow may call back


def target(server: RunningServer) -> str:
    return f"{server.address[0]}:{server.address[1]}"


def events(server: RunningServer, name: str) -> list[dict[str, object]]:
    return [line for line in server.log_lines() if line.get("event") == name]


def wait_for_event(server: RunningServer, name: str, timeout: float = 30.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = events(server, name)
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no {name!r} in the server log")


def ivr(*args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "ivr", *args], capture_output=True, text=True, check=True, cwd=REPO
    )
    return out.stdout


def callbacks(db: Path) -> list[dict[str, object]]:
    text = ivr("callbacks", "--db", str(db), "list", "--json")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@contextmanager
def support_line(tmp: Path, agent_port: int, *extra: str) -> Iterator[RunningServer]:
    """The support flow by keypad with one agent, "carol", at SIPp's agent_port."""
    agents = tmp / "agents.yaml"
    agents.write_text(
        f"agents:\n  - {{id: carol, name: carol, uri: 'sip:carol@127.0.0.1:{agent_port}', "
        "languages: [en], skills: [support]}\n"
    )
    args = (
        "--flows", str(HANDOFF), "--flow", "support", "--keypad-only", "--agents", str(agents),
        "--db", str(tmp / "ivr.db"), "--ring-timeout", "3", "--wrap-up", "1", *extra,
    )  # fmt: skip
    with ivr_server(tmp, *args, rtp_base=36000) as server:
        yield server


def test_caller_asking_for_a_person_is_bridged_to_the_agent(tmp_path: Path) -> None:
    agent_port = find_free_udp_port()
    with support_line(tmp_path, agent_port) as server:
        agent = start_sipp("uas_agent.xml", None, local_port=agent_port, timeout=60)
        try:
            caller = run_sipp("uac_ask_human.xml", target(server), service="support", timeout=60)
            assert caller.ok, caller.describe()
            # The agent's call ends with the IVR's BYE once the caller has hung up.
            answered = agent.wait(timeout=20)
        finally:
            agent.stop()
        assert answered.ok, answered.describe()
        (connecting,) = wait_for_event(server, "connecting to agent")
        assert connecting["agent"] == "carol"
        (finished,) = wait_for_event(server, "flow finished")
        assert finished["outcome"] == "transferred"
        # The 0 comes about as the greeting ends: in it or in the menu after it.
        assert finished["steps"] in (["greeting", "to_agent"], ["greeting", "main_menu", "to_agent"])
    (row,) = json.loads(ivr("cdr", "--db", str(tmp_path / "ivr.db"), "--format", "json"))
    assert row["outcome"] == "transferred" and row["handoff"] == "bridge:carol" and row["caller"] == NUMBER


def test_caller_finding_every_agent_busy_books_a_callback_that_is_kept(tmp_path: Path) -> None:
    agent_port, customer_port = find_free_udp_port(), find_free_udp_port()
    db = tmp_path / "ivr.db"
    extra = (
        "--customer-uri", f"sip:{{number}}@127.0.0.1:{customer_port}",
        # Longer than the test: a second attempt would only come from a bug.
        "--retry-spacing", "600",
    )  # fmt: skip
    with support_line(tmp_path, agent_port, *extra) as server:
        # The agent answers twice (a first caller, then the callback), the customer once.
        agent = start_sipp("uas_agent.xml", None, local_port=agent_port, calls=2, timeout=100)
        customer = start_sipp(
            "uas_hangs_up.xml", None, local_port=customer_port, sets={"hangup_ms": 5000}, timeout=100
        )
        callers: list[SippProcess] = []
        try:
            # The first caller keeps the only agent busy (20 s after its 0) ...
            sets: dict[str, str | int] = {"caller": "+4930111111", "stay_ms": 20000}
            callers.append(start_sipp("uac_ask_human.xml", target(server), service="support", sets=sets))
            wait_for_event(server, "connecting to agent")
            # ... while the second asks for a person, hears that every agent is busy, and books.
            callers.append(start_sipp("uac_book_callback.xml", target(server), service="support", timeout=80))
            for caller in callers:
                result = caller.wait()
                assert result.ok, result.describe()
            (record,) = callbacks(db)
            assert record["number"] == NUMBER
            finished = {line["call_id"]: line for line in events(server, "flow finished")}
            by_reason = {line["reason"]: line for line in events(server, "call ended")}
            booking = by_reason["callback booked"]
            assert booking["keys"] == "0211"
            assert finished[booking["call_id"]]["outcome"] == "callback_booked"
            outcomes = sorted(str(line["outcome"]) for line in finished.values())
            assert outcomes == ["callback_booked", "transferred"]
            # The dialer keeps the promise: the agent first, then the customer, who listens and hangs up.
            talked = customer.wait(timeout=40)
            assert talked.ok, talked.describe()
            served = agent.wait(timeout=20)
            assert served.ok and served.successful == 2, served.describe()
        finally:
            for proc in (*callers, agent, customer):
                proc.stop()
        (attempt,) = wait_for_event(server, "callback attempt")
        assert attempt["result"] == "answered"
        outbound = [line["called"] for line in events(server, "call up") if line["direction"] == "outbound"]
        agent_uri, customer_uri = (
            f"sip:carol@127.0.0.1:{agent_port}",
            f"sip:{NUMBER}@127.0.0.1:{customer_port}",
        )
        assert outbound == [agent_uri, agent_uri, customer_uri]
    (done,) = callbacks(db)
    assert done["state"] == "connected" and done["attempts"] == "1/3" and done["agent"] == "carol"


def test_speaking_caller_is_routed_by_the_word_it_says(tmp_path: Path) -> None:
    # The scenario streams sipp/audio/ko-yeyak.alaw by a path relative to SIPp's working
    # directory (SIPp fixes it when loading the scenario): give that directory a sipp/.
    workdir = tmp_path / "sipp"
    workdir.mkdir()
    os.symlink(REPO / "sipp", workdir / "sipp")
    args = ("--flows", str(KOREAN), "--flow", "menu", "--no-dither")
    with ivr_server(tmp_path, *args, rtp_base=38000) as server:
        caller = run_sipp(
            "speech/uac_speaking.xml", target(server), service="menu", workdir=workdir, timeout=60
        )
        assert caller.ok, caller.describe()
        (finished,) = wait_for_event(server, "flow finished")
        heard = events(server, "heard speech")
        said = [line["text"] for line in events(server, "say")]
        (ended,) = events(server, "call ended")
    assert [line["text"] for line in heard] == ["예약"], (heard, said, ended)
    assert finished["outcome"] == "resolved" and finished["steps"] == ["menu", "booking"]
    assert said[-1] == "예약"  # the booking step's answer
    assert ended["reason"] == "booking"
    assert int(str(ended["rtp_received"])) > 50, "the utterance arrived as RTP"
