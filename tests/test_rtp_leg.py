"""RtpLeg: the one listener of a call's stream, handing key presses to the call and everything to
whoever subscribed to the call (a real RTP socket on 127.0.0.1, datagrams handed in directly)."""

from __future__ import annotations

import asyncio
import random

from ivr.call.call import Call, CallInfo
from ivr.call.rtp_leg import RtpLeg
from ivr.media.dtmf import DtmfEvent, DtmfStart, TelephoneEvent
from ivr.media.rtp import RtpPacket
from ivr.media.stream import MediaStream
from ivr.net.rtp_transport import RtpPortAllocator
from tests.media.listeners import Recorder

PHONE = ("127.0.0.1", 9)  # never sent to in this test: nothing listens there


def key(seq: int, end: bool) -> bytes:
    event = bytes(TelephoneEvent(5, end, 10, 160 * (seq + 1)))
    return bytes(RtpPacket(101, seq, 8000, 0x1111, event, seq == 0))


def test_the_leg_tells_the_call_its_keys_and_subscribers_everything() -> None:
    async def scenario() -> None:
        rtp = RtpPortAllocator("127.0.0.1", 47000, 47100).open()
        media = MediaStream("PCMU", 101, PHONE, rng=random.Random(1), jitter_depth=1)
        call = Call(CallInfo("leg-test", "inbound", "caller", "ivr", PHONE), media, lambda: None)
        leg = RtpLeg(media, rtp, call)
        try:
            assert media.listener is leg and rtp.on_datagram == media.receive
            told = Recorder()
            call.subscribe(told)
            call.subscribe(told)  # twice: still told once
            audio = bytes(RtpPacket(0, 1, 160, 0x1111, b"\xff" * 160))
            rtp.on_datagram(audio, PHONE, 1.0)
            leg.tick(1.0)
            leg.tick(1.02)
            for seq in range(4):
                rtp.on_datagram(key(seq, end=seq >= 2), PHONE, 1.03 + seq * 0.01)
            assert told.frames == [b"\xff" * 160, None]
            assert told.events == [DtmfStart("5", 8000), DtmfEvent("5", 8000, 480)]
            assert [press.digit for press in call.key_log] == ["5"]
            call.unsubscribe(told)
            leg.tick(1.04)
            assert len(told.frames) == 2
        finally:
            leg.close()
            rtp.close()
        assert media.listener is None  # no cycle left: call -> stream -> leg -> call

    asyncio.run(scenario())
