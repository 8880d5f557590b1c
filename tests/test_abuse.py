"""Abuse from the internet: scanners learn nothing, floods from one source are throttled while
other callers are served, and SIGTERM drains calls instead of cutting them."""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest

from ivr.sip.message import SipRequest, parse_message
from ivr.sip.ratelimit import PUBLIC_SOURCE_RATE, RateLimiter, is_scanner, is_scanner_request, source_rate_for
from tests.server import ivr_server
from tests.sipp_runner import SIPP_DIR, run_sipp, start_sipp


def options(port: int, user_agent: str = "softphone", source: str = "127.0.0.1") -> bytes:
    return (
        f"OPTIONS sip:100@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {source}:5999;rport;branch=z9hG4bK{time.monotonic_ns()}\r\n"
        f"From: <sip:probe@{source}>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\n"
        f"Call-ID: {time.monotonic_ns()}@scan\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        f"User-Agent: {user_agent}\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def invite(port: int, source: str, call_id: str) -> bytes:
    sdp = (
        f"v=0\r\no=- 1 1 IN IP4 {source}\r\ns=-\r\nc=IN IP4 {source}\r\nt=0 0\r\n"
        "m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    )
    return (
        f"INVITE sip:100@127.0.0.1:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {source}:5999;rport;branch=z9hG4bK{call_id}\r\n"
        f"From: <sip:caller@{source}>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
        f"Contact: <sip:caller@{source}:5999>\r\nContent-Type: application/sdp\r\n"
        f"Content-Length: {len(sdp)}\r\n\r\n{sdp}"
    ).encode()


def final_status(sock: socket.socket, call_id: str, timeout: float = 3.0) -> int:
    """The first final (>= 200) response for ``call_id`` that ``sock`` receives."""
    sock.settimeout(timeout)
    while True:
        response = parse_message(sock.recv(65536))
        if not isinstance(response, SipRequest) and response.headers.get("Call-ID") == call_id:
            if response.status >= 200:
                return response.status


def answers(sock: socket.socket, timeout: float = 0.3) -> int:
    sock.settimeout(timeout)
    count = 0
    try:
        while True:
            sock.recv(4096)
            count += 1
    except OSError:
        return count


def test_token_bucket_per_source() -> None:
    limiter = RateLimiter(rate=10, burst=5)
    assert [limiter.allow("a", 0.0) for _ in range(6)] == [True] * 5 + [False]
    assert limiter.allow("b", 0.0), "another source has its own bucket"
    assert limiter.allow("a", 0.1) and not limiter.allow("a", 0.1)  # 10/s refills one in 0.1 s
    assert limiter.refused == 2


def test_a_public_bind_is_rate_limited_unless_the_operator_says_otherwise() -> None:
    for public in ("0.0.0.0", "192.0.2.10", "::", "2001:db8::1", "ivr.example.com"):
        assert source_rate_for(public, None) == PUBLIC_SOURCE_RATE, public
    for local in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert source_rate_for(local, None) is None, local
    assert source_rate_for("0.0.0.0", 0.0) is None  # --source-rate 0: unlimited, on purpose
    assert source_rate_for("0.0.0.0", 500.0) == 500.0
    assert source_rate_for("127.0.0.1", 20.0) == 20.0


def test_scanner_user_agents_are_recognised() -> None:
    assert is_scanner("friendly-scanner") and is_scanner("sipvicious 0.3.3") and is_scanner("SIPCLI/v1.8")
    assert not is_scanner("Linphone/5.1") and not is_scanner(None)


def _request(from_: str, to: str, method: str = "OPTIONS") -> SipRequest:
    message = parse_message(
        f"{method} sip:100@127.0.0.1 SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.1:47052;branch=z9hG4bK-49;rport\r\n"
        f"t: {to}\r\nf: {from_}\r\ni: 1081199080226718215035657\r\nCSeq: 1 {method}\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n".encode()
    )
    assert isinstance(message, SipRequest)
    return message


def test_scanners_without_a_user_agent_are_recognised_by_their_probes() -> None:
    # SIPVicious in compact mode (-c), as captured: svmap names itself, svwar only tags its probes.
    svmap = _request(
        '"sipvicious"<sip:100@1.1.1.1>',
        '"sipvicious"<sip:100@1.1.1.1>;tag=37663030303030316237636301333438393935363732',
    )
    svwar = _request(
        '"586110492"<sip:586110492@127.0.0.1>;tag=3538363131303439320133393438323331393138',
        '"586110492"<sip:586110492@127.0.0.1>',
        "INVITE",
    )
    assert is_scanner_request(svmap) and is_scanner_request(svwar)
    # Ordinary callers: random hex tags, numeric tags, display names of people.
    for tag in ("a3f9c2d41b7e", "1234567890123456", "6b28badde786a3a815ecdad2", "00ff" * 8):
        assert not is_scanner_request(
            _request(f'"Anna Meyer"<sip:+4930123@pbx.example>;tag={tag}', "<sip:100@ivr>")
        )


def test_scanners_get_no_answer_and_real_calls_go_on(tmp_path: Path) -> None:
    with ivr_server(tmp_path, rtp_base=30000) as server:
        port = server.address[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            for _ in range(20):
                sock.sendto(options(port, "friendly-scanner"), ("127.0.0.1", port))
            assert answers(sock) == 0
            sock.sendto(options(port, "Linphone/5.1"), ("127.0.0.1", port))
            assert answers(sock) == 1
        result = run_sipp(SIPP_DIR / "uac_caller_hangs_up.xml", f"127.0.0.1:{port}")
        assert result.ok, result.describe()


def test_a_flooding_source_is_throttled_others_are_served(tmp_path: Path) -> None:
    with ivr_server(tmp_path, "--source-rate", "20", "--source-burst", "20", rtp_base=30000) as server:
        port = server.address[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as flood:
            flood.bind(("127.0.0.2", 0))
            for _ in range(300):
                flood.sendto(options(port, source="127.0.0.2"), ("127.0.0.1", port))
            answered = answers(flood, 0.5)
        # A burst of 20 plus what refills at 20/s during the send: far fewer than 300.
        assert 15 <= answered <= 60
        result = run_sipp(SIPP_DIR / "uac_caller_hangs_up.xml", f"127.0.0.1:{port}")
        assert result.ok, result.describe()


@pytest.mark.sipp
def test_an_address_may_hold_only_so_many_calls_others_still_get_through(tmp_path: Path) -> None:
    with ivr_server(tmp_path, "--max-calls-per-source", "1", rtp_base=30400) as server:
        port = server.address[1]
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other,
        ):
            busy.bind(("127.0.0.2", 0))
            other.bind(("127.0.0.3", 0))
            busy.sendto(invite(port, "127.0.0.2", "per-source-1"), ("127.0.0.1", port))
            assert final_status(busy, "per-source-1") == 200
            busy.sendto(invite(port, "127.0.0.2", "per-source-2"), ("127.0.0.1", port))
            assert final_status(busy, "per-source-2") == 503  # the address already holds one
            other.sendto(invite(port, "127.0.0.3", "per-source-3"), ("127.0.0.1", port))
            assert final_status(other, "per-source-3") == 200


def test_sigterm_drains_running_calls_and_refuses_new_ones(tmp_path: Path) -> None:
    with ivr_server(tmp_path, "--drain-timeout", "8", rtp_base=30000) as server:
        target = f"127.0.0.1:{server.address[1]}"
        # A caller in the middle of the demo flow: presses keys, waits for the IVR's goodbye.
        running = start_sipp(
            SIPP_DIR / "uac_ivr_hangs_up.xml", target, sets={"digits": "42#", "wait_ms": 1000}, timeout=40
        )
        time.sleep(1.5)
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        late = run_sipp(SIPP_DIR / "uac_basic.xml", target, timeout=15)
        finished = running.wait(timeout=40)
        server.process.wait(20)
        lines = server.log_lines()
    assert finished.ok, finished.describe()  # the running call ended normally, by the IVR
    assert not late.ok and "503" in late.stdout + late.errors + str(late.stats)
    ended = [line for line in lines if line.get("event") == "call ended"]
    assert len(ended) == 1 and ended[0]["ended_by"] == "local" and ended[0]["keys"] == "42#"
