"""The engine's SDP glue over real UDP on 127.0.0.1: re-INVITEs, a late offer, a refused offer.

The offer/answer policy itself is tested with plain objects in tests/sip/test_sdp_negotiation.py;
here one engine is called by a bare user agent core driven by hand, and what the engine hands its
own core to send is recorded on the way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable

from ivr.call.call import Call
from ivr.call.engine import Engine, EngineConfig
from ivr.sip.negotiation import OFFER_FORMATS
from ivr.sip.sdp import PayloadFormat, SessionDescription, audio_media, build_sdp, parse_sdp

CALLER_PORT = 43500  # the caller's (fake) RTP port, only written into its SDP


def _offer(direction: str, formats: list[PayloadFormat] | None = None, version: int = 1) -> bytes:
    return build_sdp("127.0.0.1", CALLER_PORT, formats or list(OFFER_FORMATS), 101, direction, 99, version)


class Recorder:
    """Wraps one method of the engine's user agent core, keeping every argument tuple it got."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.calls: list[tuple[object, ...]] = []
        ua = engine.endpoint.ua
        original: Callable[..., None] = getattr(ua, name)

        def record(*args: object) -> None:
            self.calls.append(args)
            original(*args)

        setattr(ua, name, record)

    async def wait(self, count: int) -> None:
        for _ in range(200):
            if len(self.calls) >= count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"expected {count} calls, got {len(self.calls)}")


def _answered(sdp: object) -> SessionDescription:
    assert isinstance(sdp, bytes)
    return parse_sdp(sdp)


async def _stay(call: Call) -> None:
    await asyncio.sleep(3)  # longer than any scenario here: the caller hangs up first


@contextlib.asynccontextmanager
async def _engines() -> AsyncIterator[tuple[Engine, Engine, str]]:
    """The IVR's engine, a caller's engine, and the IVR's URI; both stopped on the way out."""
    server = Engine(EngineConfig(port=0, rtp_low=48000, rtp_high=48998), _stay)
    host, port = await server.start()
    caller = Engine(EngineConfig(port=0, user="tester", rtp_low=49000, rtp_high=49998))
    try:
        await caller.start()
        yield server, caller, f"sip:ivr@{host}:{port}"
    finally:
        for engine in (caller, server):
            await engine.stop(drain_timeout=0.5)


def test_reinvites_hold_refused_and_resumed() -> None:
    async def scenario() -> list[tuple[object, ...]]:
        async with _engines() as (server, caller, uri):
            answers = Recorder(server, "answer_reinvite")
            call = await caller.dial(uri)
            ua = caller.endpoint.ua
            offers = [
                _offer("sendonly", version=2),  # hold (RFC 3264 §8.4)
                _offer("sendrecv", [PayloadFormat(18, "G729", 8000)], version=3),  # nothing in common
                _offer("sendrecv", version=4),  # resume
            ]
            for count, offer in enumerate(offers, 1):
                caller.endpoint.act(functools.partial(ua.send_reinvite, call.call_id, offer))
                await answers.wait(count)
                await asyncio.sleep(0.05)  # the ACK, before the next re-INVITE
            call.hangup()
        return answers.calls

    held, refused, resumed = (sdp for _, sdp, _ in asyncio.run(scenario()))
    assert refused is None  # 488, the session as it was (RFC 3261 §14.2)
    held_sd, resumed_sd = _answered(held), _answered(resumed)
    # Our version grew once per answer we sent; the session id stayed.
    assert (held_sd.origin.session_version, resumed_sd.origin.session_version) == ("2", "3")
    assert held_sd.origin.session_id == resumed_sd.origin.session_id
    assert held_sd.media[0].attribute("recvonly") == ""
    assert resumed_sd.media[0].attribute("sendrecv") == ""


def test_an_invite_without_sdp_gets_our_offer_in_the_200() -> None:
    async def scenario() -> list[tuple[object, ...]]:
        async with _engines() as (server, caller, uri):
            answers = Recorder(server, "answer")
            ua = caller.endpoint.ua
            call_id = str(caller.endpoint.act(lambda now: ua.invite(uri, b"", now)))
            await answers.wait(1)
            await asyncio.sleep(0.05)
            caller.endpoint.act(lambda now: ua.hangup(call_id, now))
        return answers.calls

    ((_, sdp, _),) = asyncio.run(scenario())
    offer = _answered(sdp)
    audio = audio_media(offer)
    assert audio is not None and audio.direction == "sendrecv" and offer.origin.session_version == "1"
    assert [c.name for c in audio.codecs] == ["PCMU", "PCMA", "telephone-event"]


def test_an_offer_with_no_codec_in_common_is_refused_with_488() -> None:
    async def scenario() -> tuple[list[tuple[object, ...]], int]:
        async with _engines() as (server, caller, uri):
            rejects = Recorder(server, "reject")
            ua = caller.endpoint.ua
            offer = _offer("sendrecv", [PayloadFormat(18, "G729", 8000)])
            caller.endpoint.act(lambda now: ua.invite(uri, offer, now))
            await rejects.wait(1)
            return rejects.calls, server.active_calls

    ((_, status, _, reason),), active = asyncio.run(scenario())
    assert (status, reason) == (488, "Not Acceptable Here")
    assert active == 0
