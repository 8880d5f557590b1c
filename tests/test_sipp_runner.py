"""The SIPp helper and the sipp/ scenarios, proven against SIPp itself on 127.0.0.1.

No IVR here: each caller scenario is played against a SIPp that answers the way the IVR should,
and each answering scenario is called by SIPp, so the scenarios cannot rot before the server can
run them.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sipp_runner import (
    REPO_ROOT,
    SIPP_DIR,
    find_free_udp_port,
    parse_screen_counts,
    parse_stat_csv,
    run_sipp,
    sipp_background,
    start_sipp,
)

pytestmark = pytest.mark.sipp

FIXTURES = REPO_ROOT / "tests" / "sipp_fixtures"
FAST = {"wait_ms": 200, "after_ms": 300}  # uac_basic timings shrunk for tests


def test_free_udp_port_is_bindable_and_even_for_spans() -> None:
    port = find_free_udp_port(span=4)
    assert port % 2 == 0
    for offset in range(4):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", port + offset))


def test_parse_stat_csv_takes_the_last_row() -> None:
    text = "A;SuccessfulCall(C);FailedCall(C);\n1;0;0;\n2;5;1;\n"
    assert parse_stat_csv(text) == {"A": "2", "SuccessfulCall(C)": "5", "FailedCall(C)": "1"}
    assert parse_stat_csv("") == {}


def test_parse_screen_counts() -> None:
    screen = (
        "  Successful call        |        0                  |        3\n"
        "  Failed call            |        0                  |        1\n"
    )
    assert parse_screen_counts(screen) == (3, 1)
    assert parse_screen_counts("nothing") is None


@pytest.mark.parametrize("scenario", sorted(SIPP_DIR.glob("*.xml")), ids=lambda path: path.name)
def test_scenario_loads(scenario: Path) -> None:
    """SIPp refuses a scenario it cannot parse before doing anything.  One it accepts either waits
    in vain for an answer from the discard port (a caller) or for a call until -timeout (a callee)."""
    result = run_sipp(scenario, "127.0.0.1:9", timeout=6, extra_args=["-recv_timeout", "300"])
    assert "receive timeout on message" in result.errors or "timed out after" in result.errors, (
        result.describe()
    )


Heard = tuple[float, tuple[str, int], bytes]  # arrival (monotonic), source address, datagram


def _rtp_listener(port: int, stop: threading.Event, heard: list[Heard]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", port))
        sock.settimeout(0.1)
        while not stop.is_set():
            try:
                data, source = sock.recvfrom(2048)
            except TimeoutError:
                continue
            if len(data) >= 12:
                heard.append((time.monotonic(), source, data))


@contextlib.contextmanager
def _listening(port: int) -> Iterator[list[Heard]]:
    """The RTP datagrams that reach ``port`` during the with-block."""
    stop = threading.Event()
    heard: list[Heard] = []
    listener = threading.Thread(target=_rtp_listener, args=(port, stop, heard), daemon=True)
    listener.start()
    try:
        yield heard
    finally:
        stop.set()
        listener.join(timeout=2)


def _payload_types(heard: list[Heard]) -> Counter[int]:
    return Counter(data[1] & 0x7F for _, _, data in heard)


def _key_ends(heard: list[Heard]) -> list[tuple[int, int]]:
    """(event, timestamp) of every RFC 4733 end packet (payload type 101) heard."""
    return [
        (data[12], struct.unpack(">I", data[4:8])[0])
        for _, _, data in heard
        if data[1] & 0x7F == 101 and len(data) >= 16 and data[13] & 0x80
    ]


def test_uac_basic_sends_g711_and_rfc4733_digits() -> None:
    rtp_port = find_free_udp_port(span=2)
    with _listening(rtp_port) as heard:
        with sipp_background(FIXTURES / "uas_media_to.xml", sets={"rtp_port": rtp_port}, timeout=30) as uas:
            caller = run_sipp("uac_basic.xml", uas.address, sets={**FAST, "digits": "5#"}, timeout=30)
            callee = uas.wait(timeout=10)
    assert caller.ok, caller.describe()
    assert callee.ok, callee.describe()
    assert _payload_types(heard)[8] > 5, heard  # A-law caller audio
    events = _key_ends(heard)  # one (event, timestamp) per key press, end packets repeated
    assert [event for event, _ in dict.fromkeys(events)] == [5, 11], events  # '5', '#'


def test_bench_real_caller_speaks_presses_1_and_stops_with_the_call() -> None:
    """One RTP stream from the offer's address: speech, the key 1, speech; and no more of it
    once the callee hangs up 7 s in, before the pcap's 10.1 s are over."""
    rtp_port, media_port = find_free_udp_port(span=2), find_free_udp_port(span=4)
    with _listening(rtp_port) as heard:
        sets = {"rtp_port": rtp_port, "hangup_ms": 7000}
        with sipp_background(FIXTURES / "uas_media_to_hangs_up.xml", sets=sets, timeout=30) as uas:
            caller = run_sipp("bench_real_caller.xml", uas.address, media_port=media_port, timeout=30)
            callee = uas.wait(timeout=10)
        time.sleep(1.0)  # anything SIPp still sent after the call would arrive now
    assert caller.ok, caller.describe()
    assert callee.ok, callee.describe()
    assert {source for _, source, _ in heard} == {("127.0.0.1", media_port)}  # the offer's address
    assert len({data[8:12] for _, _, data in heard}) == 1  # one SSRC
    types = _payload_types(heard)
    assert types[0] >= 300 and types[101] == 8, types  # 6 s of PCMU and more; the key's 8 packets
    assert dict.fromkeys(_key_ends(heard)).keys() == {(1, 8000 + 300 * 160)}, _key_ends(heard)
    seqs = [struct.unpack(">H", data[2:4])[0] for _, _, data in heard]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # in order, none lost
    assert 330 < len(heard) < 508 - 50  # replay ended with the call, about 7 s in
    assert heard[-1][0] - heard[0][0] < 7.5


def test_uac_basic_against_uas_agent() -> None:
    with sipp_background("uas_agent.xml", timeout=30) as uas:
        caller = run_sipp("uac_basic.xml", uas.address, sets=FAST, timeout=30)
        callee = uas.wait(timeout=10)
    assert caller.ok, caller.describe()
    assert callee.ok, callee.describe()
    assert caller.stats["SuccessfulCall(C)"] == "1"


def test_uac_ivr_hangs_up_answers_the_bye() -> None:
    with sipp_background("uas_hangs_up.xml", sets={"hangup_ms": 4000}, timeout=30) as uas:
        caller = run_sipp("uac_ivr_hangs_up.xml", uas.address, sets={"wait_ms": 200}, timeout=30)
        callee = uas.wait(timeout=10)
    assert caller.ok, caller.describe()
    assert callee.ok, callee.describe()


def test_uac_caller_hangs_up_after_a_second() -> None:
    with sipp_background("uas", timeout=30) as uas:
        started = time.monotonic()
        caller = run_sipp("uac_caller_hangs_up.xml", uas.address, timeout=30)
        elapsed = time.monotonic() - started
        callee = uas.wait(timeout=10)
    assert caller.ok, caller.describe()
    assert callee.ok, callee.describe()
    assert 0.9 < elapsed < 10


@pytest.mark.parametrize("callee", ["uas_ring_no_answer.xml", str(FIXTURES / "uas_trying_only.xml")])
def test_uac_cancel(callee: str) -> None:
    with sipp_background(callee, timeout=30) as uas:
        caller = run_sipp("uac_cancel.xml", uas.address, timeout=30)
        answered = uas.wait(timeout=10)
    assert caller.ok, caller.describe()
    assert answered.ok, answered.describe()


def test_uac_reinvite_hold_unhold_codec_change() -> None:
    with sipp_background(FIXTURES / "uas_reinvite_mirror.xml", timeout=30) as uas:
        caller = run_sipp("uac_reinvite.xml", uas.address, timeout=30)
        callee = uas.wait(timeout=10)
    assert caller.ok, caller.describe()
    assert callee.ok, callee.describe()


def test_uac_reinvite_fails_when_hold_is_not_acknowledged() -> None:
    """The checks in uac_reinvite.xml bite: SIPp's plain UAS cannot answer re-INVITEs."""
    with sipp_background("uas", timeout=20) as uas:
        caller = run_sipp("uac_reinvite.xml", uas.address, timeout=15, extra_args=["-recv_timeout", "2000"])
    assert not caller.ok
    assert caller.failed == 1 or caller.timed_out, caller.describe()


def test_uac_burst_under_load() -> None:
    with sipp_background("uas", calls=40, timeout=60) as uas:
        caller = run_sipp("uac_burst.xml", uas.address, calls=40, rate=20, limit=20, timeout=60)
        callee = uas.wait(timeout=15)
    assert caller.ok, caller.describe()
    assert caller.successful == 40
    assert callee.successful == 40, callee.describe()


def test_uas_agent_called_by_sipp_uac() -> None:
    with sipp_background("uas_agent.xml", timeout=30) as uas:
        caller = run_sipp("uac", uas.address, timeout=30)
        callee = uas.wait(timeout=10)
    assert caller.ok, caller.describe()
    assert callee.ok, callee.describe()


def test_uas_busy_rejects_with_486() -> None:
    with sipp_background("uas_busy.xml", timeout=30) as uas:
        caller = run_sipp("uac", uas.address, timeout=15, extra_args=["-trace_error_codes"])
        callee = uas.wait(timeout=10)
    assert callee.ok, callee.describe()
    assert caller.failed == 1 and caller.successful == 0, caller.describe()
    assert "486" in caller.errors, caller.describe()


def test_hard_timeout_kills_only_our_sipp(tmp_path: Path) -> None:
    """A UAS that nobody calls: SIPp's own -timeout ends it; our kill is the backstop."""
    proc = start_sipp("uas", None, timeout=7, workdir=tmp_path)
    result = proc.wait()
    assert not result.ok
    assert proc.process.returncode is not None
    assert (tmp_path / "stat.csv").exists()
