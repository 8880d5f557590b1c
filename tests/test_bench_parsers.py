"""The capacity bench's parsers: SIPp's message log and the RTP receiver's packets, without sockets."""

from __future__ import annotations

import math
import socket
import struct

import pytest

from bench.rtp_sink import SO_TIMESTAMPNS, StreamTimes, kernel_stamp, key_packets, rtp_ssrc, stream_summary
from bench.sipp_load import message_blocks, setup_times_ms
from bench.soak import stall_summary
from tests.rtp_probe import StreamRecord

DASHES = "-" * 47


def _block(stamp: str, sent: bool, message: str) -> str:
    kind = "UDP message sent (100 bytes):" if sent else "UDP message received [100] bytes :"
    return f"{DASHES} 2026-11-22 {stamp}\n{kind}\n\n" + message.replace("\n", "\r\n") + "\n"


def _message(first: str, call_id: str, cseq: str, body: str = "") -> str:
    return f"{first}\nVia: SIP/2.0/UDP 127.0.0.1:5060\nCall-ID: {call_id}\nCSeq: {cseq}\n\n{body}"


LOG = "".join(
    [
        _block("12:00:00.100000", True, _message("INVITE sip:ivr@h SIP/2.0", "a", "1 INVITE", "v=0\n")),
        _block("12:00:00.101000", False, _message("SIP/2.0 100 Trying", "a", "1 INVITE")),
        _block("12:00:00.102500", False, _message("SIP/2.0 200 OK", "a", "1 INVITE", "v=0\n")),
        _block("12:00:00.102600", True, _message("ACK sip:ivr@h SIP/2.0", "a", "1 ACK")),
        # b: the INVITE is retransmitted; setup counts from the first copy.
        _block("12:00:00.200000", True, _message("INVITE sip:ivr@h SIP/2.0", "b", "1 INVITE")),
        _block("12:00:00.700000", True, _message("INVITE sip:ivr@h SIP/2.0", "b", "1 INVITE")),
        _block("12:00:00.704000", False, _message("SIP/2.0 200 OK", "b", "1 INVITE")),
        _block("12:00:00.724000", False, _message("SIP/2.0 200 OK", "b", "1 INVITE")),  # retransmitted
        # c: never answered; d: the 200 to a BYE is not a setup.
        _block("12:00:01.000000", True, _message("INVITE sip:ivr@h SIP/2.0", "c", "1 INVITE")),
        _block("12:00:01.001000", False, _message("SIP/2.0 486 Busy Here", "c", "1 INVITE")),
        _block("12:00:02.000000", True, _message("BYE sip:ivr@h SIP/2.0", "d", "2 BYE")),
        _block("12:00:02.001000", False, _message("SIP/2.0 200 OK", "d", "2 BYE")),
    ]
)


def test_message_blocks_reads_time_direction_and_message() -> None:
    blocks = list(message_blocks(LOG.splitlines(keepends=True)))
    assert len(blocks) == 12
    stamp, sent, body = blocks[0]
    assert sent and body[0] == "INVITE sip:ivr@h SIP/2.0" and body[-1] == "v=0"
    assert blocks[1][0] - stamp == pytest.approx(0.001, abs=1e-6)
    assert not blocks[2][1] and blocks[2][2][0] == "SIP/2.0 200 OK"


def test_setup_times_from_first_invite_to_first_2xx() -> None:
    setup = setup_times_ms(LOG.splitlines(keepends=True))
    assert set(setup) == {"a", "b"}
    assert setup["a"] == pytest.approx(2.5, abs=1e-3)
    assert setup["b"] == pytest.approx(504.0, abs=1e-3)


def test_setup_times_of_an_empty_log() -> None:
    assert setup_times_ms([]) == {}


def _rtp(pt: int, ssrc: int, marker: bool = False, version: int = 2) -> bytes:
    return struct.pack("!BBHII", version << 6, (0x80 if marker else 0) | pt, 1, 160, ssrc) + b"\xff" * 160


def test_rtp_ssrc_of_the_audio_payload_type_only() -> None:
    assert rtp_ssrc(_rtp(0, 7, marker=True), 0) == 7
    assert rtp_ssrc(_rtp(101, 7), 0) is None  # telephone-event
    assert rtp_ssrc(_rtp(0, 7, version=1), 0) is None
    assert rtp_ssrc(b"\x80\x00\x00", 0) is None  # shorter than a header


def test_kernel_stamp_from_ancillary_data() -> None:
    stamp = struct.pack("qq", 1_795_352_312, 250_000_000)
    assert kernel_stamp([(socket.SOL_SOCKET, SO_TIMESTAMPNS, stamp)]) == pytest.approx(1_795_352_312.25)
    assert kernel_stamp([(socket.SOL_SOCKET, 99, stamp)]) is None
    assert kernel_stamp([]) is None


def test_key_packets_are_rfc_4733_events() -> None:
    packets = key_packets("1#", 101, ssrc=9, seq=65534, timestamp=1000)
    assert len(packets) == 8  # per key: a start packet and three end packets
    fields = [struct.unpack("!BBHIIBBH", packet) for packet in packets]
    assert [f[2] for f in fields] == [65534, 65535, 0, 1, 2, 3, 4, 5]  # one sequence, wrapping
    assert {f[0] for f in fields} == {0x80} and {f[4] for f in fields} == {9}
    assert [f[1] >> 7 for f in fields] == [1, 0, 0, 0, 1, 0, 0, 0]  # marker on each start
    assert {f[1] & 0x7F for f in fields} == {101}
    assert [f[5] for f in fields] == [1] * 4 + [11] * 4  # event codes of "1" and "#"
    assert [f[6] >> 7 for f in fields] == [0, 1, 1, 1] * 2  # the E bit
    assert [f[3] for f in fields] == [1000] * 4 + [2600] * 4  # one timestamp per event


def test_stream_summary_spacing_before_the_keys_and_reply_after() -> None:
    first = StreamTimes([0.0, 0.020, 0.040, 0.070], keys_at=0.080, reply_at=0.095)  # 20, 20, 30 ms
    second = StreamTimes([5.0, 5.020], keys_at=5.030, reply_at=5.041)  # a gap between streams is none
    third = StreamTimes([9.0, 9.020])  # keys never sent
    figures = stream_summary({("h", 1, 1): first, ("h", 2, 2): second, ("h", 3, 3): third})
    assert figures["streams"] == 3 and figures["packets"] == 8
    assert figures["spacing_p50_ms"] == pytest.approx(20.0)
    assert figures["spacing_max_ms"] == pytest.approx(30.0)
    assert figures["keys_sent"] == 2 and figures["replies"] == 2
    assert figures["reply_p50_ms"] == pytest.approx(11.0)
    assert figures["reply_p95_ms"] == pytest.approx(15.0)


def test_stream_summary_of_nothing() -> None:
    figures = stream_summary({})
    assert figures["streams"] == 0 and figures["replies"] == 0
    assert math.isnan(figures["spacing_max_ms"]) and math.isnan(figures["reply_p95_ms"])


def test_soak_summarises_the_stall_watch_log() -> None:
    assert stall_summary([{"event": "call ended"}]) == "Event loop stalls (100 ms or more): none."
    log: list[dict[str, object]] = [
        {"event": "event loop stalled", "where": "/x/ivr/store/sqlite.py:120 in commit <- /x/a.py:1 in f"},
        {"event": "event loop stall over", "lasted_ms": 180},
        {"event": "event loop stalled", "where": "/x/ivr/store/sqlite.py:120 in commit <- /x/b.py:2 in g"},
        {"event": "event loop stall over", "lasted_ms": 420},
        {"event": "event loop stalled", "where": "/x/ivr/media/player.py:50 in tick"},
    ]
    text = stall_summary(log)
    assert text.startswith("Event loop stalls (100 ms or more): 3, longest 420 ms")
    assert "sqlite.py:120 in commit (2x); player.py:50 in tick (1x)" in text


def test_the_probe_tells_a_pause_of_the_sender_from_lost_packets() -> None:
    record = StreamRecord("c")
    # 20 ms apart; seq 4-6 never arrive (lost); the sender pauses 300 ms inside the prompt, then
    # 500 ms before the next prompt (marker bit); keys at t=2.0.
    record.arrivals = [0.00, 0.02, 0.04, 0.12, 0.42, 0.92, 0.94, 2.5]
    record.seqs = [1, 2, 3, 7, 8, 9, 10, 11]
    record.markers = [True, False, False, False, False, True, False, False]
    record.keys_sent_at = 2.0
    within, between, lost = record.gaps_before_keys()
    assert lost == 3
    assert max(within) == pytest.approx(300.0) and len(within) == 4
    assert between == [pytest.approx(500.0)]
    assert max(record.spacings_before_keys_ms()) == pytest.approx(500.0)
