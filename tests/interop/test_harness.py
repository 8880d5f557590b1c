"""The interop harness (Kamailio, baresip, pyVoIP) proven against SIPp on 127.0.0.1.

These tests do not need the IVR: they keep the harness working until the server tests use it.
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

import pytest

from tests.interop.baresip import baresip_call, rms, wav_duration
from tests.interop.kamailio import kamailio_proxy, options_status
from tests.interop.pyvoip_peer import PyVoipPeer
from tests.sipp_runner import find_free_udp_port, run_sipp, sipp_background

pytestmark = pytest.mark.interop

FAST = {"wait_ms": 200, "after_ms": 300}


def register(registrar: str, user: str, password: str, *, local_port: int | None = None) -> bool:
    result = run_sipp(
        "uac_register_auth.xml",
        registrar,
        service=user,
        local_port=local_port,
        extra_args=["-au", user, "-ap", password],
        timeout=15,
    )
    return result.ok


def tone_wav(path: Path, seconds: float, frequency: float = 440.0, rate: int = 8000) -> Path:
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * frequency * n / rate)))
        for n in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return path


def test_kamailio_digest_registration() -> None:
    with kamailio_proxy() as kam:
        assert options_status(kam.host, kam.port) == 200
        assert not kam.registered("alice", timeout=0.3)
        assert register(kam.address, "alice", "alice"), kam.log()[-3000:]
        assert kam.registered("alice", timeout=2)
        assert not register(kam.address, "bob", "wrong-password")
        assert not kam.registered("bob", timeout=0.3)


def test_call_through_kamailio_to_a_registered_sipp_uas() -> None:
    with kamailio_proxy() as kam:
        agent_port = find_free_udp_port()
        assert register(kam.address, "agent", "agent", local_port=agent_port)
        with sipp_background("uas_agent.xml", local_port=agent_port, timeout=30) as uas:
            caller = run_sipp("uac_basic.xml", kam.address, service="agent", sets=FAST, timeout=30)
            callee = uas.wait(timeout=10)
        assert caller.ok, caller.describe() + kam.log()[-3000:]
        assert callee.ok, callee.describe()


def test_kamailio_answers_404_for_unregistered_users() -> None:
    with kamailio_proxy() as kam:
        caller = run_sipp(
            "uac_basic.xml",
            kam.address,
            service="nobody",
            sets=FAST,
            timeout=15,
            extra_args=["-trace_error_codes"],
        )
    assert caller.failed == 1, caller.describe()
    assert "404" in caller.errors


def test_baresip_calls_sipp_and_hears_the_echo(tmp_path: Path) -> None:
    tone = tone_wav(tmp_path / "tone.wav", seconds=4)
    with sipp_background("uas_agent.xml", extra_args=["-rtp_echo"], timeout=30) as uas:
        call = baresip_call(
            f"sip:agent@{uas.address}",
            workdir=tmp_path,
            audio=tone,
            hold_s=2,
            digits="1#",
            digits_after_s=0.5,
        )
        callee = uas.wait(timeout=10)
    assert call.established, call.log[-3000:]
    assert call.closed and call.duration is not None and 1.5 < call.duration < 4, call
    assert callee.ok and callee.successful == 1, callee.describe()
    assert call.recording is not None and wav_duration(call.recording) > 1.0
    assert rms(call.recording) > 1000  # it heard its own tone, echoed by SIPp
    types = [event["type"] for event in call.events]
    assert types.count("CALL_DTMF_END") >= 1, types  # its RFC 4733 digits came back through the echo


def test_pyvoip_registers_and_calls_through_kamailio() -> None:
    with kamailio_proxy() as kam:
        agent_port = find_free_udp_port()
        assert register(kam.address, "agent", "agent", local_port=agent_port)
        with PyVoipPeer(kam.host, kam.port, "alice", "alice") as alice:
            assert alice.registered
            assert kam.registered("alice", timeout=2)

            with sipp_background("uas_agent.xml", local_port=agent_port, timeout=30) as uas:
                outgoing = alice.call("agent", hold_s=2)
                callee = uas.wait(timeout=10)
            assert outgoing.answered and outgoing.final_state == "ENDED", outgoing
            assert outgoing.duration is not None and 1.5 < outgoing.duration < 5
            assert callee.ok, callee.describe() + kam.log()[-3000:]

            incoming = run_sipp("uac_basic.xml", kam.address, service="alice", sets=FAST, timeout=30)
            assert incoming.ok, incoming.describe() + kam.log()[-3000:]
            assert len(alice.answered_calls) == 1
