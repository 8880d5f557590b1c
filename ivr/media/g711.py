"""G.711 mu-law and A-law by table lookup, bit-exact with ITU-T G.711 (the G.191 reference code).

All four tables are built once at import from the ITU algorithm, vectorised:

- decoding: a 256-entry int16 table indexed by the code byte;
- encoding: a 65536-entry uint8 table indexed by the sample's bit pattern (an int16 array viewed as
  uint16), so encoding a frame is one `take` with no arithmetic per sample.

The linear side is 16-bit: G.711 itself works on 14-bit (mu-law) / 13-bit (A-law) magnitudes, the
low bits of a 16-bit sample are simply truncated on encode, exactly as the G.191 `ulaw_compress` /
`alaw_compress` functions do with left-justified input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "ALAW_SILENCE",
    "CODECS",
    "ULAW_SILENCE",
    "Codec",
    "alaw_decode",
    "alaw_encode",
    "codec_by_name",
    "codec_by_payload_type",
    "ulaw_decode",
    "ulaw_encode",
]

Int16Array = npt.NDArray[np.int16]

# Code bytes for a zero sample: the "silence" to send when there is nothing to say.
ULAW_SILENCE: Final = 0xFF
ALAW_SILENCE: Final = 0xD5

_BIT_LENGTH = np.array([int(v).bit_length() for v in range(2048)], dtype=np.int32)


def _all_int16() -> npt.NDArray[np.int32]:
    # Index i of an encode table holds the code for the int16 whose bit pattern is i.
    return np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.int16).astype(np.int32)


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    x = _all_int16()
    # G.191 ulaw_compress: one's complement for negatives, 14-bit magnitude, +33 bias.
    absno = np.where(x < 0, (~x) >> 2, x >> 2) + 33
    absno = np.minimum(absno, 0x1FFF)
    segno = 1 + _BIT_LENGTH[absno >> 6]
    high = 8 - segno
    low = 15 - ((absno >> segno) & 0x0F)
    code = (high << 4) | low
    code = np.where(x >= 0, code | 0x80, code)
    table: npt.NDArray[np.uint8] = code.astype(np.uint8)
    return table


def _build_ulaw_decode() -> Int16Array:
    c = np.arange(256, dtype=np.int32)
    sign = np.where(c < 0x80, -1, 1)
    m = ~c
    exponent = (m >> 4) & 0x07
    mantissa = m & 0x0F
    step = 4 << (exponent + 1)
    value = sign * ((0x80 << exponent) + step * mantissa + step // 2 - 4 * 33)
    table: Int16Array = value.astype(np.int16)
    return table


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    x = _all_int16()
    # G.191 alaw_compress: one's complement for negatives, 12-bit magnitude.
    ix = np.where(x < 0, (~x) >> 4, x >> 4)
    iexp = np.maximum(_BIT_LENGTH[ix] - 4, 1)
    segmented = ((ix >> (iexp - 1)) - 16) + (iexp << 4)
    code = np.where(ix > 15, segmented, ix)
    code = np.where(x >= 0, code | 0x80, code)
    return (code ^ 0x55).astype(np.uint8)


def _build_alaw_decode() -> Int16Array:
    c = np.arange(256, dtype=np.int32)
    ix = (c ^ 0x55) & 0x7F
    iexp = ix >> 4
    mant = ix & 0x0F
    mant = np.where(iexp > 0, mant + 16, mant)
    mant = (mant << 4) + 8
    mant = np.where(iexp > 1, mant << np.maximum(iexp - 1, 0), mant)
    return np.where(c > 127, mant, -mant).astype(np.int16)


ULAW_ENCODE_TABLE: Final = _build_ulaw_encode()
ULAW_DECODE_TABLE: Final = _build_ulaw_decode()
ALAW_ENCODE_TABLE: Final = _build_alaw_encode()
ALAW_DECODE_TABLE: Final = _build_alaw_decode()
for _table in (ULAW_ENCODE_TABLE, ULAW_DECODE_TABLE, ALAW_ENCODE_TABLE, ALAW_DECODE_TABLE):
    _table.setflags(write=False)


def _as_int16(samples: npt.ArrayLike) -> Int16Array:
    array = np.asarray(samples)
    if array.dtype != np.int16:
        raise TypeError(f"G.711 encodes int16 samples, got {array.dtype}")
    return array


def ulaw_encode(samples: npt.ArrayLike) -> bytes:
    """int16 samples -> mu-law bytes (one byte per sample)."""
    return bytes(ULAW_ENCODE_TABLE[_as_int16(samples).view(np.uint16)].tobytes())


def ulaw_decode(data: bytes) -> Int16Array:
    """mu-law bytes -> int16 samples."""
    return ULAW_DECODE_TABLE[np.frombuffer(data, dtype=np.uint8)]


def alaw_encode(samples: npt.ArrayLike) -> bytes:
    """int16 samples -> A-law bytes (one byte per sample)."""
    return bytes(ALAW_ENCODE_TABLE[_as_int16(samples).view(np.uint16)].tobytes())


def alaw_decode(data: bytes) -> Int16Array:
    """A-law bytes -> int16 samples."""
    return ALAW_DECODE_TABLE[np.frombuffer(data, dtype=np.uint8)]


@dataclass(frozen=True, eq=False)
class Codec:
    """A G.711 variant as negotiated in SDP: name, static payload type (RFC 3551 §6), tables."""

    name: str
    payload_type: int
    silence_byte: int
    encode_table: npt.NDArray[np.uint8]
    decode_table: Int16Array
    clock_rate: int = 8000

    def encode(self, samples: npt.ArrayLike) -> bytes:
        return bytes(self.encode_table[_as_int16(samples).view(np.uint16)].tobytes())

    def decode(self, data: bytes) -> Int16Array:
        return self.decode_table[np.frombuffer(data, dtype=np.uint8)]

    def decode_into(self, data: bytes, out: Int16Array) -> Int16Array:
        """Decode into a caller-owned buffer of len(data) samples; avoids an allocation per frame."""
        self.decode_table.take(np.frombuffer(data, dtype=np.uint8), out=out)
        return out

    def silence(self, samples: int = 160) -> bytes:
        """Encoded digital silence of the given length."""
        return bytes([self.silence_byte]) * samples

    def __repr__(self) -> str:
        return f"Codec({self.name}/{self.clock_rate}, pt={self.payload_type})"


PCMU: Final = Codec("PCMU", 0, ULAW_SILENCE, ULAW_ENCODE_TABLE, ULAW_DECODE_TABLE)
PCMA: Final = Codec("PCMA", 8, ALAW_SILENCE, ALAW_ENCODE_TABLE, ALAW_DECODE_TABLE)

CODECS: Final[dict[str, Codec]] = {"PCMU": PCMU, "PCMA": PCMA}


def codec_by_name(name: str) -> Codec:
    """Look a codec up by its SDP encoding name (case-insensitive, RFC 4566 §6 rtpmap)."""
    try:
        return CODECS[name.upper()]
    except KeyError:
        raise KeyError(f"unsupported codec {name!r}; supported: {', '.join(CODECS)}") from None


def codec_by_payload_type(payload_type: int) -> Codec:
    """Look a codec up by its static payload type (0 = PCMU, 8 = PCMA)."""
    for codec in CODECS.values():
        if codec.payload_type == payload_type:
            return codec
    raise KeyError(f"no G.711 codec has static payload type {payload_type}")
