"""SDP (RFC 4566) parsing and serialization, and the offer/answer rules of RFC 3264 for one audio stream.

We answer offers; we do not make multi-stream offers. ``negotiate`` picks the first codec in the
*offerer's* order that we support (RFC 3264 §6.1 lets the answerer choose, and following the
offerer's preference is what phones expect), plus telephone-event (RFC 4733) at the offered
dynamic payload type. ``build_answer`` mirrors every offered m-line, disabling the ones we do not
take with port 0 (RFC 3264 §6), so that video or T.38 lines in an offer do not cost a 488.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ivr.sip.errors import SipParseError

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
# RFC 3551 §6 static payload types we may meet without an rtpmap line.
STATIC_PAYLOADS = {
    0: ("PCMU", 8000), 3: ("GSM", 8000), 4: ("G723", 8000), 8: ("PCMA", 8000), 9: ("G722", 8000),
    13: ("CN", 8000), 18: ("G729", 8000),
}  # fmt: skip
RTP_PROFILES = ("RTP/AVP", "RTP/AVPF")
# RFC 3264 §8.4: c=0.0.0.0 is the RFC 2543 way of putting a stream on hold.
HOLD_ADDRESSES = ("0.0.0.0", "::")
# RFC 4566 §5: order of the session-level lines between s= and t=.
_SESSION_ORDER = {"i": 0, "u": 1, "e": 2, "p": 3, "b": 5}


@dataclass
class PayloadFormat:
    """One RTP payload format of an m-line: its number and what its rtpmap/fmtp say (RFC 4566 §6).

    Not a codec implementation (those are in ivr.media); telephone-event is a payload format too."""

    payload_type: int
    name: str
    clock_rate: int
    fmtp: str | None = None


@dataclass
class Origin:
    username: str = "-"
    session_id: str = "0"
    session_version: str = "0"
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.session_version} "
            f"{self.nettype} {self.addrtype} {self.address}"
        )


@dataclass
class MediaDescription:
    media: str
    port: int
    proto: str
    formats: list[str]
    connection: str | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    extra: list[tuple[str, str]] = field(default_factory=list)  # i=, b=, k= lines, kept verbatim
    port_count: int | None = None

    def attribute(self, name: str) -> str | None:
        for key, value in self.attributes:
            if key == name:
                return value if value is not None else ""
        return None


@dataclass
class SessionDescription:
    origin: Origin = field(default_factory=Origin)
    session_name: str = "-"
    connection: str | None = None
    timing: list[str] = field(default_factory=lambda: ["0 0"])
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    extra: list[tuple[str, str]] = field(default_factory=list)  # i= u= e= p= b= r= z= k=
    version: int = 0

    def __bytes__(self) -> bytes:
        lines = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        extra = sorted(self.extra, key=lambda item: _SESSION_ORDER.get(item[0], 9))
        lines += [f"{k}={v}" for k, v in extra if _SESSION_ORDER.get(k, 9) < 4]
        if self.connection is not None:
            lines.append(f"c={_connection_line(self.connection)}")
        lines += [f"{k}={v}" for k, v in extra if _SESSION_ORDER.get(k, 9) == 5]
        lines += [f"t={t}" for t in self.timing]
        lines += [f"{k}={v}" for k, v in extra if _SESSION_ORDER.get(k, 9) == 9]
        lines += [_attribute_line(k, v) for k, v in self.attributes]
        for m in self.media:
            port = f"{m.port}/{m.port_count}" if m.port_count is not None else str(m.port)
            lines.append(" ".join([f"m={m.media}", port, m.proto, *m.formats]))
            lines += [f"{k}={v}" for k, v in m.extra if k == "i"]
            if m.connection is not None:
                lines.append(f"c={_connection_line(m.connection)}")
            lines += [f"{k}={v}" for k, v in m.extra if k != "i"]
            lines += [_attribute_line(k, v) for k, v in m.attributes]
        return ("\r\n".join(lines) + "\r\n").encode()


def _connection_line(address: str) -> str:
    return f"IN {'IP6' if ':' in address else 'IP4'} {address}"


def _attribute_line(name: str, value: str | None) -> str:
    return f"a={name}" if value is None else f"a={name}:{value}"


def _number(text: str) -> bool:
    # str.isdigit() is also true for "²" and other Unicode digits, which int() refuses.
    return text.isascii() and text.isdigit()


def _payload_type(text: str) -> bool:
    """An RTP payload type: 7 bits (RFC 3550 §5.1); a larger format number is not one we can use."""
    return _number(text) and int(text) <= 127


def _bad(reason: str) -> SipParseError:
    return SipParseError(400, f"SDP: {reason}")


def _parse_connection(value: str) -> str:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN":
        raise _bad("bad c= line")
    # Multicast addresses carry "/ttl[/count]"; we only need the address itself, which must be
    # there: "c=IN IP4 /127" would leave us sending media to "" (found by the fuzzer).
    address = parts[2].split("/", 1)[0]
    if not address:
        raise _bad("bad c= line")
    return address


def parse_sdp(body: bytes) -> SessionDescription:
    """Parse an SDP body; malformed input raises SipParseError(400)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("not UTF-8") from None
    sd = SessionDescription()
    media: MediaDescription | None = None
    seen_version = seen_origin = False
    timing: list[str] = []
    for raw in text.split("\n"):
        line = raw.rstrip("\r")
        if not line:
            continue
        if len(line) < 2 or line[1] != "=" or not "a" <= line[0] <= "z":
            raise _bad(f"bad line {line[:20]!r}")
        kind, value = line[0], line[2:]
        if kind == "m":
            parts = value.split()
            if len(parts) < 3:
                raise _bad("bad m= line")
            port_text, _, count_text = parts[1].partition("/")
            if not _number(port_text) or int(port_text) > 65535 or (count_text and not _number(count_text)):
                raise _bad("bad m= port")
            media = MediaDescription(
                parts[0],
                int(port_text),
                parts[2],
                parts[3:],
                port_count=int(count_text) if count_text else None,
            )
            sd.media.append(media)
        elif kind == "a":
            name, colon, attr_value = value.partition(":")
            pair = (name, attr_value if colon else None)
            (media.attributes if media else sd.attributes).append(pair)
        elif kind == "c":
            address = _parse_connection(value)
            if media:
                media.connection = address
            else:
                sd.connection = address
        elif media is not None:
            media.extra.append((kind, value))
        elif kind == "v":
            if value.strip() != "0":
                raise _bad("unsupported version")
            seen_version = True
        elif kind == "o":
            parts = value.split()
            if len(parts) != 6:
                raise _bad("bad o= line")
            sd.origin = Origin(*parts)
            seen_origin = True
        elif kind == "s":
            sd.session_name = value
        elif kind == "t":
            timing.append(value)
        else:
            sd.extra.append((kind, value))
    if not seen_version or not seen_origin:
        raise _bad("missing v= or o= line")
    if timing:
        sd.timing = timing
    return sd


def _audio_index(sd: SessionDescription) -> int | None:
    """The audio m-line we take: the first active one over plain RTP (we do not do SRTP)."""
    for index, m in enumerate(sd.media):
        if m.media == "audio" and m.port != 0 and m.proto.upper() in RTP_PROFILES:
            return index
    return None


def _direction(attributes: list[tuple[str, str | None]]) -> str | None:
    for name, value in attributes:
        if value is None and name in DIRECTIONS:
            return name
    return None


def _ptime(attributes: list[tuple[str, str | None]]) -> int | None:
    for name, value in attributes:
        if name == "ptime" and value:
            try:
                return int(float(value))
            except (ValueError, OverflowError):  # "nan", "inf"
                return None
    return None


@dataclass
class MediaOffer:
    """What one side says about its audio stream."""

    address: str
    port: int
    codecs: list[PayloadFormat]
    direction: str
    ptime: int | None = None


def audio_media(sd: SessionDescription) -> MediaOffer | None:
    """The remote audio stream, or None when there is no usable one (no audio, only SRTP, no c=)."""
    index = _audio_index(sd)
    if index is None:
        return None
    m = sd.media[index]
    address = m.connection or sd.connection
    if address is None:
        return None
    rtpmap: dict[int, tuple[str, int]] = {}
    fmtp: dict[int, str] = {}
    for name, value in m.attributes:
        if name in ("rtpmap", "fmtp") and value:
            pt_text, _, rest = value.partition(" ")
            if not _payload_type(pt_text):
                continue
            if name == "fmtp":
                fmtp[int(pt_text)] = rest.strip()
                continue
            encoding = rest.strip().split("/")
            if len(encoding) >= 2 and _number(encoding[1]):
                rtpmap[int(pt_text)] = (encoding[0], int(encoding[1]))
    codecs: list[PayloadFormat] = []
    for fmt in m.formats:
        if not _payload_type(fmt):
            continue
        pt = int(fmt)
        name, rate = rtpmap.get(pt) or STATIC_PAYLOADS.get(pt) or ("", 0)
        codecs.append(PayloadFormat(pt, name, rate, fmtp.get(pt)))
    direction = _direction(m.attributes) or _direction(sd.attributes) or "sendrecv"
    ptime = _ptime(m.attributes) or _ptime(sd.attributes)
    return MediaOffer(address, m.port, codecs, direction, ptime)


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


def negotiate(offer: MediaOffer, supported: Sequence[str] = ("PCMU", "PCMA")) -> Negotiated | None:
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


def _audio_section(
    local_address: str,
    local_port: int,
    codecs: list[PayloadFormat],
    dtmf_payload_type: int | None,
    direction: str,
) -> list[str]:
    formats = [str(c.payload_type) for c in codecs]
    if dtmf_payload_type is not None:
        formats.append(str(dtmf_payload_type))
    lines = [f"m=audio {local_port} RTP/AVP {' '.join(formats)}"]
    for c in codecs:
        lines.append(f"a=rtpmap:{c.payload_type} {c.name}/{c.clock_rate}")
        if c.fmtp:
            lines.append(f"a=fmtp:{c.payload_type} {c.fmtp}")
    if dtmf_payload_type is not None:
        lines.append(f"a=rtpmap:{dtmf_payload_type} telephone-event/8000")
        lines.append(f"a=fmtp:{dtmf_payload_type} 0-16")
    lines.append("a=ptime:20")
    lines.append(f"a={direction}")
    return lines


def _session_head(local_address: str, session_id: int, version: int) -> list[str]:
    addrtype = "IP6" if ":" in local_address else "IP4"
    return [
        "v=0",
        f"o=- {session_id} {version} IN {addrtype} {local_address}",
        "s=-",
        f"c=IN {addrtype} {local_address}",
        "t=0 0",
    ]


def build_sdp(
    local_address: str,
    local_port: int,
    codecs: list[PayloadFormat],
    dtmf_payload_type: int | None,
    direction: str,
    session_id: int,
    version: int,
) -> bytes:
    """An SDP with one audio stream (our offers, and answers to audio-only offers)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"bad direction {direction!r}")
    lines = _session_head(local_address, session_id, version)
    lines += _audio_section(local_address, local_port, codecs, dtmf_payload_type, direction)
    return ("\r\n".join(lines) + "\r\n").encode()


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
    chosen = _audio_index(offer)
    lines = _session_head(local_address, session_id, version)
    for index, m in enumerate(offer.media):
        if index == chosen:
            lines += _audio_section(
                local_address,
                local_port,
                [negotiated.codec],
                negotiated.dtmf_payload_type,
                negotiated.direction,
            )
        else:
            lines.append(" ".join([f"m={m.media}", "0", m.proto, *(m.formats or ["0"])]))
    return ("\r\n".join(lines) + "\r\n").encode()
