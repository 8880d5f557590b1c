"""G.711 tables against a plain-Python transcription of the ITU-T G.191 reference algorithm."""

from __future__ import annotations

import numpy as np
import pytest

from ivr.media import g711
from ivr.media.g711 import (
    CODECS,
    alaw_decode,
    alaw_encode,
    codec_by_name,
    codec_by_payload_type,
    ulaw_decode,
    ulaw_encode,
)

from .pcap_reader import read_udp


def ref_ulaw_compress(x: int) -> int:
    absno = ((~x) >> 2) + 33 if x < 0 else (x >> 2) + 33
    absno = min(absno, 0x1FFF)
    i = absno >> 6
    segno = 1
    while i != 0:
        segno += 1
        i >>= 1
    high_nibble = 0x0008 - segno
    low_nibble = 0x000F - ((absno >> segno) & 0x000F)
    code = (high_nibble << 4) | low_nibble
    if x >= 0:
        code |= 0x0080
    return code


def ref_ulaw_expand(code: int) -> int:
    sign = -1 if code < 0x80 else 1
    mantissa = ~code
    exponent = (mantissa >> 4) & 0x0007
    segment = exponent + 1
    mantissa &= 0x000F
    step = 4 << segment
    return sign * ((0x0080 << exponent) + step * mantissa + step // 2 - 4 * 33)


def ref_alaw_compress(x: int) -> int:
    ix = (~x) >> 4 if x < 0 else x >> 4
    if ix > 15:
        iexp = 1
        while ix > 16 + 15:
            ix >>= 1
            iexp += 1
        ix -= 16
        ix += iexp << 4
    if x >= 0:
        ix |= 0x0080
    return ix ^ 0x0055


def ref_alaw_expand(code: int) -> int:
    ix = (code ^ 0x0055) & 0x007F
    iexp = ix >> 4
    mant = ix & 0x000F
    if iexp > 0:
        mant += 16
    mant = (mant << 4) + 0x0008
    if iexp > 1:
        mant <<= iexp - 1
    return mant if code > 127 else -mant


ALL_SAMPLES = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
ALL_CODES = bytes(range(256))


def test_ulaw_encode_all_65536_values() -> None:
    expected = bytes(ref_ulaw_compress(int(x)) for x in ALL_SAMPLES)
    assert ulaw_encode(ALL_SAMPLES) == expected


def test_alaw_encode_all_65536_values() -> None:
    expected = bytes(ref_alaw_compress(int(x)) for x in ALL_SAMPLES)
    assert alaw_encode(ALL_SAMPLES) == expected


def test_ulaw_decode_all_256_codes() -> None:
    assert ulaw_decode(ALL_CODES).tolist() == [ref_ulaw_expand(c) for c in range(256)]


def test_alaw_decode_all_256_codes() -> None:
    assert alaw_decode(ALL_CODES).tolist() == [ref_alaw_expand(c) for c in range(256)]


def test_well_known_values() -> None:
    zero = np.zeros(1, np.int16)
    assert ulaw_encode(zero) == b"\xff"
    assert alaw_encode(zero) == b"\xd5"
    assert ulaw_decode(b"\x00\x80").tolist() == [-32124, 32124]
    assert alaw_decode(b"\x2a\xaa").tolist() == [-32256, 32256]
    assert ulaw_decode(b"\xff\x7f").tolist() == [0, 0]
    assert alaw_decode(b"\xd5\x55").tolist() == [8, -8]


@pytest.mark.parametrize("name", ["PCMU", "PCMA"])
def test_decode_encode_is_identity_on_codes(name: str) -> None:
    codec = codec_by_name(name)
    decoded = codec.decode(ALL_CODES)
    recoded = codec.encode(decoded)
    # Both laws have a +0 and a -0 that decode to the same sample (mu-law) or are distinct (A-law).
    for code in range(256):
        assert codec.decode(recoded[code : code + 1])[0] == decoded[code]


@pytest.mark.parametrize("name", ["PCMU", "PCMA"])
def test_quantisation_error_is_bounded(name: str) -> None:
    codec = codec_by_name(name)
    round_trip = codec.decode(codec.encode(ALL_SAMPLES)).astype(np.int32)
    error = np.abs(round_trip - ALL_SAMPLES.astype(np.int32))
    inner = np.abs(ALL_SAMPLES.astype(np.int32)) < 30000
    # The largest segment is 1024 (mu-law) / 1024 (A-law) wide: error at most half a step + bias.
    assert error[inner].max() <= 1024
    assert error[np.abs(ALL_SAMPLES.astype(np.int32)) < 100].max() <= 8


def test_registry() -> None:
    assert set(CODECS) == {"PCMU", "PCMA"}
    assert codec_by_name("pcmu").payload_type == 0
    assert codec_by_name("PCMA").payload_type == 8
    assert codec_by_payload_type(0) is codec_by_name("PCMU")
    assert codec_by_payload_type(8) is codec_by_name("PCMA")
    assert codec_by_name("PCMU").silence(3) == b"\xff\xff\xff"
    assert codec_by_name("PCMA").silence(2) == b"\xd5\xd5"
    with pytest.raises(KeyError, match="G722"):
        codec_by_name("G722")
    with pytest.raises(KeyError):
        codec_by_payload_type(9)


def test_encode_rejects_other_dtypes() -> None:
    with pytest.raises(TypeError, match="int16"):
        ulaw_encode(np.zeros(4, np.float32))


def test_decode_into_reuses_buffer() -> None:
    codec = codec_by_name("PCMU")
    out = np.empty(160, np.int16)
    result = codec.decode_into(bytes(range(160)), out)
    assert result is out
    assert out.tolist() == ulaw_decode(bytes(range(160))).tolist()


def test_tables_are_read_only() -> None:
    with pytest.raises(ValueError):
        g711.ULAW_DECODE_TABLE[0] = 1


def test_captured_alaw_audio_decodes_to_speech_level_signal() -> None:
    payload = b"".join(d.payload[12:] for d in read_udp("/usr/share/sip-tester/g711a.pcap"))
    samples = alaw_decode(payload)
    assert samples.tolist() == [ref_alaw_expand(c) for c in payload]
    assert alaw_encode(samples) == payload
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    assert 100 < rms < 20000
