"""The real-caller benchmark's pure parts, with crafted bytes: the caller's pcap, reading captures,
and the calls and timings taken from them. No sockets, no tcpdump."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from bench.caller_pcap import (
    FRAME,
    KEY_PACKETS,
    PCMU,
    TELEPHONE_EVENT,
    caller_stream,
    internet_checksum,
    pcap_file_header,
    pcap_record,
    rtp_packet,
    telephone_event,
    udp_frame,
    write_pcap,
)
from bench.wire_calls import WireReport, analyse, assign_to_calls, parse_sip
from bench.wire_capture import (
    LINKTYPE_LINUX_SLL,
    CaptureCounts,
    PcapError,
    concat,
    first_stamp,
    ip_number,
    read_pcap,
    rtp_fields,
    select,
)

LOCAL = "127.0.0.1"


def _fields(rtp: bytes) -> tuple[int, int, int, int, int]:
    """(marker, payload type, seq, timestamp, ssrc) of an RTP packet."""
    _, second, seq, stamp, ssrc = struct.unpack("!BBHII", rtp[:12])
    return second >> 7, second & 0x7F, seq, stamp, ssrc


# --- the caller's stream -------------------------------------------------------------------------


def test_caller_stream_is_one_rtp_stream_with_the_key_inside() -> None:
    speech = bytes(range(256)) * 10  # 16 packets' worth
    packets = caller_stream(speech[: 3 * FRAME], "1", speech[: 2 * FRAME], ssrc=7, seq=65534, timestamp=100)
    assert len(packets) == 3 + KEY_PACKETS + 3 + 2
    fields = [_fields(p.rtp) for p in packets]
    assert {ssrc for *_, ssrc in fields} == {7}
    assert [seq for _, _, seq, _, _ in fields] == [(65534 + i) & 0xFFFF for i in range(len(packets))]
    audio, key, after = fields[:3], fields[3:-2], fields[-2:]
    assert [(m, pt, ts) for m, pt, _, ts, _ in audio] == [(1, PCMU, 100), (0, PCMU, 260), (0, PCMU, 420)]
    pressed = 100 + 3 * FRAME
    assert all(pt == TELEPHONE_EVENT and ts == pressed for _, pt, _, ts, _ in key)  # RFC 4733 §2.5.1.2
    assert [m for m, *_ in key] == [1] + [0] * (len(key) - 1)
    events = [struct.unpack("!BBH", p.rtp[12:16]) for p in packets[3:-2]]
    assert [e for e, _, _ in events] == [1] * len(events)
    assert [bool(flags & 0x80) for _, flags, _ in events] == [False] * KEY_PACKETS + [True] * 3
    durations = [d for _, _, d in events]
    assert durations == [FRAME * k for k in range(1, KEY_PACKETS + 1)] + [FRAME * (KEY_PACKETS + 1)] * 3
    # The speech after the key carries on where the event ended: the stream's clock never jumps.
    assert [(m, pt, ts) for m, pt, _, ts, _ in after] == [
        (0, PCMU, pressed + durations[-1]),
        (0, PCMU, pressed + durations[-1] + FRAME),
    ]
    times = [p.at for p in packets]
    assert times[:4] == [0.0, 0.02, 0.04, 0.06]
    assert times[-5] == times[-4] == times[-3]  # the three end packets back to back
    assert times[-2] == pytest.approx(times[-3] + 0.02)
    assert packets[0].rtp[12:] == speech[:FRAME]


def test_telephone_event_payload() -> None:
    assert telephone_event("#", True, 800) == bytes([11, 0x80 | 10, 0x03, 0x20])
    assert telephone_event("1", False, 160, volume=7) == bytes([1, 7, 0x00, 0xA0])


def test_udp_frame_checksums_are_right() -> None:
    frame = udp_frame(("10.0.0.1", 1234), ("10.0.0.2", 5678), b"hello")
    ip, udp = frame[14:34], frame[34:]
    assert internet_checksum(ip) == 0
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, len(udp))  # RFC 768
    assert internet_checksum(pseudo + udp) == 0
    assert internet_checksum(b"\x00\x01\xf2\x03\xf4\xf5\xf6\xf7") == 0x220D  # RFC 1071 §3's example
    assert struct.unpack("!HHH", udp[:6]) == (1234, 5678, 13)


def test_written_pcap_reads_back() -> None:
    packets = caller_stream(b"\x7f" * (2 * FRAME), "5", b"\x7f" * FRAME)
    data = write_pcap(packets, src=("127.0.0.1", 6000), dst=("127.0.0.2", 20002), start=1000.0)
    udp = read_pcap(data)
    assert len(udp) == len(packets)
    assert list(udp.sport) == [6000] * len(packets) and list(udp.dport) == [20002] * len(packets)
    assert set(udp.dst) == {ip_number("127.0.0.2")}
    assert udp.time[0] == 1000.0
    assert np.all(np.diff(udp.time) > 0)  # back-to-back end packets stay in order
    assert [udp.payload(i) for i in range(len(udp))] == [p.rtp for p in packets]
    rtp = rtp_fields(udp)
    assert list(rtp.index) == list(range(len(packets)))
    assert rtp.end.tolist()[2 + KEY_PACKETS :][:3] == [True] * 3
    assert int(rtp.event[2]) == 5


# --- reading captures ----------------------------------------------------------------------------


def _frame(sport: int, dport: int, payload: bytes) -> bytes:
    return udp_frame((LOCAL, sport), (LOCAL, dport), payload)


def test_truncated_last_record_and_other_protocols_are_skipped() -> None:
    good = pcap_record(1.5, _frame(1, 2, b"x" * 20))
    arp = pcap_record(1.6, b"\xff" * 12 + b"\x08\x06" + b"\0" * 28)
    tcp = bytearray(_frame(3, 4, b"y" * 20))
    tcp[14 + 9] = 6  # the IPv4 protocol field: TCP
    ipv6 = pcap_record(1.8, b"\0" * 12 + b"\x86\xdd" + b"\0" * 60)
    fragment = bytearray(_frame(5, 6, b"z" * 20))
    fragment[14 + 6 : 14 + 8] = struct.pack("!H", 0x0010)  # a later fragment: no UDP header there
    last = pcap_record(2.0, _frame(7, 8, b"w" * 20))
    data = pcap_file_header() + good + arp + pcap_record(1.7, bytes(tcp)) + ipv6
    data += pcap_record(1.9, bytes(fragment)) + good + last[:-5]
    udp = read_pcap(data)
    assert list(udp.sport) == [1, 1] and list(udp.time) == [1.5, 1.5]
    assert udp.payload(1) == b"x" * 20


def test_snap_length_cuts_the_payload_not_the_lengths() -> None:
    data = pcap_file_header(64) + pcap_record(1.0, _frame(1, 2, bytes(172)), snaplen=64) * 3
    udp = read_pcap(data)
    assert len(udp) == 3
    assert list(udp.payload_len) == [64 - 42] * 3 and list(udp.udp_len) == [172] * 3


def test_runs_of_equal_records_with_odd_ones_between() -> None:
    """The reader takes runs of same-length records at once; odd lengths in between stay in place."""
    records, expected = [], []
    for i in range(300):
        size = 30 if i % 37 == 0 else 172
        records.append(pcap_record(float(i), _frame(i + 1, 9, bytes(size)), snaplen=64))
        expected.append(i + 1)
    udp = read_pcap(pcap_file_header(64) + b"".join(records))
    assert list(udp.sport) == expected
    assert list(udp.time) == [float(i) for i in range(300)]


def test_big_endian_nanosecond_linux_sll_with_ip_options() -> None:
    header = struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, LINKTYPE_LINUX_SLL)
    frame = bytearray(_frame(40, 50, b"payload"))
    ip = frame[14:34]
    ip[0] = 0x46  # 24-byte header: one word of options
    ip[2:4] = struct.pack("!H", 24 + 8 + 7)
    sll = b"\0" * 14 + b"\x08\x00" + bytes(ip) + b"\x01\x01\x01\x01" + frame[34:]
    record = struct.pack(">IIII", 12, 500_000_000, len(sll), len(sll)) + sll
    udp = read_pcap(header + record)
    assert list(udp.sport) == [40] and udp.payload(0) == b"payload"
    assert udp.time[0] == pytest.approx(12.5)


def test_not_a_pcap() -> None:
    with pytest.raises(PcapError):
        read_pcap(b"\x0a\x0d\x0d\x0a" + b"\0" * 40)  # pcapng
    with pytest.raises(PcapError):
        read_pcap(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 228))  # raw IPv4


def test_rtcp_and_short_datagrams_are_not_rtp() -> None:
    rtcp = bytes([0x80, 200]) + bytes(26)
    rtp = rtp_packet(0, 1, 2, 3, bytes(160), marker=True)
    data = pcap_file_header(64) + b"".join(
        pcap_record(1.0, _frame(1, 2, p), 64) for p in (rtcp, b"\x80\x00", rtp, b"\x00" * 20)
    )
    fields = rtp_fields(read_pcap(data))
    assert list(fields.index) == [2]
    assert fields.marker.tolist() == [True] and int(fields.ssrc[0]) == 3


def test_tcpdump_counts() -> None:
    text = (
        "tcpdump: listening on lo\n120 packets captured\n"
        "130 packets received by filter\n7 packets dropped by kernel\n"
    )
    assert CaptureCounts.parse(text) == CaptureCounts(120, 130, 7)


# --- calls and timings ---------------------------------------------------------------------------

SERVER = (LOCAL, 5080)
CALLER_SIP, CALLER_RTP = 5090, 6000


def _sdp(port: int) -> str:
    return (
        f"v=0\r\no=- 1 1 IN IP4 {LOCAL}\r\ns=-\r\nc=IN IP4 {LOCAL}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
    )


def _sip(first: str, call_id: str, cseq: str, body: str = "", compact: bool = False) -> bytes:
    name = "i" if compact else "Call-ID"
    return (
        f"{first}\r\nVia: SIP/2.0/UDP {LOCAL}:{CALLER_SIP}\r\n{name}: {call_id}\r\nCSeq: {cseq}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


class _Wire:
    """Two captures being written: SIP and RTP."""

    def __init__(self) -> None:
        self.sip: list[bytes] = []
        self.rtp: list[bytes] = []

    def to_server(self, at: float, message: bytes) -> None:
        self.sip.append(pcap_record(at, _frame(CALLER_SIP, SERVER[1], message)))

    def from_server(self, at: float, message: bytes) -> None:
        self.sip.append(pcap_record(at, _frame(SERVER[1], CALLER_SIP, message)))

    def call(self, call_id: str, at: float, server_rtp: int, answer_after: float = 0.002) -> None:
        invite = _sip("INVITE sip:ivr@127.0.0.1 SIP/2.0", call_id, "1 INVITE", _sdp(CALLER_RTP))
        self.to_server(at, invite)
        self.from_server(at + 0.0005, _sip("SIP/2.0 100 Trying", call_id, "1 INVITE"))
        self.from_server(at + answer_after, _sip("SIP/2.0 200 OK", call_id, "1 INVITE", _sdp(server_rtp)))
        self.to_server(at + answer_after + 0.0002, _sip("ACK sip:ivr@127.0.0.1 SIP/2.0", call_id, "1 ACK"))

    def hangup(self, call_id: str, at: float) -> None:
        self.from_server(at, _sip("BYE sip:sipp@127.0.0.1 SIP/2.0", call_id, "1 BYE", compact=True))
        self.to_server(at + 0.0003, _sip("SIP/2.0 200 OK", call_id, "1 BYE"))

    def server_audio(
        self, at: float, server_rtp: int, seq: int, stamp: int, ssrc: int, marker: bool = False
    ) -> None:
        packet = rtp_packet(0, seq, stamp, ssrc, bytes(160), marker)
        self.rtp.append(pcap_record(at, _frame(server_rtp, CALLER_RTP, packet), 64))

    def caller(self, at: float, server_rtp: int, packet: bytes) -> None:
        self.rtp.append(pcap_record(at, _frame(CALLER_RTP, server_rtp, packet), 64))

    def key(self, at: float, server_rtp: int, seq: int, stamp: int) -> None:
        self.caller(at, server_rtp, rtp_packet(101, seq, stamp, 9, telephone_event("1", False, 160), True))
        for copy in range(3):
            end = rtp_packet(101, seq + 1 + copy, stamp, 9, telephone_event("1", True, 320))
            self.caller(at + 0.02 + copy * 20e-6, server_rtp, end)

    def report(self) -> WireReport:
        rtp = sorted(self.rtp, key=lambda record: struct.unpack_from("<II", record))
        return analyse(
            read_pcap(pcap_file_header() + b"".join(self.sip)),
            read_pcap(pcap_file_header(64) + b"".join(rtp)),
            SERVER,
        )


def test_setup_spacing_and_key_to_bye_from_a_crafted_capture() -> None:
    wire = _Wire()
    # Call a: on server port 20000; its INVITE went out twice (setup counts from the first).
    wire.to_server(9.5, _sip("INVITE sip:ivr@127.0.0.1 SIP/2.0", "a", "1 INVITE", _sdp(CALLER_RTP)))
    wire.call("a", 10.0, 20000, answer_after=0.004)
    # Its prompt: 20 ms spacing, one packet 25 ms late (counted), a timestamp jump (silence
    # between prompts: not counted) and a marked talkspurt (not counted).
    times = [10.02, 10.04, 10.085, 10.10, 10.60, 10.62, 11.50, 11.52]
    stamps = [0, 160, 320, 480, 4480, 4640, 9000, 9160]
    for n, (at, stamp) in enumerate(zip(times, stamps, strict=True)):
        wire.server_audio(at, 20000, 100 + n, stamp, ssrc=0xAAAA, marker=n in (0, 6))
    wire.caller(10.03, 20000, rtp_packet(0, 1, 0, 9, bytes(160), True))
    wire.key(12.0, 20000, 2, 1000)
    wire.hangup("a", 12.0 + 0.02 + 40e-6 + 0.005)  # 5 ms after the last end packet
    # Call b: answered, never ended by the IVR (the caller hung up): failed.
    wire.call("b", 10.5, 20002)
    wire.to_server(13.0, _sip("BYE sip:ivr@127.0.0.1 SIP/2.0", "b", "2 BYE"))
    # Call c reuses server port 20000 (and the caller's one media port) after a ended.
    wire.call("c", 14.0, 20000)
    wire.server_audio(14.1, 20000, 500, 0, ssrc=0xCCCC, marker=True)
    wire.server_audio(14.12, 20000, 501, 160, ssrc=0xCCCC)
    wire.key(14.5, 20000, 50, 8000)
    wire.hangup("c", 14.5 + 0.02 + 40e-6 + 0.010)
    # A packet to a port no call has: stray.
    wire.rtp.append(pcap_record(14.2, _frame(30000, CALLER_RTP, rtp_packet(0, 1, 1, 1, bytes(160))), 64))
    report = wire.report()
    s = report.summary
    assert [c.call_id for c in report.calls] == ["a", "b", "c"]
    assert (s["calls"], s["answered"], s["completed"], s["failed"], s["caller_hung_up"]) == (3, 3, 2, 1, 1)
    a = report.calls[0]
    assert a.answered_at is not None and 1000 * (a.answered_at - a.invite_at) == pytest.approx(504)
    assert s["setup_max_ms"] == pytest.approx(504)
    assert report.spacing_ms.tolist() == pytest.approx([15, 20, 20, 20, 20, 45])  # a's five, c's one
    assert s["spacing_max_ms"] == pytest.approx(45) and s["spacing_over_30ms_pct"] == pytest.approx(100 / 6)
    assert report.server_packets.tolist() == [8, 0, 2]
    assert report.caller_audio_packets.tolist() == [1, 0, 0]
    assert report.caller_end_packets.tolist() == [3, 0, 3]
    assert s["key_to_bye_calls"] == 2
    assert s["key_to_bye_p50_ms"] == pytest.approx(5, abs=1e-3)
    assert s["key_to_bye_max_ms"] == pytest.approx(10, abs=1e-3)
    assert s["stray_packets"] == 1 and s["seq_gaps"] == 0
    assert s["held_max"] == 2  # a and b overlap; c comes after both
    # a: 200 at 10.004, BYE at 12.02504; b: 200 at 10.502, the caller's BYE at 13; c: 14.002-14.53004
    assert s["call_seconds"] == pytest.approx(2.02104 + 2.498 + 0.52804)


def test_a_packet_missing_from_the_capture_is_a_gap_not_a_late_packet() -> None:
    wire = _Wire()
    wire.call("a", 1.0, 20000)
    for n in (0, 1, 3, 4):  # seq 2 never captured
        wire.server_audio(1.1 + 0.02 * n, 20000, n, 160 * n, ssrc=1)
    wire.hangup("a", 2.0)
    report = wire.report()
    assert report.spacing_ms.tolist() == pytest.approx([20, 20])
    assert report.seq_gaps == 1


def test_assign_binds_reused_ports_by_time() -> None:
    call_port = np.array([20000, 20002, 20000])
    call_other = np.array([6000, 6000, 6000])
    since = np.array([1.0, 1.5, 5.0])
    until = np.array([4.0, 9.0, 9.0])
    time = np.array([0.5, 1.2, 4.5, 5.1, 2.0, 3.0])
    port = np.array([20000, 20000, 20000, 20000, 20002, 20002])
    other = np.array([6000, 6000, 6000, 6000, 6000, 7000])
    assigned = assign_to_calls(time, port, other, call_port, call_other, since, until)
    assert assigned.tolist() == [-1, 0, -1, 2, 1, -1]


def test_parse_sip_takes_compact_headers_and_skips_what_is_not_sip() -> None:
    message = parse_sip(
        _sip("SIP/2.0 200 OK", "x", "7 INVITE", _sdp(20004), compact=True), 1.0, (1, 2), (3, 4)
    )
    assert message is not None
    assert (message.status, message.call_id, message.cseq_method) == (200, "x", "INVITE")
    assert message.media == (ip_number(LOCAL), 20004) and message.event_payload_type == 101
    assert parse_sip(b"\r\n\r\n", 1.0, (1, 2), (3, 4)) is None  # a keep-alive
    assert parse_sip(b"\x80\x00garbage", 1.0, (1, 2), (3, 4)) is None


def test_a_call_never_answered_and_packets_of_no_call() -> None:
    wire = _Wire()
    wire.to_server(1.0, _sip("INVITE sip:ivr@127.0.0.1 SIP/2.0", "lost", "1 INVITE", _sdp(CALLER_RTP)))
    wire.caller(1.1, 20000, rtp_packet(101, 1, 1, 1, telephone_event("1", True, 160)))
    s = wire.report().summary
    assert (s["calls"], s["answered"], s["completed"], s["failed"]) == (1, 0, 0, 1)
    assert s["stray_packets"] == 1 and s["key_to_bye_calls"] == 0
    assert np.isnan(s["setup_p99_ms"]) and np.isnan(s["spacing_p99_ms"])


def test_pauses_inside_a_prompt_count_also_across_a_timestamp_jump() -> None:
    """The IVR marks the first packet after silence; an unmarked packet whose timestamp jumps
    follows a hold-up of its clock (a new timeline), and is a pause in the prompt."""
    wire = _Wire()
    wire.call("a", 1.0, 20000)
    times = [1.10, 1.12, 1.14, 1.44, 1.46, 2.06, 2.08]
    stamps = [0, 160, 320, 2720, 2880, 8000, 8160]
    for n, (at, stamp) in enumerate(zip(times, stamps, strict=True)):
        wire.server_audio(at, 20000, n, stamp, ssrc=5, marker=n in (0, 5))  # two prompts
    wire.hangup("a", 2.5)
    wire.call("b", 3.0, 20002)
    wire.server_audio(3.1, 20002, 0, 0, ssrc=6, marker=True)  # one packet: no interval
    wire.hangup("b", 3.5)
    report = wire.report()
    assert report.spacing_ms.tolist() == pytest.approx([20, 20, 20, 20])  # the jump is left out here
    assert report.prompt_gap_ms[0] == pytest.approx(300) and report.prompt_gap_at[0] == 1.44
    assert report.between_gap_ms[0] == pytest.approx(600)
    assert report.stamp_jumps.tolist() == [1, 0]
    assert np.isnan(report.prompt_gap_ms[1]) and np.isnan(report.between_gap_ms[1])
    s = report.summary
    assert (s["prompt_gap_max_ms"], s["between_gap_max_ms"], s["stamp_jumps"]) == pytest.approx((300, 600, 1))


def test_rotated_files_are_cut_and_joined_back() -> None:
    records = [pcap_record(10.0 + i, _frame(i + 1, 9, bytes(20 + i))) for i in range(6)]
    first = read_pcap(pcap_file_header() + b"".join(records[:3]))
    second = read_pcap(pcap_file_header() + b"".join(records[3:]))
    assert first_stamp((pcap_file_header() + records[3])[:40]) == 13.0
    assert first_stamp(pcap_file_header()) is None  # nothing written yet
    cut = select(first, first.time >= 11.0)
    assert list(cut.sport) == [2, 3] and len(cut.data) < len(first.data)
    joined = concat([cut, select(second, second.time <= 14.0)])
    assert list(joined.sport) == [2, 3, 4, 5] and list(joined.time) == [11.0, 12.0, 13.0, 14.0]
    assert [joined.payload(i) for i in range(4)] == [bytes(21), bytes(22), bytes(23), bytes(24)]
    assert len(concat([])) == 0 and len(select(first, first.time > 99)) == 0
