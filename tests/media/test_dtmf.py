from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.media.dtmf import (
    DIGITS,
    DtmfEvent,
    DtmfReceiver,
    DtmfSender,
    DtmfStart,
    TelephoneEvent,
    TelephoneEventError,
    digit_for_event,
    event_for_digit,
)
from ivr.media.rtp import RtpPacket

from .pcap_reader import read_udp

SIPP = Path("/usr/share/sip-tester")
PCAP_DIGITS = {str(n): f"dtmf_2833_{n}.pcap" for n in range(10)} | {
    "#": "dtmf_2833_pound.pcap",
    "*": "dtmf_2833_star.pcap",
}


def rtp(ts: int, event: TelephoneEvent, seq: int = 0, marker: bool = False) -> RtpPacket:
    return RtpPacket(101, seq, ts, 0x1234, bytes(event), marker)


def test_payload_round_trip() -> None:
    te = TelephoneEvent(event=11, end=True, volume=10, duration=2240)
    data = bytes(te)
    assert data == bytes.fromhex("0b8a08c0")
    assert TelephoneEvent.parse(data) == te


def test_reserved_bit_ignored_on_receipt() -> None:
    assert TelephoneEvent.parse(bytes.fromhex("05 4a 01 40")) == TelephoneEvent(5, False, 10, 320)


def test_payload_errors() -> None:
    with pytest.raises(TelephoneEventError, match="3 bytes"):
        TelephoneEvent.parse(b"\x01\x02\x03")
    with pytest.raises(ValueError):
        TelephoneEvent(1, volume=64)
    with pytest.raises(ValueError):
        TelephoneEvent(1, duration=70000)


def test_event_map() -> None:
    assert len(DIGITS) == 16
    assert [event_for_digit(d) for d in "0123456789*#ABCD"] == list(range(16))
    assert event_for_digit("a") == 12
    assert digit_for_event(16) is None
    with pytest.raises(ValueError):
        event_for_digit("E")


@pytest.mark.parametrize(("digit", "name"), sorted(PCAP_DIGITS.items()))
def test_sipp_captures_yield_the_digit_exactly_once(digit: str, name: str) -> None:
    starts: list[DtmfStart] = []
    receiver = DtmfReceiver(on_start=starts.append)
    events: list[DtmfEvent] = []
    datagrams = read_udp(SIPP / name)
    assert len(datagrams) >= 4
    for datagram in datagrams:
        events.extend(receiver.feed(RtpPacket.parse(datagram.payload)))
    assert [e.digit for e in events] == [digit]
    assert events[0].duration == 2240
    assert [s.digit for s in starts] == [digit]
    assert starts[0].start_timestamp == events[0].start_timestamp
    assert receiver.stats.retransmissions == 2
    assert receiver.flush() == []


def test_captures_replayed_out_of_order_are_each_a_key_press() -> None:
    # SIPp replays each capture with its own fixed timestamps: 4 (ts 37120) before 2 (ts 23200)
    # goes backwards in time, yet every capture is a separate key press. (The same capture twice
    # in a row is byte-identical to a retransmission and counts once.)
    receiver = DtmfReceiver()
    events: list[DtmfEvent] = []
    for digit in "42#1":
        for datagram in read_udp(SIPP / PCAP_DIGITS[digit]):
            events.extend(receiver.feed(RtpPacket.parse(datagram.payload)))
    assert "".join(e.digit for e in events) == "42#1"


def test_replayed_captures_with_repeated_digits_count_by_arrival_time() -> None:
    # "2025" and "11" from SIPp's captures: the same bytes again, told apart by the pause before.
    receiver = DtmfReceiver()
    events: list[DtmfEvent] = []
    now = 0.0
    for digit in "202511":
        for datagram in read_udp(SIPP / PCAP_DIGITS[digit]):
            now += 0.02
            events.extend(receiver.feed(RtpPacket.parse(datagram.payload), now))
        now += 0.16  # SIPp starts a capture every 300 ms; each lasts 140 ms
    assert "".join(e.digit for e in events) == "202511"
    # ...while end-packet retransmissions, which come right behind, still count once,
    assert receiver.stats.retransmissions == 12
    # and so does one that arrives late: it carries the E bit.
    late = read_udp(SIPP / PCAP_DIGITS["1"])[-1]
    assert receiver.feed(RtpPacket.parse(late.payload), now + 1.0) == []


def test_reported_on_first_end_packet() -> None:
    rx = DtmfReceiver()
    assert rx.feed(rtp(1000, TelephoneEvent(5, False, 10, 160), marker=True)) == []
    assert rx.in_progress
    assert rx.feed(rtp(1000, TelephoneEvent(5, False, 10, 320))) == []
    assert rx.feed(rtp(1000, TelephoneEvent(5, True, 10, 480))) == [DtmfEvent("5", 1000, 480)]
    assert rx.feed(rtp(1000, TelephoneEvent(5, True, 10, 480))) == []
    assert rx.feed(rtp(1000, TelephoneEvent(5, True, 10, 480))) == []
    assert not rx.in_progress


def test_missing_end_reported_when_next_event_starts() -> None:
    rx = DtmfReceiver()
    rx.feed(rtp(1000, TelephoneEvent(1, False, 10, 160)))
    rx.feed(rtp(1000, TelephoneEvent(1, False, 10, 320)))
    events = rx.feed(rtp(2000, TelephoneEvent(2, False, 10, 160)))
    assert events == [DtmfEvent("1", 1000, 320)]
    assert rx.feed(rtp(2000, TelephoneEvent(2, True, 10, 320))) == [DtmfEvent("2", 2000, 320)]
    assert rx.stats.missing_end == 1


def test_only_end_packets_received() -> None:
    rx = DtmfReceiver()
    events = [rx.feed(rtp(500, TelephoneEvent(9, True, 10, 800))) for _ in range(3)]
    assert events == [[DtmfEvent("9", 500, 800)], [], []]


def test_stale_and_reordered_packets_ignored() -> None:
    rx = DtmfReceiver()
    rx.feed(rtp(1000, TelephoneEvent(1, True, 10, 800)))
    rx.feed(rtp(2000, TelephoneEvent(2, False, 10, 160)))
    assert rx.feed(rtp(1000, TelephoneEvent(1, True, 10, 800))) == []  # late retransmission
    assert rx.stats.stale == 1
    assert rx.feed(rtp(2000, TelephoneEvent(2, True, 10, 320))) == [DtmfEvent("2", 2000, 320)]


def test_same_digit_twice_is_two_events() -> None:
    rx = DtmfReceiver()
    out: list[DtmfEvent] = []
    sender = DtmfSender()
    for ts in (1000, 3000):
        for p in sender.packets_for("7"):
            out += rx.feed(rtp(ts, p.event, marker=p.marker))
    assert out == [DtmfEvent("7", 1000, 800), DtmfEvent("7", 3000, 800)]


def test_timestamp_wraparound() -> None:
    rx = DtmfReceiver()
    assert rx.feed(rtp(0xFFFFFF00, TelephoneEvent(1, True, 10, 160))) != []
    assert rx.feed(rtp(0x00000100, TelephoneEvent(2, True, 10, 160))) == [DtmfEvent("2", 0x100, 160)]


def test_non_dtmf_events_ignored() -> None:
    rx = DtmfReceiver()
    assert rx.feed(rtp(1000, TelephoneEvent(16, True, 10, 800))) == []  # flash
    assert rx.stats.ignored_events == 1


def test_malformed_payload_counted() -> None:
    rx = DtmfReceiver()
    assert rx.feed(RtpPacket(101, 0, 0, 0, b"\x01")) == []
    assert rx.stats.malformed == 1


def test_flush_reports_unfinished_event_once() -> None:
    rx = DtmfReceiver()
    rx.feed(rtp(1000, TelephoneEvent(3, False, 10, 480)))
    assert rx.flush() == [DtmfEvent("3", 1000, 480)]
    assert rx.flush() == []
    assert rx.feed(rtp(1000, TelephoneEvent(3, True, 10, 800))) == []


def test_sender_sequence_rfc4733_2_5() -> None:
    packets = DtmfSender().packets_for("#", duration_ms=100, volume=7)
    assert [p.marker for p in packets] == [True] + [False] * 6
    assert [p.event.duration for p in packets] == [160, 320, 480, 640, 800, 800, 800]
    assert [p.event.end for p in packets] == [False] * 4 + [True] * 3
    assert {p.event.event for p in packets} == {11}
    assert {p.event.volume for p in packets} == {7}
    assert packets[0].payload == bytes.fromhex("0b0700a0")


def test_sender_short_event() -> None:
    packets = DtmfSender().packets_for("1", duration_ms=20)
    assert [(p.marker, p.event.end, p.event.duration) for p in packets] == [
        (True, True, 160),
        (False, True, 160),
        (False, True, 160),
    ]


def test_sender_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        DtmfSender().packets_for("x")
    with pytest.raises(ValueError):
        DtmfSender().packets_for("1", duration_ms=9000)


@given(st.text(alphabet=DIGITS, min_size=1, max_size=8), st.integers(20, 400), st.randoms())
def test_sender_receiver_agree_despite_loss_of_some_end_packets(
    digits: str, duration: int, rnd: random.Random
) -> None:
    rx = DtmfReceiver()
    got: list[str] = []
    ts = 12345
    for digit in digits:
        packets = DtmfSender().packets_for(digit, duration)
        keep_end = rnd.randrange(3)  # at least one end packet survives
        ends = [i for i, p in enumerate(packets) if p.event.end]
        for i, p in enumerate(packets):
            if p.event.end and i != ends[keep_end] and rnd.random() < 0.5:
                continue
            got += [e.digit for e in rx.feed(rtp(ts, p.event))]
        ts += 4000
    assert "".join(got) == digits
