"""SDP offer/answer for one call (RFC 3264; RFC 3261 §13.2.1, §14), sans-IO.

``sdp`` reads and writes session descriptions; this module decides what to do with them, which
the call engine used to decide inline: which codec we take, which direction we answer, when we
refuse with 488, what we offer, and which version our o= line carries.

Theory of operation
-------------------
One `SdpNegotiation` per call holds our side of every exchange. It takes the remote bodies as
they arrive and returns ours; it sends nothing, opens no socket and reads no clock, so the engine
stays the only place where SIP, RTP sockets and the media stream meet.

- **We call** (Engine.dial): `make_offer` gives the INVITE's body, `receive_answer` takes the
  200's and returns the media to use.
- **We are called with an offer**: `receive_offer` takes the INVITE's body and returns the media,
  `make_answer` gives the 200's body.
- **We are called without one** (late offer, RFC 3264 §5, RFC 3261 §13.2.1): `receive_offer(None)`
  returns None and `make_answer` gives our offer instead, for the 200. Its answer comes back in
  the ACK, which the UA core does not pass up: the media latches to the caller's first packets
  (symmetric RTP, RFC 4961) and our offer stays open until the caller's next offer replaces it.
- **Re-INVITE** (RFC 3261 §14.2): `receive_offer` and `make_answer` again. One without an offer
  is refused: we would have to offer in the 200 and take the answer from the ACK.

Refusals raise `NotAcceptableHere` (488) and change nothing: a declined re-INVITE leaves the
session as it was (§14.2). Which exchange may follow which is the table `OFFER_ANSWER`, in the
manner of the transaction and call tables; asking for a move it has no entry for is a bug in the
caller and raises `NegotiationStateError`.

Versions (RFC 4566 §5.2, RFC 3264 §8): the o= session id is fixed for the call; the version is 1
in the first SDP we send and grows by one in every later one, offer or answer.

Codec choice (`negotiate`): the first codec in the *offerer's* order that we support (RFC 3264
§6.1 lets the answerer choose, and following the offerer's preference is what phones expect),
plus telephone-event (RFC 4733) at the offered dynamic payload type. An answer (`build_answer`)
mirrors every offered m-line and disables the ones we do not take with port 0 (RFC 3264 §6), so
that video or T.38 lines in an offer do not cost a 488. Our offers carry PCMU and PCMA.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from ivr.sip.errors import NotAcceptableHere, SipParseError
from ivr.sip.sdp import (
    HOLD_ADDRESSES,
    MediaOffer,
    PayloadFormat,
    SessionDescription,
    audio_index,
    audio_lines,
    audio_media,
    build_sdp,
    parse_sdp,
    session_lines,
)

# What we offer, in our order of preference (G.711 both ways: every phone and trunk has one).
OFFER_FORMATS = (PayloadFormat(0, "PCMU", 8000), PayloadFormat(8, "PCMA", 8000))
# The dynamic payload type we offer telephone-event at (RFC 4733 §7.1.1: any dynamic type).
DTMF_PAYLOAD_TYPE = 101
SUPPORTED_CODECS = ("PCMU", "PCMA")


@dataclass
class Negotiated:
    codec: PayloadFormat
    dtmf_payload_type: int | None
    remote_address: str
    remote_port: int
    direction: str  # our direction in the answer

    @property
    def on_hold(self) -> bool:
        """The remote side put the call on hold: we must not send media."""
        return self.direction in ("recvonly", "inactive")


# RFC 3264 §6.1: the answer's direction mirrors the offer's.
_ANSWER_DIRECTION = {
    "sendrecv": "sendrecv", "sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive",
}  # fmt: skip
# Our answer direction with sending taken away.
_NO_SEND = {"sendrecv": "recvonly", "sendonly": "inactive", "recvonly": "recvonly", "inactive": "inactive"}


def negotiate(offer: MediaOffer, supported: Sequence[str] = SUPPORTED_CODECS) -> Negotiated | None:
    """Choose codec and telephone-event PT for the answer; None means no common codec (488)."""
    wanted = {name.upper() for name in supported}
    chosen: PayloadFormat | None = None
    dtmf: int | None = None
    for codec in offer.codecs:
        name = codec.name.upper()
        if name == "TELEPHONE-EVENT" and codec.clock_rate == 8000:
            if dtmf is None:
                dtmf = codec.payload_type
        elif chosen is None and name in wanted and codec.clock_rate == 8000:
            chosen = PayloadFormat(codec.payload_type, name, 8000, codec.fmtp)
    if chosen is None:
        return None
    direction = _ANSWER_DIRECTION.get(offer.direction, "sendrecv")
    if offer.address in HOLD_ADDRESSES:
        # RFC 3264 §8.4 (RFC 2543 hold): the remote cannot receive, so we do not send.
        direction = _NO_SEND[direction]
    return Negotiated(chosen, dtmf, offer.address, offer.port, direction)


def build_answer(
    offer: SessionDescription,
    negotiated: Negotiated,
    local_address: str,
    local_port: int,
    session_id: int,
    version: int,
) -> bytes:
    """An answer with one m-line per offered m-line, in order (RFC 3264 §6).

    The audio stream ``audio_media`` picked gets our codec; every other stream is refused with
    port 0, keeping its offered formats since an m-line needs at least one.
    """
    chosen = audio_index(offer)
    lines = session_lines(local_address, session_id, version)
    for index, m in enumerate(offer.media):
        if index == chosen:
            lines += audio_lines(
                local_port, [negotiated.codec], negotiated.dtmf_payload_type, negotiated.direction
            )
        else:
            lines.append(" ".join([f"m={m.media}", "0", m.proto, *(m.formats or ["0"])]))
    return ("\r\n".join(lines) + "\r\n").encode()


# --- one call's exchanges ----------------------------------------------------------------------


class OfferAnswerState(enum.Enum):
    IDLE = "no exchange yet"
    OFFER_SENT = "our offer sent, its answer awaited"
    OFFER_RECEIVED = "their offer received, our answer awaited"
    STABLE = "last offer answered"


class Exchange(enum.Enum):
    SEND_OFFER = "send offer"
    RECEIVE_ANSWER = "receive answer"
    RECEIVE_OFFER = "receive offer"
    SEND_ANSWER = "send answer"


class NegotiationStateError(Exception):
    """The engine asked for an exchange the negotiation's state does not allow: a bug."""

    def __init__(self, state: OfferAnswerState, exchange: Exchange) -> None:
        super().__init__(f"cannot {exchange.value} when {state.value}")
        self.state = state
        self.exchange = exchange


_O = OfferAnswerState
OFFER_ANSWER: dict[tuple[OfferAnswerState, Exchange], OfferAnswerState] = {
    (_O.IDLE, Exchange.SEND_OFFER): _O.OFFER_SENT,  # INVITE with our offer, or late offer in the 200
    (_O.IDLE, Exchange.RECEIVE_OFFER): _O.OFFER_RECEIVED,  # INVITE with an offer
    (_O.OFFER_SENT, Exchange.RECEIVE_ANSWER): _O.STABLE,  # the 200 to our INVITE
    # The UA core answers a re-INVITE crossing ours with 491 (§14.2), so an offer met here came
    # after the answer to ours: in an ACK we do not read (late offer), or in a 200 the engine has
    # not read yet (a re-INVITE right behind it; see receive_answer).
    (_O.OFFER_SENT, Exchange.RECEIVE_OFFER): _O.OFFER_RECEIVED,
    (_O.OFFER_RECEIVED, Exchange.SEND_ANSWER): _O.STABLE,
    (_O.STABLE, Exchange.RECEIVE_OFFER): _O.OFFER_RECEIVED,  # re-INVITE
    (_O.STABLE, Exchange.SEND_OFFER): _O.OFFER_SENT,  # a re-offer of ours
}


def next_offer_answer_state(state: OfferAnswerState, exchange: Exchange) -> OfferAnswerState:
    """The table's answer; raises NegotiationStateError when it has none."""
    following = OFFER_ANSWER.get((state, exchange))
    if following is None:
        raise NegotiationStateError(state, exchange)
    return following


class SdpNegotiation:
    """Our side of one call's offer/answer exchanges; see the module docstring."""

    def __init__(
        self, session_id: int, supported: Sequence[str] = SUPPORTED_CODECS, *, telephone_events: bool = True
    ) -> None:
        self.session_id = session_id
        self.supported = tuple(supported)
        # None offers no RFC 4733 events, like a trunk that sends keys as tones in the audio.
        self.dtmf_payload_type = DTMF_PAYLOAD_TYPE if telephone_events else None
        self.state = OfferAnswerState.IDLE
        self.version = 0  # of the last SDP we made; 0 before the first
        self.negotiated: Negotiated | None = None  # the media both sides last agreed on
        self._offer: SessionDescription | None = None  # the offer our next answer answers
        self._superseded = False  # an offer came before the answer to ours was read

    def make_offer(self, local_address: str, local_port: int) -> bytes:
        """Our offer: for an INVITE, or for the 200 to an INVITE that had none."""
        self._move(Exchange.SEND_OFFER)
        return build_sdp(
            local_address,
            local_port,
            list(OFFER_FORMATS),
            self.dtmf_payload_type,
            "sendrecv",
            self.session_id,
            self._next_version(),
        )

    def receive_answer(self, sdp: bytes | None) -> Negotiated:
        """The answer to our offer; NotAcceptableHere when it leaves us no audio we can use.

        The far end may re-INVITE right behind its 200, and the engine may read the re-INVITE
        first. Its offer then came after this answer and stands: the answer is still checked,
        but the media returned are the newer ones."""
        if self._superseded and self.negotiated is not None:
            self._read(sdp)
            self._superseded = False
            return self.negotiated
        self._check(Exchange.RECEIVE_ANSWER)
        _, negotiated = self._read(sdp)
        self._move(Exchange.RECEIVE_ANSWER)
        self.negotiated = negotiated
        return negotiated

    def receive_offer(self, sdp: bytes | None) -> Negotiated | None:
        """An offer in an INVITE or re-INVITE: the media to use once we have answered.

        None when an initial INVITE had no offer (late offer): `make_answer` then offers.
        NotAcceptableHere (488) for an offer we cannot take, or a re-INVITE without one."""
        if not sdp and self.state is OfferAnswerState.IDLE:
            return None
        self._check(Exchange.RECEIVE_OFFER)
        if not sdp:
            raise NotAcceptableHere("re-INVITE without an offer")
        offer, negotiated = self._read(sdp)
        self._superseded = self.state is OfferAnswerState.OFFER_SENT
        self._move(Exchange.RECEIVE_OFFER)
        self._offer = offer
        self.negotiated = negotiated
        return negotiated

    def make_answer(self, local_address: str, local_port: int) -> bytes:
        """The body of our 200: the answer to the offer received, or our offer if none came."""
        if self.state is OfferAnswerState.IDLE:
            return self.make_offer(local_address, local_port)  # late offer (RFC 3264 §5)
        self._move(Exchange.SEND_ANSWER)
        offer, negotiated = self._offer, self.negotiated
        assert offer is not None and negotiated is not None  # set together by receive_offer
        self._offer = None
        return build_answer(
            offer, negotiated, local_address, local_port, self.session_id, self._next_version()
        )

    # --- internals --------------------------------------------------------------------------

    def _read(self, sdp: bytes | None) -> tuple[SessionDescription, Negotiated]:
        """Parse and negotiate, or refuse; nothing of ours changes either way."""
        if not sdp:
            raise NotAcceptableHere("no SDP")
        try:
            description = parse_sdp(sdp)
        except SipParseError as exc:
            raise NotAcceptableHere(exc.reason) from None
        media = audio_media(description)
        if media is None:
            raise NotAcceptableHere("no audio stream over RTP")
        negotiated = negotiate(media, self.supported)
        if negotiated is None:
            raise NotAcceptableHere("no codec in common")
        return description, negotiated

    def _check(self, exchange: Exchange) -> OfferAnswerState:
        return next_offer_answer_state(self.state, exchange)

    def _move(self, exchange: Exchange) -> None:
        self.state = next_offer_answer_state(self.state, exchange)

    def _next_version(self) -> int:
        self.version += 1
        return self.version
