"""Hostile RTP at a real call's media port: the call goes on, and its audio and keys stay the caller's.

A stranger on 127.0.0.2 sends everything a scanner, a confused device or an RTP-bleed attacker
might: truncated headers, other RTP versions, RTCP, unnegotiated payload types, loud audio under
its own SSRC with huge sequence jumps, and RFC 4733 key presses (digit injection). The caller
(the project's own UAC on 127.0.0.1, sending comfort silence as a phone does) keys in its digits
and must hear the IVR read back exactly those.
"""

from __future__ import annotations

import asyncio
import random
import socket
from pathlib import Path

from ivr.app.caller import speech_segments
from ivr.call.engine import Engine, EngineConfig
from ivr.media.dtmf import TelephoneEvent
from ivr.media.rtp import RtpPacket
from tests.server import RunningServer, answers_options, ivr_server

RTP_BASE = 47000  # the server's first RTP port: where its first call's media will be
HOSTILE_HOST = "127.0.0.2"


def junk(rng: random.Random, n: int) -> bytes:
    """The n-th hostile datagram: a rotation through the kinds of bad input."""
    loud = bytes(rng.choice((0x00, 0x80)) for _ in range(160))  # full-scale mu-law
    kind = n % 9
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 200))
    if kind == 1:
        return bytes(RtpPacket(0, n, n * 160, 0xBAD, loud))[: rng.randrange(0, 12)]  # truncated
    if kind == 2:
        return b"\x40" + bytes(RtpPacket(0, n, n * 160, 0xBAD, loud))[1:]  # RTP version 1
    if kind == 3:
        return bytes.fromhex("80c8000600000bad") + bytes(20)  # RTCP sender report
    if kind == 4:
        return bytes(RtpPacket(rng.choice((8, 13, 18, 96, 127)), n, n * 160, 0xBAD, loud))
    if kind == 5:  # audio under a stranger's SSRC, sequence numbers leaping about
        return bytes(RtpPacket(0, (n * 30011) & 0xFFFF, n * 160, 0xBAD + n % 3, loud))
    if kind == 6:  # key presses: 9, ended, each under a fresh timestamp
        event = TelephoneEvent(9, end=n % 2 == 0, duration=800)
        return bytes(RtpPacket(101, n, n * 1600, 0xBAD, bytes(event), marker=True))
    if kind == 7:
        return b"\xa0" + bytes(RtpPacket(0, n, 0, 0xBAD, loud))[1:-1] + b"\xff"  # padding > packet
    return b"\x90" + bytes(RtpPacket(0, n, 0, 0xBAD, b"\x00\x01\xff\xff"))[1:]  # extension overrun


async def spray(target: tuple[str, int], stop: asyncio.Event, sent: list[int]) -> None:
    """Send junk every 5 ms (four times the caller's packet rate) until told to stop."""
    rng = random.Random(7)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOSTILE_HOST, 0))
        sock.setblocking(False)
        n = 0
        while not stop.is_set():
            for port in (target[1], target[1] + 1):  # RTP and its RTCP port
                try:
                    sock.sendto(junk(rng, n), (target[0], port))
                except OSError:
                    pass  # nothing listening yet (ICMP unreachable): keep spraying
                n += 1
            sent[0] = n
            await asyncio.sleep(0.005)


async def keyed_call(server: RunningServer, spray_first: bool) -> tuple[bool, list[tuple[float, float]], int]:
    """A call keying 12#; returns (ended by the IVR, heard segments after the keys, junk sent)."""
    stop = asyncio.Event()
    sent = [0]
    sprayer = None
    if spray_first:  # port spraying: the attack is under way before the call even starts
        sprayer = asyncio.create_task(spray((server.address[0], RTP_BASE), stop, sent))
        await asyncio.sleep(0.3)
    caller = Engine(EngineConfig(port=0, user="tester", rtp_low=47500, rtp_high=47998))
    await caller.start()
    host, port = server.address
    try:
        call = await caller.dial(f"sip:ivr@{host}:{port}", record=True)
        if sprayer is None:
            await asyncio.sleep(0.5)  # the call's media is flowing both ways: now attack
            sprayer = asyncio.create_task(spray(call.info.remote_address, stop, sent))
        await asyncio.sleep(2.5)  # greeting and the digits prompt play while the junk arrives
        keys_at = len(call.media._recording or []) * 160 / 8000
        call.send_dtmf("12#")
        ended_by_ivr = await call.wait_ended(12)
        stop.set()
        await sprayer
        recording = call.media.stop_recording()
        if call.active:
            call.hangup()
    finally:
        stop.set()
        await caller.stop(drain_timeout=0.5)
    heard = [(start, end) for start, end in speech_segments(recording) if end > keys_at]
    return ended_by_ivr, heard, sent[0]


def run(tmp_path: Path, spray_first: bool) -> None:
    with ivr_server(tmp_path, rtp_base=RTP_BASE) as server:
        ended_by_ivr, heard, sent = asyncio.run(keyed_call(server, spray_first))
        assert server.process.poll() is None, "the server died"
        assert answers_options(server.address), "the server stopped answering"
        lines = server.log_lines()
    assert sent > 300, "the attack did not run"
    ended = [line for line in lines if line.get("event") == "call ended"]
    assert len(ended) == 1, ended
    record = ended[0]
    # The IVR heard the caller's keys and only those: no injected 9, nothing lost to the junk.
    assert record["keys"] == "12#", record
    assert ended_by_ivr and record["ended_by"] == "local", record
    # ... and the caller heard the read-back: the IVR's audio still went to the caller.
    assert heard and heard[-1][1] - heard[0][0] > 1.0, heard
    # The junk was seen, and counted rather than played.
    assert int(str(record["rtp_foreign"])) + int(str(record["rtp_malformed"])) > 100, record


def test_hostile_rtp_during_a_call_neither_crashes_nor_hijacks_it(tmp_path: Path) -> None:
    run(tmp_path, spray_first=False)


def test_rtp_sprayed_before_the_call_does_not_capture_its_media(tmp_path: Path) -> None:
    run(tmp_path, spray_first=True)
