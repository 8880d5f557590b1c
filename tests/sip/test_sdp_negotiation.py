"""SDP offer/answer (RFC 3264): codec choice, answers, and one call's exchanges, with plain objects."""

from __future__ import annotations

import itertools

import pytest

from ivr.sip.errors import NotAcceptableHere
from ivr.sip.negotiation import (
    OFFER_ANSWER,
    Exchange,
    Negotiated,
    NegotiationStateError,
    OfferAnswerState,
    SdpNegotiation,
    build_answer,
    negotiate,
    next_offer_answer_state,
)
from ivr.sip.sdp import MediaOffer, PayloadFormat, SessionDescription, audio_media, parse_sdp

from .test_sdp import OFFER

# --- codec choice and the answer to one offer -----------------------------------------------------


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


# --- one call's exchanges -------------------------------------------------------------------------

State = OfferAnswerState
HOST, PORT = "192.0.2.50", 30000
OFFER_NO_COMMON_CODEC = OFFER.replace(b"8 0 18 101", b"18").replace(b"a=rtpmap:8 PCMA", b"a=x:8")
OFFER_NO_AUDIO = b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nc=IN IP4 h\r\nt=0 0\r\nm=video 5 RTP/AVP 31\r\n"
# RFC 3264 §8.4: the caller puts us on hold.
HOLD_OFFER = OFFER.replace(b"a=sendrecv", b"a=sendonly")


def _ours(body: bytes, version: int, session_id: int = 7) -> SessionDescription:
    """Our SDP, parsed, after checking its o= line."""
    sd = parse_sdp(body)
    assert (sd.origin.session_id, sd.origin.session_version) == (str(session_id), str(version))
    assert (sd.connection, sd.origin.address) == (HOST, HOST)
    return sd


def _formats(sd: SessionDescription) -> list[str]:
    audio = audio_media(sd)
    assert audio is not None and audio.port == PORT
    return [f"{c.payload_type} {c.name}" for c in audio.codecs]


def test_we_call_offer_then_answer() -> None:
    sdp = SdpNegotiation(7)
    offer = _ours(sdp.make_offer(HOST, PORT), version=1)
    assert _formats(offer) == ["0 PCMU", "8 PCMA", "101 telephone-event"]
    assert offer.media[0].attribute("sendrecv") == "" and sdp.state is State.OFFER_SENT
    negotiated = sdp.receive_answer(OFFER)  # any SDP will do as the far end's answer
    assert (negotiated.codec.name, negotiated.dtmf_payload_type) == ("PCMA", 101)
    assert sdp.negotiated == negotiated and sdp.state is State.STABLE and sdp.version == 1


def test_we_call_without_telephone_events() -> None:
    sdp = SdpNegotiation(7, telephone_events=False)
    assert sdp.dtmf_payload_type is None
    assert _formats(_ours(sdp.make_offer(HOST, PORT), version=1)) == ["0 PCMU", "8 PCMA"]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (None, "no SDP"),
        (b"", "no SDP"),
        (b"v=0\r\nnot sdp", "SDP: bad line 'not sdp'"),
        (OFFER_NO_AUDIO, "no audio stream over RTP"),
        (OFFER_NO_COMMON_CODEC, "no codec in common"),
    ],
)
def test_an_answer_we_cannot_use_is_488_and_changes_nothing(body: bytes | None, detail: str) -> None:
    sdp = SdpNegotiation(7)
    sdp.make_offer(HOST, PORT)
    with pytest.raises(NotAcceptableHere) as info:
        sdp.receive_answer(body)
    assert (info.value.status, info.value.reason, info.value.detail) == (488, "Not Acceptable Here", detail)
    assert sdp.state is State.OFFER_SENT and sdp.negotiated is None


def test_we_are_called_with_an_offer() -> None:
    sdp = SdpNegotiation(7, ["PCMU"])
    negotiated = sdp.receive_offer(OFFER)
    assert negotiated is not None and negotiated.codec.name == "PCMU"  # our list, the offer's order
    assert (negotiated.remote_address, negotiated.remote_port) == ("192.0.2.101", 49172)
    assert sdp.state is State.OFFER_RECEIVED
    answer = _ours(sdp.make_answer(HOST, PORT), version=1)
    assert [(m.media, m.port) for m in answer.media] == [("audio", PORT), ("video", 0)]
    assert _formats(answer) == ["0 PCMU", "101 telephone-event"]
    assert sdp.state is State.STABLE


@pytest.mark.parametrize("body", [b"v=0\r\nnot sdp", OFFER_NO_AUDIO, OFFER_NO_COMMON_CODEC])
def test_an_offer_we_cannot_take_is_488(body: bytes) -> None:
    sdp = SdpNegotiation(7)
    with pytest.raises(NotAcceptableHere):
        sdp.receive_offer(body)
    assert (sdp.state, sdp.version, sdp.negotiated) == (State.IDLE, 0, None)


@pytest.mark.parametrize("body", [None, b""])
def test_late_offer_we_offer_in_the_200(body: bytes | None) -> None:
    sdp = SdpNegotiation(7)
    assert sdp.receive_offer(body) is None and sdp.state is State.IDLE
    ours = _ours(sdp.make_answer(HOST, PORT), version=1)
    assert _formats(ours) == ["0 PCMU", "8 PCMA", "101 telephone-event"]
    assert sdp.state is State.OFFER_SENT  # its answer would come in the ACK


def test_reinvites_are_answered_with_the_version_growing() -> None:
    sdp = SdpNegotiation(7)
    sdp.receive_offer(OFFER)
    sdp.make_answer(HOST, PORT)
    held = sdp.receive_offer(HOLD_OFFER)
    assert held is not None and held.direction == "recvonly" and held.on_hold
    answer = _ours(sdp.make_answer(HOST, PORT), version=2)
    assert answer.media[0].attribute("recvonly") == ""
    resumed = sdp.receive_offer(OFFER)
    assert resumed is not None and not resumed.on_hold
    _ours(sdp.make_answer(HOST, PORT), version=3)
    assert sdp.negotiated == resumed and sdp.state is State.STABLE


@pytest.mark.parametrize(
    ("body", "detail"),
    [(None, "re-INVITE without an offer"), (OFFER_NO_AUDIO, "no audio stream over RTP")],
)
def test_a_refused_reinvite_leaves_the_session_as_it_was(body: bytes | None, detail: str) -> None:
    sdp = SdpNegotiation(7)
    sdp.make_offer(HOST, PORT)
    before = sdp.receive_answer(OFFER)
    with pytest.raises(NotAcceptableHere) as info:
        sdp.receive_offer(body)
    assert info.value.detail == detail
    assert (sdp.state, sdp.version, sdp.negotiated) == (State.STABLE, 1, before)  # RFC 3261 §14.2
    sdp.receive_offer(HOLD_OFFER)  # and the next good one is answered as usual
    _ours(sdp.make_answer(HOST, PORT), version=2)


def test_an_offer_after_our_late_offer_is_answered() -> None:
    sdp = SdpNegotiation(7)
    sdp.receive_offer(None)
    sdp.make_answer(HOST, PORT)  # our offer; its answer went in an ACK we do not read
    assert sdp.receive_offer(HOLD_OFFER) is not None
    _ours(sdp.make_answer(HOST, PORT), version=2)
    assert sdp.state is State.STABLE


def _offer_overtaken_by_a_reinvite() -> tuple[SdpNegotiation, Negotiated | None]:
    """We called; the far end re-INVITEd right behind its 200, and we read the re-INVITE first."""
    sdp = SdpNegotiation(7)
    sdp.make_offer(HOST, PORT)
    held = sdp.receive_offer(HOLD_OFFER)
    sdp.make_answer(HOST, PORT)
    return sdp, held


def test_a_reinvite_read_before_the_200_it_follows_wins() -> None:
    sdp, held = _offer_overtaken_by_a_reinvite()
    assert held is not None and sdp.receive_answer(OFFER) == held  # the later exchange stands
    assert (sdp.state, sdp.version, sdp.negotiated) == (State.STABLE, 2, held)


def test_an_overtaken_answer_is_still_checked() -> None:
    sdp, _ = _offer_overtaken_by_a_reinvite()
    with pytest.raises(NotAcceptableHere):
        sdp.receive_answer(OFFER_NO_AUDIO)


def test_a_reoffer_of_ours_bumps_the_version() -> None:
    sdp = SdpNegotiation(7)
    sdp.receive_offer(OFFER)
    sdp.make_answer(HOST, PORT)
    _ours(sdp.make_offer(HOST, PORT), version=2)
    assert sdp.state is State.OFFER_SENT


@pytest.mark.parametrize(
    ("state", "exchange"),
    list(itertools.product(OfferAnswerState, Exchange)),
    ids=[f"{s.name}-{e.name}" for s, e in itertools.product(OfferAnswerState, Exchange)],
)
def test_every_pair_moves_as_the_table_says_or_is_a_state_error(
    state: OfferAnswerState, exchange: Exchange
) -> None:
    expected = {
        (State.IDLE, Exchange.SEND_OFFER): State.OFFER_SENT,
        (State.IDLE, Exchange.RECEIVE_OFFER): State.OFFER_RECEIVED,
        (State.OFFER_SENT, Exchange.RECEIVE_ANSWER): State.STABLE,
        (State.OFFER_SENT, Exchange.RECEIVE_OFFER): State.OFFER_RECEIVED,
        (State.OFFER_RECEIVED, Exchange.SEND_ANSWER): State.STABLE,
        (State.STABLE, Exchange.RECEIVE_OFFER): State.OFFER_RECEIVED,
        (State.STABLE, Exchange.SEND_OFFER): State.OFFER_SENT,
    }
    assert expected == OFFER_ANSWER
    if (state, exchange) in expected:
        assert next_offer_answer_state(state, exchange) is expected[(state, exchange)]
        return
    with pytest.raises(NegotiationStateError) as info:
        next_offer_answer_state(state, exchange)
    assert (info.value.state, info.value.exchange) == (state, exchange)


def test_asking_out_of_turn_is_a_state_error_not_a_488() -> None:
    sdp = SdpNegotiation(7)
    with pytest.raises(NegotiationStateError):
        sdp.receive_answer(OFFER)  # we offered nothing
    sdp.receive_offer(OFFER)
    sdp.make_answer(HOST, PORT)
    with pytest.raises(NegotiationStateError):
        sdp.make_answer(HOST, PORT)  # nothing to answer
    assert (sdp.state, sdp.version) == (State.STABLE, 1)
