"""SDP parsing/serialization (RFC 4566) and offer/answer (RFC 3264)."""

from __future__ import annotations

import pytest

from ivr.sip.errors import SipParseError
from ivr.sip.sdp import (
    MediaOffer,
    PayloadFormat,
    audio_media,
    build_answer,
    build_sdp,
    negotiate,
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


def test_negotiate_follows_offer_order() -> None:
    audio = audio_media(parse_sdp(OFFER))
    assert audio is not None
    n = negotiate(audio)
    assert n is not None
    assert (n.codec.payload_type, n.codec.name, n.dtmf_payload_type) == (8, "PCMA", 101)
    assert (n.remote_address, n.remote_port, n.direction, n.on_hold) == (
        "192.0.2.101",
        49172,
        "sendrecv",
        False,
    )
    n2 = negotiate(audio, ["PCMU"])
    assert n2 is not None and n2.codec.payload_type == 0


def test_negotiate_dynamic_payload_by_name() -> None:
    offer = MediaOffer(
        "192.0.2.1",
        4000,
        [
            PayloadFormat(96, "opus", 48000),
            PayloadFormat(97, "pcmu", 8000),
            PayloadFormat(98, "telephone-event", 48000),
            PayloadFormat(99, "telephone-event", 8000),
        ],
        "sendrecv",
    )
    n = negotiate(offer)
    assert (
        n is not None and n.codec.payload_type == 97 and n.codec.name == "PCMU" and n.dtmf_payload_type == 99
    )


def test_negotiate_no_common_codec_is_none() -> None:
    assert negotiate(MediaOffer("192.0.2.1", 4000, [PayloadFormat(18, "G729", 8000)], "sendrecv")) is None


@pytest.mark.parametrize(
    ("direction", "address", "answer"),
    [
        ("sendrecv", "192.0.2.1", "sendrecv"),
        ("sendonly", "192.0.2.1", "recvonly"),
        ("recvonly", "192.0.2.1", "sendonly"),
        ("inactive", "192.0.2.1", "inactive"),
        ("sendrecv", "0.0.0.0", "recvonly"),
        ("sendonly", "0.0.0.0", "recvonly"),
        ("recvonly", "0.0.0.0", "inactive"),
        ("inactive", "0.0.0.0", "inactive"),
    ],
)
def test_hold_directions(direction: str, address: str, answer: str) -> None:
    n = negotiate(MediaOffer(address, 4000, [PayloadFormat(0, "PCMU", 8000)], direction))
    assert n is not None and n.direction == answer
    assert n.on_hold == (answer in ("recvonly", "inactive"))


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


def test_build_answer_mirrors_m_lines_and_refuses_video() -> None:
    sd = parse_sdp(OFFER)
    audio = audio_media(sd)
    assert audio is not None
    n = negotiate(audio)
    assert n is not None
    answer = parse_sdp(build_answer(sd, n, "192.0.2.50", 30000, 7, 1))
    assert [(m.media, m.port) for m in answer.media] == [("audio", 30000), ("video", 0)]
    assert answer.media[0].formats == ["8", "101"]
    assert answer.media[1].formats == ["31"]
    assert answer.media[0].attribute("sendrecv") == ""


def test_build_answer_with_audio_after_refused_stream() -> None:
    sd = parse_sdp(
        b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        b"m=image 9000 udptl t38\r\nm=audio 5000 RTP/SAVP 0\r\nm=audio 5002 RTP/AVP 0\r\n"
    )
    audio = audio_media(sd)
    assert audio is not None and audio.port == 5002
    n = negotiate(audio)
    assert n is not None
    answer = parse_sdp(build_answer(sd, n, "192.0.2.50", 30000, 7, 1))
    assert [(m.media, m.port, m.proto) for m in answer.media] == [
        ("image", 0, "udptl"),
        ("audio", 0, "RTP/SAVP"),
        ("audio", 30000, "RTP/AVP"),
    ]
