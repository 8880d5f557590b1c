"""RTP packets (RFC 3550 §5.1) and sequence/timestamp arithmetic.

`RtpPacket.parse` turns a datagram into a packet or raises `RtpParseError` with a message that says
exactly what was wrong; `bytes(packet)` is the inverse.  Nothing here does I/O.

Sequence numbers are 16 bits and timestamps 32 bits and both wrap (RFC 3550 §5.1, A.1), so every
comparison goes through `seq_diff` / `ts_diff`, which return the signed shortest distance.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

__all__ = [
    "RTP_HEADER_SIZE",
    "RTP_VERSION",
    "RtpExtension",
    "RtpPacket",
    "RtpParseError",
    "build_header",
    "seq_diff",
    "seq_gt",
    "ts_diff",
]

RTP_VERSION = 2
RTP_HEADER_SIZE = 12

_HEADER = struct.Struct("!BBHII")
_EXTENSION_HEADER = struct.Struct("!HH")


class RtpParseError(ValueError):
    """The datagram is not a well-formed RTP packet; the message says why."""


def seq_diff(a: int, b: int) -> int:
    """Signed distance a - b between 16-bit sequence numbers, in [-32768, 32767]."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def seq_gt(a: int, b: int) -> bool:
    """True if sequence number `a` comes after `b`, taking wraparound into account."""
    return seq_diff(a, b) > 0


def ts_diff(a: int, b: int) -> int:
    """Signed distance a - b between 32-bit RTP timestamps."""
    return ((a - b + 0x8000_0000) & 0xFFFF_FFFF) - 0x8000_0000


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """A header extension (RFC 3550 §5.3.1): 16-bit profile id and data in whole 32-bit words."""

    profile: int
    data: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.profile <= 0xFFFF:
            raise ValueError(f"extension profile {self.profile} does not fit in 16 bits")
        if len(self.data) % 4:
            raise ValueError(f"extension data is {len(self.data)} bytes, not a multiple of 4")
        if len(self.data) // 4 > 0xFFFF:
            raise ValueError("extension data is too long")


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet.  `padding` is the number of padding octets (0 = P bit clear)."""

    payload_type: int = 0
    sequence_number: int = 0
    timestamp: int = 0
    ssrc: int = 0
    payload: bytes = b""
    marker: bool = False
    csrc: list[int] = field(default_factory=list)
    extension: RtpExtension | None = None
    padding: int = 0
    version: int = RTP_VERSION

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Decode a datagram; raise `RtpParseError` (and nothing else) when it is not valid RTP."""
        length = len(data)
        if length < RTP_HEADER_SIZE:
            raise RtpParseError(f"RTP packet is {length} bytes, shorter than the 12-byte fixed header")
        first, second, seq, timestamp, ssrc = _HEADER.unpack_from(data)
        version = first >> 6
        if version != RTP_VERSION:
            raise RtpParseError(f"RTP version is {version}, expected 2")
        has_padding = bool(first & 0x20)
        has_extension = bool(first & 0x10)
        cc = first & 0x0F
        pos = RTP_HEADER_SIZE
        if length < pos + 4 * cc:
            raise RtpParseError(f"RTP packet is {length} bytes, too short for its {cc} CSRC identifiers")
        csrc = list(struct.unpack_from(f"!{cc}I", data, pos)) if cc else []
        pos += 4 * cc

        extension = None
        if has_extension:
            # RFC 3550 §5.3.1: 16-bit profile, 16-bit length in 32-bit words, then the words.
            if length < pos + 4:
                raise RtpParseError("RTP packet is too short for its header extension header")
            profile, words = _EXTENSION_HEADER.unpack_from(data, pos)
            pos += 4
            if length < pos + 4 * words:
                raise RtpParseError(
                    f"RTP header extension declares {4 * words} bytes, only {length - pos} present"
                )
            extension = RtpExtension(profile, bytes(data[pos : pos + 4 * words]))
            pos += 4 * words

        end = length
        padding = 0
        if has_padding:
            # RFC 3550 §5.1: the last octet counts the padding octets, itself included.
            padding = data[-1]
            if padding == 0:
                raise RtpParseError("RTP padding bit is set but the padding count is 0")
            if padding > length - pos:
                raise RtpParseError(
                    f"RTP padding count {padding} exceeds the {length - pos} bytes after the header"
                )
            end = length - padding

        return cls(
            payload_type=second & 0x7F,
            sequence_number=seq,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=bytes(data[pos:end]),
            marker=bool(second & 0x80),
            csrc=csrc,
            extension=extension,
            padding=padding,
            version=version,
        )

    def __bytes__(self) -> bytes:
        if len(self.csrc) > 15:
            raise ValueError(f"{len(self.csrc)} CSRC identifiers, at most 15 fit (RFC 3550 §5.1)")
        if not 0 <= self.payload_type <= 0x7F:
            raise ValueError(f"payload type {self.payload_type} does not fit in 7 bits")
        if not 0 <= self.padding <= 255:
            raise ValueError(f"padding {self.padding} does not fit in one octet")
        first = (
            (self.version << 6)
            | (0x20 if self.padding else 0)
            | (0x10 if self.extension is not None else 0)
            | len(self.csrc)
        )
        second = (0x80 if self.marker else 0) | self.payload_type
        parts = [
            _HEADER.pack(
                first,
                second,
                self.sequence_number & 0xFFFF,
                self.timestamp & 0xFFFF_FFFF,
                self.ssrc & 0xFFFF_FFFF,
            )
        ]
        if self.csrc:
            parts.append(struct.pack(f"!{len(self.csrc)}I", *self.csrc))
        if self.extension is not None:
            ext = self.extension
            parts.append(_EXTENSION_HEADER.pack(ext.profile, len(ext.data) // 4))
            parts.append(ext.data)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes([self.padding]))
        return b"".join(parts)


def build_header(marker: bool, payload_type: int, seq: int, timestamp: int, ssrc: int) -> bytes:
    """The 12-byte fixed header without CSRCs: the fast path the sender uses on every tick."""
    return _HEADER.pack(0x80, (0x80 if marker else 0) | payload_type, seq, timestamp, ssrc)
