from __future__ import annotations

import itertools
import random
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ivr.media.dtmf import DtmfEvent, DtmfStart, TelephoneEvent
from ivr.media.g711 import codec_by_name
from ivr.media.goertzel import generate_dtmf
from ivr.media.rtp import RtpPacket, seq_diff, ts_diff
from ivr.media.stream import AudioListener, MediaEvent, MediaStream

from .listeners import Recorder, recorded
from .pcap_reader import read_udp

A_ADDR = ("10.0.0.1", 4000)
B_ADDR = ("10.0.0.2", 5000)
EVIL = ("10.6.6.6", 6666)
PCMU = codec_by_name("PCMU")


def pair(**kwargs: object) -> tuple[MediaStream, MediaStream]:
    a = MediaStream("PCMU", 101, B_ADDR, rng=random.Random(1), **kwargs)  # type: ignore[arg-type]
    b = MediaStream("PCMU", 101, A_ADDR, rng=random.Random(2), **kwargs)  # type: ignore[arg-type]
    return a, b


class Link:
    """Two streams and a fake 20 ms clock; collects what each sent and what each heard."""

    def __init__(self, a: MediaStream, b: MediaStream, now: float = 100.0) -> None:
        self.a, self.b, self.now = a, b, now
        self.sent_a: list[RtpPacket | None] = []
        self.sent_b: list[RtpPacket | None] = []
        self.events_a = recorded(a).events
        self.events_b = recorded(b).events

    def run(self, ticks: int, step: float = 0.02) -> None:
        for _ in range(ticks):
            self.now += step
            out_a = self.a.tick(self.now)
            out_b = self.b.tick(self.now)
            self.sent_a.append(RtpPacket.parse(out_a) if out_a else None)
            self.sent_b.append(RtpPacket.parse(out_b) if out_b else None)
            if out_a:
                self.b.receive(out_a, A_ADDR, self.now)
            if out_b:
                self.a.receive(out_b, B_ADDR, self.now)


def test_sequence_timestamps_and_marker() -> None:
    a, b = pair()
    a.player.play(np.zeros(160 * 5, np.int16))
    link = Link(a, b)
    link.run(5)
    packets = [p for p in link.sent_a if p]
    assert len(packets) == 5
    assert [p.marker for p in packets] == [True, False, False, False, False]
    assert all(p.payload_type == 0 and p.ssrc == a.ssrc and len(p.payload) == 160 for p in packets)
    for prev, cur in itertools.pairwise(packets):
        assert seq_diff(cur.sequence_number, prev.sequence_number) == 1
        assert ts_diff(cur.timestamp, prev.timestamp) == 160


def test_silence_gap_advances_timestamp_and_sets_marker() -> None:
    a, b = pair()
    link = Link(a, b)
    a.player.play(np.zeros(160 * 3, np.int16))
    link.run(3)
    link.run(4)  # idle: nothing sent
    a.player.play(np.zeros(160 * 2, np.int16))
    link.run(2)
    assert link.sent_a[3:7] == [None] * 4
    packets = [p for p in link.sent_a if p]
    assert [p.marker for p in packets] == [True, False, False, True, False]
    assert seq_diff(packets[3].sequence_number, packets[2].sequence_number) == 1  # no seq gap
    assert ts_diff(packets[3].timestamp, packets[2].timestamp) == 160 * 5  # but a time gap


def test_late_tick_jumps_timestamp() -> None:
    a, b = pair()
    a.player.play(np.zeros(160 * 3, np.int16))
    link = Link(a, b)
    link.run(1)
    link.run(1, step=0.061)  # the clock stalled for two frames
    link.run(1)
    ts = [p.timestamp for p in link.sent_a if p]
    assert [ts_diff(y, x) for x, y in itertools.pairwise(ts)] == [480, 160]


def test_comfort_silence_keeps_sending() -> None:
    a, b = pair(comfort_silence=True)
    link = Link(a, b)
    link.run(3)
    assert all(p is not None and p.payload == b"\xff" * 160 for p in link.sent_a)


def test_audio_arrives_decoded_after_jitter_prefill() -> None:
    a, b = pair()
    b.start_recording()
    heard: list[np.ndarray] = []
    signal = (np.sin(np.arange(160 * 10) / 7) * 8000).astype(np.int16)
    a.player.play(signal)
    link = Link(a, b)
    b.listener = AudioListener(lambda frame: heard.append(frame.copy()))
    link.run(15)
    expected = PCMU.decode(PCMU.encode(signal))
    assert np.array_equal(np.concatenate(heard), expected)
    recorded = b.stop_recording()
    assert len(recorded) == 15 * 160
    start = int(np.flatnonzero(recorded)[0]) // 160 * 160
    assert np.array_equal(recorded[start : start + len(expected)], expected)
    assert b.jitter.stats.lost == 0


def test_rfc4733_digits_detected_exactly_once_and_audio_resumes() -> None:
    a, b = pair()
    a.player.play(np.full(160 * 20, 1000, np.int16))
    link = Link(a, b)
    link.run(3)
    a.send_dtmf("159#")
    link.run(60)
    done = [e for e in link.events_b if isinstance(e, DtmfEvent)]
    starts = [e for e in link.events_b if isinstance(e, DtmfStart)]
    assert [e.digit for e in done] == list("159#")
    assert [e.digit for e in starts] == list("159#")
    assert all(e.duration == 800 for e in done)
    assert a.stats.dtmf_sent == 4
    events = [p for p in link.sent_a if p and p.payload_type == 101]
    assert len(events) == 4 * 7
    for k in range(4):
        group = events[7 * k : 7 * k + 7]
        assert len({p.timestamp for p in group}) == 1
        assert [p.marker for p in group] == [True] + [False] * 6
        assert sum(TelephoneEvent.parse(p.payload).end for p in group) == 3
    audio = [p for p in link.sent_a if p and p.payload_type == 0]
    assert len(audio) == 20  # the prompt was paused, not cut
    seqs = [p.sequence_number for p in link.sent_a if p]
    assert all(seq_diff(y, x) == 1 for x, y in itertools.pairwise(seqs))
    resumed = audio[3]
    assert resumed.marker
    assert b.jitter.stats.lost == 0


def test_inband_dtmf_when_no_event_payload_type() -> None:
    a = MediaStream("PCMA", None, B_ADDR, rng=random.Random(1))
    b = MediaStream("PCMA", None, A_ADDR, rng=random.Random(2), inband_dtmf=True)
    link = Link(a, b)
    a.send_dtmf("42*")
    link.run(40)
    inband = [e for e in link.events_b if isinstance(e, DtmfEvent)]
    assert [e.digit for e in inband] == ["4", "2", "*"]
    assert all(e.source == "inband" for e in inband)
    assert all(p is None or p.payload_type == 8 for p in link.sent_a)


def test_inband_detector_ignores_prompt_audio_but_hears_a_tone() -> None:
    a = MediaStream("PCMU", 101, B_ADDR, rng=random.Random(1))
    b = MediaStream("PCMU", 101, A_ADDR, rng=random.Random(2), inband_dtmf=True)
    rng = np.random.default_rng(0)
    noise = np.clip(rng.normal(0, 3000, 160 * 30), -32768, 32767).astype(np.int16)
    a.player.play(np.concatenate([noise, generate_dtmf("0", 100), noise]))
    link = Link(a, b)
    link.run(80)
    assert [e.digit for e in link.events_b if isinstance(e, DtmfEvent)] == ["0"]


def test_barge_in_within_one_frame() -> None:
    a, b = pair()
    prompt = np.full(160 * 100, 5000, np.int16)
    a.player.play(prompt)
    a.player.play(np.full(160 * 5, -7, np.int16), interruptible=False)
    link = Link(a, b)
    link.run(5)
    b.send_dtmf("1")
    for _ in range(10):
        link.run(1)
        if any(isinstance(e, DtmfStart) for e in link.events_a):
            a.player.stop_interruptible()
            break
    link.run(1)
    last = link.sent_a[-1]
    assert last is not None
    assert PCMU.decode(last.payload)[0] == PCMU.decode(PCMU.encode(np.array([-7], np.int16)))[0]


def test_sipp_capture_through_stream() -> None:
    stream = MediaStream("PCMU", 101, None, rng=random.Random(3))
    got = recorded(stream).events
    now = 0.0
    for datagram in read_udp("/usr/share/sip-tester/dtmf_2833_star.pcap"):
        now += 0.02
        stream.receive(datagram.payload, datagram.src, now)
        stream.tick(now)
    assert [e.digit for e in got if isinstance(e, DtmfEvent)] == ["*"]
    assert stream.latched == ("192.168.0.3", 49176)


def rtp(seq: int, ssrc: int = 0x1111, pt: int = 0, payload: bytes = b"\xff" * 160) -> bytes:
    return bytes(RtpPacket(pt, seq & 0xFFFF, (seq * 160) & 0xFFFFFFFF, ssrc, payload))


def test_latching_ignores_hijack_and_relatches_after_silence() -> None:
    s = MediaStream("PCMU", 101, B_ADDR, rng=random.Random(4))
    assert s.send_address == B_ADDR
    nat = ("192.0.2.7", 30000)  # NAT: not the SDP address
    s.receive(rtp(1), nat, now=10.0)
    assert s.latched is None, "the signalled address gets a moment first"
    s.receive(rtp(2), nat, now=10.5)
    assert s.latched == nat and s.send_address == nat
    for i in range(5):
        s.receive(rtp(100 + i, ssrc=0x6666), EVIL, now=10.6 + i * 0.1)
    assert s.stats.foreign_source == 6  # the NAT'd caller's first packet, then the five
    assert s.latched == nat
    assert s.jitter.stats.received == 1
    s.receive(rtp(3), nat, now=11.0)
    s.receive(rtp(200, ssrc=0x6666), EVIL, now=12.9)  # 1.9 s of silence: still not enough
    assert s.stats.foreign_source == 7
    s.receive(rtp(201, ssrc=0x7777), ("192.0.2.7", 30001), now=13.2)  # rebinding after > 2 s
    assert s.latched == ("192.0.2.7", 30001)
    assert s.stats.relatched == 1
    assert s.stats.ssrc_changes == 1


def test_wrong_payload_type_neither_plays_nor_latches() -> None:
    s = MediaStream("PCMU", 101, B_ADDR, rng=random.Random(5))
    s.receive(rtp(1, pt=8), EVIL, now=1.0)
    s.receive(rtp(2, pt=13), EVIL, now=1.0)  # comfort noise, not negotiated
    assert s.stats.wrong_payload_type == 2
    assert s.latched is None
    s.receive(rtp(3), B_ADDR, now=1.0)
    assert s.latched == B_ADDR


def test_ssrc_change_resets_jitter_buffer() -> None:
    s = MediaStream("PCMU", 101, B_ADDR, rng=random.Random(6))
    for seq in range(10, 14):
        s.receive(rtp(seq, ssrc=1), B_ADDR, now=1.0)
    s.tick(1.0)
    s.receive(rtp(50000, ssrc=2), B_ADDR, now=1.02)
    assert s.stats.ssrc_changes == 1
    assert s.jitter.stats.resets == 1
    for seq in range(50001, 50003):
        s.receive(rtp(seq, ssrc=2), B_ADDR, now=1.04)
    s.tick(1.04)
    assert s.received_frame is not None


@pytest.mark.parametrize("size", [0, 1, 5, 11])
def test_truncated_packets_counted(size: int) -> None:
    s = MediaStream("PCMU", 101, B_ADDR, rng=random.Random(7))
    good = rtp(1)
    s.receive(good[:size], B_ADDR, now=1.0)
    assert recorded(s).events == []
    assert s.stats.malformed == 1
    assert s.latched is None


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=200), max_size=20))
def test_garbage_never_raises(datagrams: list[bytes]) -> None:
    s = MediaStream("PCMU", 101, B_ADDR, rng=random.Random(8), inband_dtmf=True)
    now = 0.0
    for data in datagrams:
        now += 0.02
        s.receive(data, B_ADDR, now)
        s.tick(now)


def test_hold_and_codec_change() -> None:
    a, b = pair()
    a.player.play(np.zeros(160 * 30, np.int16))
    link = Link(a, b)
    link.run(2)
    a.set_remote(B_ADDR, "PCMU", 101, direction="recvonly")  # we are put on hold
    link.run(3)
    assert link.sent_a[2:] == [None] * 3
    a.set_remote(B_ADDR, "PCMA", 101, direction="sendrecv")
    b.set_remote(A_ADDR, "PCMA", 101)
    link.run(2)
    held, resumed = link.sent_a[1], link.sent_a[5]
    assert held is not None and resumed is not None
    assert resumed.payload_type == 8 and resumed.marker
    assert ts_diff(resumed.timestamp, held.timestamp) == 160 * 4
    assert seq_diff(resumed.sequence_number, held.sequence_number) == 1


def test_inactive_drops_incoming() -> None:
    s = MediaStream("PCMU", 101, B_ADDR, rng=random.Random(9), direction="inactive")
    s.receive(rtp(1), B_ADDR, now=1.0)
    assert s.stats.not_receiving == 1
    assert s.tick(1.0) is None
    with pytest.raises(ValueError):
        s.set_remote(B_ADDR, "PCMU", 101, direction="sideways")


def test_new_remote_address_unlatches() -> None:
    s = MediaStream("PCMU", 101, B_ADDR, rng=random.Random(10))
    s.receive(rtp(1), B_ADDR, now=1.0)
    s.set_remote(("10.9.9.9", 7000), "PCMU", 101)
    assert s.latched is None
    assert s.send_address == ("10.9.9.9", 7000)


def test_lost_end_packets_reported_after_timeout() -> None:
    s = MediaStream("PCMU", 101, B_ADDR, rng=random.Random(11))
    told = recorded(s).events
    start = bytes(RtpPacket(101, 1, 800, 0x1111, bytes(TelephoneEvent(3, False, 10, 160)), True))
    s.receive(start, B_ADDR, now=1.0)
    assert told == [DtmfStart("3", 800)]  # at once, for barge-in
    s.tick(1.5)
    assert told == [DtmfStart("3", 800)]
    s.tick(2.1)
    assert told == [DtmfStart("3", 800), DtmfEvent("3", 800, 160)]


def test_tick_cost() -> None:
    """Coarse guard; the measured figure is reported separately."""
    a, b = pair()
    prompt = np.zeros(160 * 3000, np.int16)
    prompt.setflags(write=False)
    a.player.play(prompt)
    b.player.play(prompt)
    now = 0.0
    for _ in range(10):
        now += 0.02
        b.receive(a.tick(now) or b"", A_ADDR, now)
    start = time.perf_counter()
    for _ in range(2000):
        now += 0.02
        data = a.tick(now)
        assert data is not None
        b.receive(data, A_ADDR, now)
        b.tick(now)
    per_call = (time.perf_counter() - start) / 2000
    assert per_call < 1e-3


def test_sipp_g711a_30ms_capture_plays_continuously_at_real_speed() -> None:
    """SIPp's g711a.pcap sends 30 ms (240-byte) packets: re-framed into 20 ms ticks at real timing."""
    datagrams = read_udp("/usr/share/sip-tester/g711a.pcap")
    packets = [RtpPacket.parse(d.payload) for d in datagrams]
    assert {len(p.payload) for p in packets} == {240}
    stream = MediaStream("PCMA", 101, None, rng=random.Random(12))
    heard: list[np.ndarray | None] = []
    t0 = datagrams[0].time
    arrivals = [(d.time - t0, 0, i) for i, d in enumerate(datagrams)]
    ticks = [(0.005 + 0.02 * k, 1, k) for k in range(int(7.5 / 0.02))]
    for t, kind, i in sorted(arrivals + ticks):
        if kind == 0:
            stream.receive(datagrams[i].payload, datagrams[i].src, 100.0 + t)
        else:
            stream.tick(100.0 + t)
            frame = stream.received_frame
            heard.append(None if frame is None else frame.copy())
    first = next(i for i, f in enumerate(heard) if f is not None)
    last = max(i for i, f in enumerate(heard) if f is not None)
    played = heard[first : last + 1]
    assert all(f is not None for f in played)  # no underrun in the middle
    assert len(played) * 160 == len(packets) * 240  # 7.08 s in, 7.08 s out
    pcma = codec_by_name("PCMA")
    expected = pcma.decode(b"".join(p.payload for p in packets))
    assert np.array_equal(np.concatenate(played), expected)  # type: ignore[arg-type]
    assert stream.jitter.stats.underruns == 1  # only when the capture ends
    assert stream.jitter.stats.lost == 0
    assert stream.jitter.packet_samples == 240


def test_inband_digit_starts_on_its_first_confident_frame() -> None:
    a = MediaStream("PCMU", None, B_ADDR, rng=random.Random(1))
    b = MediaStream("PCMU", None, A_ADDR, rng=random.Random(2), inband_dtmf=True)
    link = Link(a, b)
    a.send_dtmf("7")
    link.run(12)
    got = [e for e in link.events_b if isinstance(e, DtmfStart | DtmfEvent)]
    assert [type(e) for e in got] == [DtmfStart, DtmfEvent]
    start, event = got
    assert isinstance(start, DtmfStart) and isinstance(event, DtmfEvent)
    assert start.digit == event.digit == "7"
    assert start.start_timestamp == event.start_timestamp


def test_the_listener_sees_every_tick_and_rfc4733_events() -> None:
    a, b = pair()
    a.player.play(np.full(160 * 5, 300, np.int16))
    link = Link(a, b)
    told = recorded(b)
    link.run(8)
    a.send_dtmf("5")
    link.run(15)
    assert len(told.frames) == 23
    assert sum(f is not None for f in told.frames) == 5
    assert [type(e) for e in told.events] == [DtmfStart, DtmfEvent]


class BargeIn(Recorder):
    """Stops the prompt on every key press it is told of, as a call does (barge-in)."""

    def on_events(self, stream: MediaStream, events: list[MediaEvent]) -> None:
        super().on_events(stream, events)
        stream.player.stop_interruptible()


def test_a_tick_tells_its_events_once_its_packet_is_built() -> None:
    # An in-band digit becomes known during a tick: the frame that tick sends still goes out, and
    # the barge-in it causes silences the next one (a key received between ticks, the next tick).
    caller = MediaStream("PCMU", None, A_ADDR, rng=random.Random(1))
    ivr = MediaStream("PCMU", None, B_ADDR, rng=random.Random(2), inband_dtmf=True)
    ivr.listener = barge = BargeIn()
    ivr.player.play(np.full(160 * 100, 300, np.int16))
    caller.send_dtmf("7")
    now = 1.0
    sent: list[bytes | None] = []
    while not barge.events:
        assert len(sent) < 50, "the digit was never heard"
        now += 0.02
        out = caller.tick(now)
        if out:
            ivr.receive(out, B_ADDR, now)
        sent.append(ivr.tick(now))
    assert isinstance(barge.events[0], DtmfStart)
    assert sent[-1] is not None  # built before the start was told
    assert ivr.tick(now + 0.02) is None  # the prompt stopped from the next frame on


def test_send_frame_goes_out_on_the_next_tick_and_mixes_with_a_prompt() -> None:
    a, b = pair()
    link = Link(a, b)
    a.send_frame(np.full(160, 1000, np.int16))
    link.run(1)
    first = link.sent_a[-1]
    assert first is not None and set(PCMU.decode(first.payload).tolist()) == {
        int(PCMU.decode(PCMU.encode(np.array([1000], np.int16)))[0])
    }
    link.run(1)
    assert link.sent_a[-1] is None  # live frames are not repeated
    a.player.play(np.full(160, 500, np.int16))
    a.send_frame(np.full(160, 1000, np.int16))
    link.run(1)
    mixed = link.sent_a[-1]
    assert mixed is not None
    assert abs(int(PCMU.decode(mixed.payload)[0]) - 1500) < 40
    assert not a.player.playing


def test_signalled_address_takes_the_latch_back_from_a_stranger() -> None:
    # RTP bleed: a stranger sprays our ports before the caller's first packet.
    s = MediaStream("PCMU", 101, B_ADDR, rng=random.Random(9))
    s.receive(rtp(1, ssrc=0x6666), EVIL, now=1.0)
    assert s.latched is None and s.stats.foreign_source == 1
    s.receive(rtp(1), B_ADDR, now=1.01)  # the caller, where the SDP said
    assert s.latched == B_ADDR
    s.receive(rtp(2, ssrc=0x6666), EVIL, now=1.02)
    assert s.latched == B_ADDR and s.stats.foreign_source == 2
    # A caller silent past the grace lets the stranger latch; its first packet takes it back.
    late = MediaStream("PCMU", 101, B_ADDR, rng=random.Random(9))
    late.receive(rtp(1, ssrc=0x6666), EVIL, now=1.0)
    late.receive(rtp(2, ssrc=0x6666), EVIL, now=1.6)
    assert late.latched == EVIL
    late.receive(rtp(1), B_ADDR, now=1.7)
    assert late.latched == B_ADDR and late.stats.relatched == 1


def test_a_caller_behind_nat_hears_the_prompt_from_its_first_word() -> None:
    # The SDP names a private address; the caller's packets come from their NAT's public one.
    s = MediaStream("PCMU", 101, B_ADDR, rng=random.Random(5))
    prompt = np.arange(160 * 60, dtype=np.int16) % 2000  # every frame tells where it came from
    s.player.play(prompt)
    first = s.tick(1.00)
    assert first is not None  # nothing heard yet: the prompt starts towards the SDP's address
    nat = ("192.0.2.7", 30000)
    s.receive(rtp(1), nat, now=1.01)
    held = [s.tick(1.02 + 0.02 * i) for i in range(20)]  # the stranger's probation: 0.4 s
    assert held == [None] * 20  # not sent into the void
    s.receive(rtp(30), nat, now=1.52)  # still the only source after the grace: latched
    assert s.latched == nat and s.send_address == nat
    resumed = s.tick(1.54)
    assert resumed is not None
    packet = RtpPacket.parse(resumed)
    # It goes on with the prompt's second frame (nothing skipped), as a new talkspurt.
    expected = PCMU.encode(prompt[160:320])
    assert packet.payload == expected and packet.marker


def test_the_prompt_is_held_for_the_grace_at_most() -> None:
    s = MediaStream("PCMU", 101, B_ADDR, rng=random.Random(6))
    s.player.play(np.full(160 * 60, 300, np.int16))
    s.receive(rtp(1), EVIL, now=1.0)  # one stray packet, then nothing from anyone
    assert s.tick(1.3) is None
    assert s.tick(1.62) is not None and s.send_address == B_ADDR  # back to the SDP's address
