from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.media.rtp import RtpExtension, RtpPacket, RtpParseError, build_header, seq_diff, seq_gt, ts_diff

from .pcap_reader import read_udp

SIPP = "/usr/share/sip-tester"


def test_parse_minimal_packet() -> None:
    data = bytes.fromhex("80 00 12 34 00 00 00 a0 de ad be ef") + b"\xff" * 160
    packet = RtpPacket.parse(data)
    assert packet.version == 2
    assert packet.payload_type == 0
    assert packet.marker is False
    assert packet.sequence_number == 0x1234
    assert packet.timestamp == 160
    assert packet.ssrc == 0xDEADBEEF
    assert packet.payload == b"\xff" * 160
    assert packet.csrc == []
    assert packet.extension is None
    assert packet.padding == 0
    assert bytes(packet) == data


def test_marker_and_payload_type() -> None:
    packet = RtpPacket.parse(bytes.fromhex("80 e5 00 01 00 00 00 02 00 00 00 03") + b"\x01\x0a\x00\xa0")
    assert packet.marker is True
    assert packet.payload_type == 101


def test_csrc_extension_padding_round_trip() -> None:
    packet = RtpPacket(
        payload_type=8,
        sequence_number=65535,
        timestamp=0xFFFFFFFF,
        ssrc=1,
        payload=b"abc",
        marker=True,
        csrc=[10, 20],
        extension=RtpExtension(0xBEDE, b"\x10\x01\x00\x00"),
        padding=5,
    )
    data = bytes(packet)
    assert data[0] == 0x80 | 0x20 | 0x10 | 2
    assert data[-1] == 5
    assert len(data) == 12 + 8 + 4 + 4 + 3 + 5
    assert RtpPacket.parse(data) == packet


def test_padding_is_stripped() -> None:
    header = bytes.fromhex("a0 00 00 01 00 00 00 01 00 00 00 01")
    packet = RtpPacket.parse(header + b"PAYLOAD" + b"\x00\x00\x03")
    assert packet.payload == b"PAYLOAD"
    assert packet.padding == 3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "RTP packet is 0 bytes, shorter than the 12-byte fixed header"),
        (b"\x80" * 11, "RTP packet is 11 bytes, shorter than the 12-byte fixed header"),
        (b"\x40" + bytes(11), "RTP version is 1, expected 2"),
        (b"\x00" + bytes(11), "RTP version is 0, expected 2"),
        (b"\x82" + bytes(11) + bytes(4), "RTP packet is 16 bytes, too short for its 2 CSRC identifiers"),
        (b"\x90" + bytes(11) + b"\x00\x00", "RTP packet is too short for its header extension header"),
        (
            b"\x90" + bytes(11) + b"\xbe\xde\x00\x02" + bytes(4),
            "RTP header extension declares 8 bytes, only 4 present",
        ),
        (b"\xa0" + bytes(11) + b"ab\x00", "RTP padding bit is set but the padding count is 0"),
        (b"\xa0" + bytes(11) + b"ab\x04", "RTP padding count 4 exceeds the 3 bytes after the header"),
    ],
)
def test_parse_errors_are_precise(data: bytes, message: str) -> None:
    with pytest.raises(RtpParseError) as info:
        RtpPacket.parse(data)
    assert str(info.value) == message


@given(st.binary(max_size=80))
def test_parse_never_raises_anything_else(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data)
    except RtpParseError:
        return
    assert RtpPacket.parse(bytes(packet)) == packet


@given(
    st.integers(0, 127),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.booleans(),
    st.binary(max_size=64),
)
def test_build_header_matches_dataclass(
    pt: int, seq: int, ts: int, ssrc: int, marker: bool, payload: bytes
) -> None:
    packet = RtpPacket(pt, seq, ts, ssrc, payload, marker)
    assert build_header(marker, pt, seq, ts, ssrc) + payload == bytes(packet)


def test_serialise_rejects_bad_fields() -> None:
    with pytest.raises(ValueError):
        bytes(RtpPacket(payload_type=128))
    with pytest.raises(ValueError):
        bytes(RtpPacket(csrc=list(range(16))))
    with pytest.raises(ValueError):
        RtpExtension(1, b"abc")


def test_wraparound_helpers() -> None:
    assert seq_diff(0, 65535) == 1
    assert seq_diff(65535, 0) == -1
    assert seq_diff(5, 5) == 0
    assert seq_diff(100, 50) == 50
    assert seq_diff(0x8000, 0) == -0x8000
    assert seq_gt(1, 65530)
    assert not seq_gt(65530, 1)
    assert not seq_gt(7, 7)
    assert ts_diff(10, 0xFFFFFF00) == 0x10A
    assert ts_diff(0xFFFFFF00, 10) == -0x10A
    assert ts_diff(160, 0) == 160


@given(st.integers(0, 0xFFFF), st.integers(-0x8000, 0x7FFF))
def test_seq_diff_inverts_addition(base: int, delta: int) -> None:
    assert seq_diff((base + delta) & 0xFFFF, base) == delta


def test_captured_packets_round_trip_byte_exact() -> None:
    datagrams = read_udp(f"{SIPP}/g711a.pcap")
    assert len(datagrams) > 200
    previous = None
    for datagram in datagrams:
        packet = RtpPacket.parse(datagram.payload)
        assert packet.payload_type == 8
        assert bytes(packet) == datagram.payload
        if previous is not None:
            assert seq_diff(packet.sequence_number, previous.sequence_number) == 1
            assert ts_diff(packet.timestamp, previous.timestamp) == len(packet.payload)
        previous = packet


def test_captured_truncations_raise_own_error() -> None:
    payload = read_udp(f"{SIPP}/dtmf_2833_1.pcap")[0].payload
    for cut in range(12):
        with pytest.raises(RtpParseError):
            RtpPacket.parse(payload[:cut])
    assert struct.unpack("!H", payload[2:4])[0] == RtpPacket.parse(payload).sequence_number
