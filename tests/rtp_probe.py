"""An independent RTP receiver that calls the IVR and measures what it sends.

It shares no code with the server: SIP is hand-written text over plain sockets, and every RTP
packet is stamped with the receive time in one thread with a selector. From those stamps it
reports the spacing of packets, sequence continuity and timestamp steps per stream: what the
caller's phone would actually see, not what the server thinks it sent.
"""

from __future__ import annotations

import itertools
import selectors
import socket
import statistics
import struct
import time
import uuid
from dataclasses import dataclass, field


@dataclass
class StreamRecord:
    call_id: str
    setup_ms: float | None = None
    status: int | None = None
    arrivals: list[float] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)
    markers: list[bool] = field(default_factory=list)
    ssrcs: set[int] = field(default_factory=set)
    bye_from_server: bool = False
    keys_sent_at: float | None = None  # when the last RFC 4733 end packet of the keys went out
    reply_ms: float | None = None  # keys sent -> first RTP packet of the IVR's reply

    def spacings_before_keys_ms(self) -> list[float]:
        """Spacing within the prompt that plays before any key (barge-in silence excluded)."""
        cut = self.keys_sent_at if self.keys_sent_at is not None else float("inf")
        times = [t for t in self.arrivals if t < cut]
        return [1000 * (b - a) for a, b in itertools.pairwise(times)]

    def gaps_before_keys(self) -> tuple[list[float], list[float], int]:
        """Before the keys: spacings (ms) inside a talkspurt, spacings into a new talkspurt (the
        pause between two prompts, whose first packet has the marker bit), and how many packets
        are missing. A long spacing with no packet missing is the sender's own pause; one with
        missing packets is loss (on the way, or in the receiver's socket buffer)."""
        cut = self.keys_sent_at if self.keys_sent_at is not None else float("inf")
        kept = [
            (t, seq, marker)
            for t, seq, marker in zip(self.arrivals, self.seqs, self.markers, strict=False)
            if t < cut
        ]
        within: list[float] = []
        between: list[float] = []
        lost = 0
        for (t0, s0, _), (t1, s1, marker) in itertools.pairwise(kept):
            step = (s1 - s0) & 0xFFFF
            if step == 1:
                (between if marker else within).append(1000 * (t1 - t0))
            elif step < 0x8000:
                lost += step - 1
        return within, between, lost

    def spacings_ms(self) -> list[float]:
        return [1000 * (b - a) for a, b in zip(self.arrivals, self.arrivals[1:], strict=False)]

    def seq_gaps(self) -> int:
        return sum(1 for a, b in zip(self.seqs, self.seqs[1:], strict=False) if (b - a) & 0xFFFF != 1)

    def timestamp_steps(self) -> set[int]:
        return {(b - a) & 0xFFFFFFFF for a, b in zip(self.timestamps, self.timestamps[1:], strict=False)}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class _Call:
    record: StreamRecord
    sip: socket.socket
    rtp: socket.socket
    started: float
    tag: str
    to_header: str = ""
    cseq: int = 1
    state: str = "inviting"
    answered_at: float = 0.0
    remote_rtp: tuple[str, int] | None = None
    # RFC 3261 Timer A: a lost INVITE is sent again after 0.5 s, 1 s, 2 s... until the server
    # answers at all, as every real phone does; without it one dropped datagram is a failed call.
    invite: bytes = b""
    resend_at: float = 0.0
    resend_interval: float = 0.5
    heard_back: bool = False


def _sdp(port: int) -> str:
    return (
        "v=0\r\no=probe 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    )


def _request(method: str, target: tuple[str, int], call: _Call, body: str = "") -> bytes:
    local = call.sip.getsockname()
    lines = [
        f"{method} sip:ivr@{target[0]}:{target[1]} SIP/2.0",
        f"Via: SIP/2.0/UDP {local[0]}:{local[1]};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport",
        "Max-Forwards: 70",
        f"From: <sip:probe@{local[0]}:{local[1]}>;tag={call.tag}",
        call.to_header or f"To: <sip:ivr@{target[0]}:{target[1]}>",
        f"Call-ID: {call.record.call_id}",
        f"CSeq: {call.cseq} {method}",  # an ACK carries the INVITE's number and its own method
        f"Contact: <sip:probe@{local[0]}:{local[1]}>",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


def _header(text: str, name: str) -> str:
    for line in text.split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() == name.lower():
            return f"{key}:{value}"
    return ""


def probe_calls(
    target: tuple[str, int],
    calls: int,
    hold: float,
    *,
    start_interval: float = 0.0,
    deadline: float = 120.0,
    keys: str = "",
    keys_at: float = 2.0,
) -> list[StreamRecord]:
    """Place ``calls`` calls (one every ``start_interval`` s), keep each ``hold`` s, hang up.

    With ``keys``, each call presses them (RFC 4733) ``keys_at`` s after the answer and measures
    how long the IVR takes to start its reply.
    """
    selector = selectors.DefaultSelector()
    active: list[_Call] = []
    records: list[StreamRecord] = []
    begin = time.monotonic()
    next_start = begin
    started = 0
    try:
        while time.monotonic() - begin < deadline:
            now = time.monotonic()
            if started < calls and now >= next_start:
                active.append(_start_call(target, selector))
                records.append(active[-1].record)
                started += 1
                next_start = now + start_interval
            for key, _ in selector.select(timeout=0.002):
                call: _Call = key.data
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = sock.recv(4096)
                except OSError:
                    continue
                stamp = time.monotonic()
                if sock is call.rtp:
                    _on_rtp(call, data, stamp)
                else:
                    _on_sip(call, data.decode(errors="replace"), target, stamp)
            now = time.monotonic()
            for call in active:
                if call.state == "inviting" and not call.heard_back and now >= call.resend_at:
                    call.sip.sendto(call.invite, target)
                    call.resend_interval *= 2  # Timer A doubles (§17.1.1.2)
                    call.resend_at = now + call.resend_interval
                if (
                    keys
                    and call.state == "up"
                    and call.record.keys_sent_at is None
                    and now - call.answered_at >= keys_at
                ):
                    _press(call, keys)
                if call.state == "up" and now - call.answered_at >= hold:
                    call.cseq += 1
                    call.sip.sendto(_request("BYE", target, call), target)
                    call.state = "bye-sent"
                    call.answered_at = now
                elif call.state == "bye-sent" and now - call.answered_at > 2:
                    call.state = "done"
            finished = [c for c in active if c.state in ("done", "failed", "ended")]
            if started == calls and len(finished) == len(active):
                break
            if len(finished) > 200:
                # Long runs: a finished call's sockets go now, not at the end (file descriptors).
                for call in finished:
                    _close(call, selector)
                active = [c for c in active if c.state not in ("done", "failed", "ended")]
    finally:
        for call in active:
            _close(call, selector)
        selector.close()
    return records


def _close(call: _Call, selector: selectors.BaseSelector) -> None:
    selector.unregister(call.sip)
    selector.unregister(call.rtp)
    call.sip.close()
    call.rtp.close()


def _start_call(target: tuple[str, int], selector: selectors.BaseSelector) -> _Call:
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sip.bind(("127.0.0.1", 0))
    rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rtp.bind(("127.0.0.1", 0))
    rtp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    call = _Call(StreamRecord(uuid.uuid4().hex), sip, rtp, time.monotonic(), uuid.uuid4().hex[:8])
    selector.register(sip, selectors.EVENT_READ, call)
    selector.register(rtp, selectors.EVENT_READ, call)
    call.invite = _request("INVITE", target, call, _sdp(rtp.getsockname()[1]))
    call.resend_at = call.started + call.resend_interval
    sip.sendto(call.invite, target)
    return call


def _press(call: _Call, keys: str) -> None:
    """Send each key as an RFC 4733 event: a start packet, then three end packets (§2.5.1.4)."""
    target = call.remote_rtp
    if target is None:
        return
    events = {d: i for i, d in enumerate("0123456789*#ABCD")}
    seq, timestamp = 1000, 160_000
    for digit in keys:
        code = events[digit]
        packets = [(True, False, 160)] + [(False, True, 800)] * 3
        for marker, end, duration in packets:
            header = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | 101, seq, timestamp, 0x1234)
            payload = struct.pack("!BBH", code, (0x80 if end else 0) | 10, duration)
            call.rtp.sendto(header + payload, target)
            seq += 1
        timestamp += 1600
    call.record.keys_sent_at = time.monotonic()


def _on_rtp(call: _Call, data: bytes, stamp: float) -> None:
    if len(data) < 12:
        return
    _, second, seq, timestamp, ssrc = struct.unpack("!BBHII", data[:12])
    if second & 0x7F != 0:
        return  # only the audio stream's pacing is measured
    record = call.record
    if record.keys_sent_at is not None and record.reply_ms is None:
        # The first key stops the prompt before the next 20 ms tick (barge-in), so the first
        # packet after the keys is the start of the IVR's reply.
        record.reply_ms = 1000 * (stamp - record.keys_sent_at)
    record.arrivals.append(stamp)
    record.seqs.append(seq)
    record.timestamps.append(timestamp)
    record.markers.append(bool(second & 0x80))
    record.ssrcs.add(ssrc)


def _on_sip(call: _Call, text: str, target: tuple[str, int], stamp: float) -> None:
    first_line = text.split("\r\n", 1)[0]
    if first_line.startswith("SIP/2.0 "):
        call.heard_back = True
        status = int(first_line.split()[1])
        cseq = _header(text, "CSeq")
        if "INVITE" in cseq and status >= 200:
            call.record.status = status
            if status < 300:
                call.to_header = _header(text, "To")
                call.remote_rtp = _sdp_media(text)
                call.sip.sendto(_request("ACK", target, call), target)
                if call.state == "inviting":
                    call.record.setup_ms = 1000 * (stamp - call.started)
                    call.state = "up"
                    call.answered_at = stamp
            else:
                call.state = "failed"
        elif "BYE" in cseq:
            call.state = "done"
        return
    if first_line.startswith("BYE "):
        call.record.bye_from_server = True
        reply = ["SIP/2.0 200 OK"]
        for name in ("Via", "From", "To", "Call-ID", "CSeq"):
            reply.append(_header(text, name))
        reply.append("Content-Length: 0")
        call.sip.sendto(("\r\n".join(reply) + "\r\n\r\n").encode(), target)
        call.state = "ended"


def _sdp_media(text: str) -> tuple[str, int] | None:
    host, port = "", 0
    for line in text.split("\r\n"):
        if line.startswith("c=IN IP4 "):
            host = line.split()[-1]
        elif line.startswith("m=audio "):
            port = int(line.split()[1])
    return (host, port) if host and port else None


def summary(records: list[StreamRecord]) -> dict[str, float]:
    spacings = [s for r in records for s in r.spacings_before_keys_ms()]
    split = [r.gaps_before_keys() for r in records]
    within = [s for spacings, _, _ in split for s in spacings]
    between = [s for _, spacings, _ in split for s in spacings]
    replies = [r.reply_ms for r in records if r.reply_ms is not None]
    setups = [r.setup_ms for r in records if r.setup_ms is not None]
    return {
        "calls": len(records),
        "answered": sum(1 for r in records if r.status == 200),
        "packets": sum(len(r.arrivals) for r in records),
        "spacing_p50_ms": percentile(spacings, 50),
        "spacing_p99_ms": percentile(spacings, 99),
        "spacing_max_ms": max(spacings) if spacings else float("nan"),
        # The sender's longest pause inside a prompt and between prompts (no packet missing in
        # between either way), and the packets lost.
        "within_max_ms": max(within) if within else float("nan"),
        "between_max_ms": max(between) if between else float("nan"),
        "lost_packets": sum(lost for _, _, lost in split),
        "setup_p50_ms": percentile(setups, 50),
        "setup_p99_ms": percentile(setups, 99),
        "mean_spacing_ms": statistics.fmean(spacings) if spacings else float("nan"),
        "replies": len(replies),
        "reply_p50_ms": percentile(replies, 50),
        "reply_p95_ms": percentile(replies, 95),
    }
