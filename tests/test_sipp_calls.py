"""The IVR process answering SIPp over real sockets on 127.0.0.1, one scenario per behaviour."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server import RunningServer, ivr_server
from tests.sipp_runner import SIPP_DIR, run_sipp

pytestmark = pytest.mark.sipp


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    # --answer-delay-header: the CANCEL scenario asks the IVR to ring for 2 s first.
    options = ("--tcp", "--answer-delay-header")
    with ivr_server(tmp_path_factory.mktemp("ivr"), *options, rtp_base=32000) as running:
        yield running


def target(server: RunningServer) -> str:
    return f"{server.address[0]}:{server.address[1]}"


def ended(server: RunningServer) -> dict[str, dict[str, object]]:
    """The server's 'call ended' log records, by call id."""
    return {str(line["call_id"]): line for line in server.log_lines() if line.get("event") == "call ended"}


def wait_for_end(server: RunningServer, before: set[str], count: int = 1) -> list[dict[str, object]]:
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        new = [record for call_id, record in ended(server).items() if call_id not in before]
        if len(new) >= count:
            return new
        time.sleep(0.05)
    raise AssertionError(f"expected {count} ended calls in the server log")


@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_basic_call_audio_both_ways_and_rfc4733_digits(server: RunningServer, transport: str) -> None:
    before = set(ended(server))
    result = run_sipp(
        SIPP_DIR / "uac_basic.xml", target(server), transport=transport,
        sets={"digits": "1234", "wait_ms": 1500, "after_ms": 1500}, timeout=40,
    )  # fmt: skip
    assert result.ok, result.describe()
    (record,) = wait_for_end(server, before)
    # The digits come from the RFC 2833 captures that SIPp ships, each counted exactly once.
    assert record["keys"] == "1234"
    assert record["reason"] == "bye"
    assert int(str(record["rtp_sent"])) > 50, "the prompt went out as RTP"
    assert int(str(record["rtp_received"])) > 50, "the caller's audio came in"


def test_ivr_hangs_up_after_reading_the_digits_back(server: RunningServer) -> None:
    before = set(ended(server))
    result = run_sipp(
        SIPP_DIR / "uac_ivr_hangs_up.xml", target(server), sets={"digits": "42#", "wait_ms": 1000}
    )
    assert result.ok, result.describe()
    (record,) = wait_for_end(server, before)
    assert record["ended_by"] == "local"
    assert record["keys"] == "42#"
    finished = [line for line in server.log_lines() if line.get("event") == "flow finished"]
    assert finished[-1]["outcome"] == "resolved"
    assert finished[-1]["steps"] == ["greeting", "digits", "read_back"]


def test_caller_hangs_up_in_the_middle_of_the_prompt(server: RunningServer) -> None:
    before = set(ended(server))
    result = run_sipp(SIPP_DIR / "uac_caller_hangs_up.xml", target(server), sets={"hangup_ms": 800})
    assert result.ok, result.describe()
    (record,) = wait_for_end(server, before)
    assert record["reason"] == "bye"
    assert float(str(record["duration"])) < 2.0


def test_cancel_before_answer_gets_487(server: RunningServer) -> None:
    result = run_sipp(SIPP_DIR / "uac_cancel.xml", target(server))
    assert result.ok, result.describe()


def test_reinvite_hold_unhold_and_codec_change(server: RunningServer) -> None:
    result = run_sipp(SIPP_DIR / "uac_reinvite.xml", target(server), timeout=40)
    assert result.ok, result.describe()
    accepted = [line for line in server.log_lines() if line.get("event") == "re-INVITE accepted"]
    directions = [line["direction"] for line in accepted[-3:]]
    codecs = [line["codec"] for line in accepted[-3:]]
    assert directions == ["recvonly", "sendrecv", "sendrecv"]
    assert codecs[-1] == "PCMA"


def test_no_common_codec_is_refused_with_488(server: RunningServer) -> None:
    result = run_sipp(SIPP_DIR / "uac_no_common_codec.xml", target(server))
    assert result.ok, result.describe()


def test_options_is_answered(server: RunningServer) -> None:
    result = run_sipp(SIPP_DIR / "options_ping.xml", target(server))
    assert result.ok, result.describe()


def test_burst_of_200_calls_50_at_once_none_failing(tmp_path: Path) -> None:
    # A fresh server, so the figures below are this burst's own.
    with ivr_server(tmp_path, rtp_base=36000) as fresh:
        result = run_sipp(SIPP_DIR / "uac_burst.xml", target(fresh), calls=200, rate=50, limit=50, timeout=90)
        assert result.ok, result.describe()
        assert result.successful == 200 and result.failed == 0
        records = [line for line in fresh.log_lines() if line.get("event") == "call ended"]
        assert len(records) == 200
        assert all(record["reason"] == "bye" for record in records)
        assert not [line for line in fresh.log_lines() if line.get("level") == "error"]


def test_keypad_walk_through_the_support_flow_outage_branch(server: RunningServer) -> None:
    # 1 = outage menu, 20251 = postcode (typed ahead while prompts play), 9 = nothing else.
    result = run_sipp(
        SIPP_DIR / "uac_ivr_hangs_up.xml", target(server), service="support",
        sets={"digits": "1202519", "wait_ms": 2000}, timeout=50,
    )  # fmt: skip
    assert result.ok, result.describe()
    finished = [line for line in server.log_lines() if line.get("event") == "flow finished"]
    record = finished[-1]
    assert record["flow"] == "support" and record["outcome"] == "resolved"
    steps = record["steps"]
    assert isinstance(steps, list)
    assert steps[steps.index("main_menu") :] == [
        "main_menu", "outage_postcode", "find_outage", "outage_has_eta", "outage_known", "wrap",
        "anything_else", "goodbye",
    ]  # fmt: skip
    said = [line["text"] for line in server.log_lines() if line.get("event") == "say"]
    assert any("known TV outage at postcode two zero two five one" in text for text in said)
    # No English speech model on this server: the menus offer keys only, never "or say 'outage'".
    assert any("press 1" in text for text in said) and not any("or say" in text for text in said)
