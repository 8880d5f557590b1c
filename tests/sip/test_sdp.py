"""SDP parsing and serialization (RFC 4566); offer/answer is in test_sdp_negotiation."""

from __future__ import annotations

import pytest

from ivr.sip.errors import SipParseError
from ivr.sip.sdp import (
    PayloadFormat,
    audio_media,
    build_sdp,
    parse_sdp,
)

OFFER = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 host.atlanta.example.com\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.101\r\n"
    b"t=0 0\r\n"
    b"m=audio 49172 RTP/AVP 8 0 18 101\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:18 G729/8000\r\n"
    b"a=fmtp:18 annexb=no\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\n"
    b"a=ptime:20\r\n"
    b"a=sendrecv\r\n"
    b"m=video 51372 RTP/AVP 31\r\n"
    b"a=rtpmap:31 H261/90000\r\n"
)


def test_parse_and_audio_media() -> None:
    sd = parse_sdp(OFFER)
    assert sd.origin.username == "alice" and sd.connection == "192.0.2.101"
    assert [m.media for m in sd.media] == ["audio", "video"]
    audio = audio_media(sd)
    assert audio is not None
    assert (audio.address, audio.port, audio.direction, audio.ptime) == ("192.0.2.101", 49172, "sendrecv", 20)
    assert [(c.payload_type, c.name) for c in audio.codecs] == [
        (8, "PCMA"),
        (0, "PCMU"),
        (18, "G729"),
        (101, "telephone-event"),
    ]
    assert audio.codecs[2].fmtp == "annexb=no"


def test_round_trip_serialization() -> None:
    sd = parse_sdp(OFFER)
    assert bytes(sd) == OFFER
    assert parse_sdp(bytes(sd)) == sd


def test_media_level_direction_and_connection_override_session() -> None:
    sd = parse_sdp(
        b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\na=sendonly\r\n"
        b"m=audio 5000 RTP/AVP 0\r\nc=IN IP4 192.0.2.9\r\na=inactive\r\n"
    )
    audio = audio_media(sd)
    assert audio is not None and audio.address == "192.0.2.9" and audio.direction == "inactive"
    sd2 = parse_sdp(
        b"v=0\no=- 1 1 IN IP4 h\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\na=sendonly\nm=audio 5000 RTP/AVP 0\n"
    )
    audio2 = audio_media(sd2)
    assert audio2 is not None and audio2.direction == "sendonly" and audio2.codecs[0].name == "PCMU"


def test_no_usable_audio() -> None:
    assert (
        audio_media(
            parse_sdp(b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nt=0 0\r\nm=video 5 RTP/AVP 31\r\n")
        )
        is None
    )
    # SRTP-only and disabled audio streams are not usable either
    assert (
        audio_media(
            parse_sdp(b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nt=0 0\r\nm=audio 5 RTP/SAVP 0\r\n")
        )
        is None
    )
    assert (
        audio_media(
            parse_sdp(b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n")
        )
        is None
    )
    assert (
        audio_media(parse_sdp(b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 5 RTP/AVP 0\r\n")) is None
    )


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"v=0\r\n",
        b"x\r\n",
        b"v=0\r\no=- 1 1 IN IP4\r\n",
        b"v=1\r\no=- 1 1 IN IP4 h\r\n",
        b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio x RTP/AVP 0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 h\r\nm=audio 5\r\n",
        b"v=0\r\no=- 1 1 IN IP4 h\r\nc=IN IP4\r\n",
        b"\xff\xfe",
        b"v=0\r\no=- 1 1 IN IP4 h\r\nm =video 1 RTP/AVP 0\r\n",
    ],
)
def test_malformed_sdp(body: bytes) -> None:
    with pytest.raises(SipParseError) as info:
        parse_sdp(body)
    assert info.value.status == 400


def test_build_sdp_contents() -> None:
    body = build_sdp(
        "192.0.2.50",
        20000,
        [PayloadFormat(0, "PCMU", 8000), PayloadFormat(8, "PCMA", 8000)],
        101,
        "sendrecv",
        42,
        1,
    )
    text = body.decode()
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    assert text.splitlines() == [
        "v=0",
        "o=- 42 1 IN IP4 192.0.2.50",
        "s=-",
        "c=IN IP4 192.0.2.50",
        "t=0 0",
        "m=audio 20000 RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=ptime:20",
        "a=sendrecv",
    ]
    # what we send parses back to what we meant
    audio = audio_media(parse_sdp(body))
    assert audio is not None and [c.name for c in audio.codecs] == ["PCMU", "PCMA", "telephone-event"]
    v6 = build_sdp("2001:db8::5", 20000, [PayloadFormat(0, "PCMU", 8000)], None, "recvonly", 1, 2).decode()
    assert "c=IN IP6 2001:db8::5" in v6 and "telephone-event" not in v6 and "a=recvonly" in v6
    with pytest.raises(ValueError):
        build_sdp("h", 1, [], None, "sideways", 1, 1)
