"""What the fuzzers check for one input, kept apart from atheris so the corpus replays without it.

Each ``check_*`` takes arbitrary bytes and returns normally when the code under test behaved;
anything it raises is a finding. The rule, as in h11's fuzz harness: parse it or refuse it with
our own error, never anything else; and where the UA core can answer, it answers with the status
the parser asked for (400 with a Warning that gives the reason, 416, 505, 513), otherwise the
datagram is dropped and counted.
"""

from __future__ import annotations

import random

from ivr.media.dtmf import DtmfReceiver, TelephoneEvent, TelephoneEventError
from ivr.media.rtp import RtpPacket, RtpParseError
from ivr.media.stream import MediaStream
from ivr.sip.errors import SipParseError
from ivr.sip.events import IncomingCall, MessageDropped, ReInviteReceived
from ivr.sip.framing import StreamFramer
from ivr.sip.message import SipRequest, SipResponse, parse_message, parse_via
from ivr.sip.ratelimit import is_scanner_request
from ivr.sip.sdp import audio_media, build_answer, negotiate, parse_sdp
from ivr.sip.useragent import UserAgent, UserAgentConfig

# Statuses the parser may ask for (RFC 3261 §21.4): bad request, unsupported URI scheme, message
# too large, version not supported.
PARSER_STATUSES = frozenset({400, 416, 505, 513})
PEER = ("192.0.2.9", 5070)
# MessageDropped reasons that mean an exception escaped the core's own handling: a bug.
_SAFETY_NETS = ("error handling message", "error in timer")


class Finding(AssertionError):
    """The code under test broke one of the rules above."""


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise Finding(what)


# --- SIP --------------------------------------------------------------------------------------


def parse_or_refuse(data: bytes) -> SipRequest | SipResponse | SipParseError:
    """``parse_message`` under the rule; returns the message or the error it raised."""
    try:
        message = parse_message(data)
    except SipParseError as exc:
        _expect(exc.status in PARSER_STATUSES, f"parser asked for status {exc.status}")
        _expect(bool(exc.reason), "a parse error without a reason")
        # The catch-all in parse_message is a safety net; landing in it is a parser bug.
        _expect(not exc.reason.startswith("unparseable message"), f"parser crashed: {exc.reason}")
        return exc
    again = parse_message(bytes(message))
    _expect(again == message, "parse(bytes(parse(x))) != parse(x)")
    return message


def _drain(ua: UserAgent) -> list[object]:
    events: list[object] = []
    while (event := ua.next_event()) is not None:
        if isinstance(event, MessageDropped):
            _expect(not event.reason.startswith(_SAFETY_NETS), f"core crashed: {event.reason}")
        events.append(event)
    return events


def _sent(ua: UserAgent, now: float) -> list[SipRequest | SipResponse]:
    out = []
    for data, _addr in ua.datagrams_to_send():
        try:
            out.append(parse_message(data))
        except SipParseError as exc:
            raise Finding(f"the core sent something it cannot parse itself: {exc}") from None
    return out


# Our offer when an INVITE came without one (RFC 3264 §4: the 2xx then carries the offer).
_OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 3000 RTP/AVP 0\r\n"
)


def _answer_sdp(offer_sdp: bytes | None) -> bytes | None:
    """What the engine answers: None when the offer has no usable audio (it would send 488)."""
    return _OFFER if offer_sdp is None else check_sdp(offer_sdp)


def check_useragent(data: bytes, expected: SipRequest | SipResponse | SipParseError) -> None:
    """The UA core's datagram entry point: answers or drops as the parser said, never raises."""
    ua = UserAgent(UserAgentConfig(host="192.0.2.1", port=5060))
    now = 100.0
    ua.receive_datagram(data, PEER, now)
    events = _drain(ua)
    if not data.strip(b"\r\n"):
        _expect(not ua.datagrams_to_send() and ua.dropped == 0, "a keep-alive was answered or counted")
        return
    if isinstance(expected, SipParseError):
        _check_refusal(ua, expected, now)
        return
    sent = _sent(ua, now)
    if isinstance(expected, SipRequest) and is_scanner_request(expected):
        _expect(not sent, "a scanner got an answer")
        return
    # A well-formed message: whatever the core does next must not crash it either. Play the
    # engine's part: answer calls and re-INVITEs, take a retransmission, let every timer fire.
    for event in events:
        if isinstance(event, IncomingCall):
            answer = _answer_sdp(event.offer_sdp)
            if answer is None:
                ua.reject(event.call_id, 488, now)
            else:
                ua.answer(event.call_id, answer, now)
    ua.receive_datagram(data, PEER, now + 0.1)
    for event in _drain(ua):
        if isinstance(event, ReInviteReceived):
            ua.answer_reinvite(event.call_id, _answer_sdp(event.offer_sdp), now + 0.1)
    for step in (0.6, 5.0, 40.0, 100.0):
        ua.handle_timer(now + step)
        _drain(ua)
    for call_id in list(ua._calls):
        ua.hangup(call_id, now + 101)
    ua.handle_timer(now + 200)
    _drain(ua)
    _sent(ua, now + 200)


def _routable(request: SipRequest) -> bool:
    """Whether a response could find its way back: the top Via is usable (RFC 3261 §18.2.2).

    A start-line error (416, 505) is raised before the header fields are checked, so the partial
    request it carries may have a Via nobody could answer to; then the datagram is only dropped.
    """
    try:
        parse_via(request.headers.get("Via") or "")
    except SipParseError:
        return False
    return True


def _check_refusal(ua: UserAgent, error: SipParseError, now: float) -> None:
    """A malformed request is answered once with the parser's status; anything else is dropped."""
    sent = ua.datagrams_to_send()
    partial = error.partial
    if partial is None or partial.method == "ACK" or not _routable(partial):
        _expect(not sent, "an unparseable datagram was answered")
        _expect(ua.dropped == 1, "an unparseable datagram was not counted")
        return
    _expect(len(sent) == 1, f"a malformed request got {len(sent)} answers, not 1")
    # The answer echoes the request's Via, From, To, Call-ID and CSeq (§8.2.6.2), malformed or
    # not, so only its own parts are checked: the status line and the Warning that says why.
    head = sent[0][0].split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    status = f"SIP/2.0 {error.status} ".encode()
    _expect(head[0].startswith(status), f"answered {head[0]!r}, not {error.status}")
    _expect(any(line.startswith(b"Warning: 399 ") for line in head), "a refusal without a Warning")
    _expect(ua.dropped == 1, "a refused request was not counted")


def check_framer(data: bytes) -> None:
    """A stream cut at arbitrary points frames the same messages, or fails with SipParseError."""
    whole = StreamFramer()
    pieces = StreamFramer()
    try:
        framed = whole.feed(data)
    except SipParseError as exc:
        _expect(exc.status in PARSER_STATUSES, f"framer asked for status {exc.status}")
        framed = None
    got: list[bytes] = []
    step = 1 + (data[0] % 97 if data else 0)
    try:
        for i in range(0, len(data), step):
            got += pieces.feed(data[i : i + step])
    except SipParseError:
        got = []
    if framed is not None:
        _expect(got == framed, "framing depends on how the stream was cut")
        for message in framed:
            parse_or_refuse(message)


def check_sip(data: bytes) -> None:
    expected = parse_or_refuse(data)
    check_useragent(data, expected)
    check_framer(data)


# --- SDP --------------------------------------------------------------------------------------


def check_sdp(data: bytes) -> bytes | None:
    """parse -> pick audio -> negotiate -> answer, as the engine does; returns the answer."""
    try:
        sd = parse_sdp(data)
    except SipParseError as exc:
        _expect(exc.status == 400, f"SDP parser asked for status {exc.status}")
        return None
    # Lines out of RFC 4566 order come back in order, so the check is that a second round changes
    # nothing more.
    once = bytes(sd)
    _expect(bytes(parse_sdp(once)) == once, "SDP does not survive its own serialization")
    offer = audio_media(sd)
    if offer is None:
        return None
    negotiated = negotiate(offer)
    if negotiated is None:
        return None
    # RFC 3550 §5.1: a payload type is 7 bits; anything else cannot go into an RTP header.
    _expect(0 <= negotiated.codec.payload_type <= 127, "negotiated a codec PT outside 0-127")
    dtmf = negotiated.dtmf_payload_type
    _expect(dtmf is None or 0 <= dtmf <= 127, "negotiated a telephone-event PT outside 0-127")
    _expect(0 <= negotiated.remote_port <= 65535, "negotiated a port outside 0-65535")
    answer = build_answer(sd, negotiated, "192.0.2.1", 30000, 1, 1)
    try:
        parse_sdp(answer)
    except SipParseError as exc:
        raise Finding(f"our answer does not parse: {exc}") from None
    return answer


# --- RTP --------------------------------------------------------------------------------------

CALLER = ("192.0.2.20", 40000)
HOSTILE = ("203.0.113.66", 40000)


def datagrams(data: bytes) -> list[bytes]:
    """The corpus format for RTP: datagrams, each prefixed with its length (2 bytes, big-endian)."""
    out = []
    pos = 0
    while pos + 2 <= len(data) and len(out) < 64:
        size = int.from_bytes(data[pos : pos + 2], "big")
        out.append(data[pos + 2 : pos + 2 + size])
        pos += 2 + size
    return out or [data]


def frame(packets: list[bytes]) -> bytes:
    return b"".join(len(p).to_bytes(2, "big") + p for p in packets)


def _legit(seq: int) -> bytes:
    return bytes(RtpPacket(0, seq & 0xFFFF, (seq * 160) & 0xFFFF_FFFF, 0x5EED, b"\xff" * 160))


def check_rtp_packet(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data)
    except RtpParseError:
        return
    _expect(RtpPacket.parse(bytes(packet)) == packet, "RTP does not survive its own serialization")
    try:
        TelephoneEvent.parse(packet.payload)
    except TelephoneEventError:
        pass
    DtmfReceiver().feed(packet, 0.0)


def check_rtp(data: bytes) -> None:
    """Each datagram parses or is refused; a stream fed them never raises and is never hijacked."""
    packets = datagrams(data)
    for packet in packets:
        check_rtp_packet(packet)
    rng = random.Random(0)
    # The same datagrams from the caller's own address: jitter buffer, DTMF, SSRC changes, jumps.
    own = MediaStream("PCMU", 101, CALLER, rng=rng, inband_dtmf=True, record=True)
    # From a stranger while the caller keeps talking: none of it may be played or latched.
    other = MediaStream("PCMU", 101, CALLER, rng=rng)
    now = 0.0
    for seq, packet in enumerate(packets):
        now += 0.02
        own.receive(packet, CALLER, now)
        other.receive(_legit(seq), CALLER, now)
        other.receive(packet, HOSTILE, now)
        own.tick(now)
        own.pop_events()
        other.tick(now)
        _expect(other.latched == CALLER, "a stranger's RTP took over the call")
        # The caller sends silence (0xFF in mu-law), so any sound played out is the stranger's.
        heard = other.received_frame
        _expect(heard is None or not heard.any(), "a stranger's RTP reached the call's audio")
    _expect(other.stats.ssrc_changes == 0, "a stranger's SSRC replaced the caller's")
    own.stop_recording()
