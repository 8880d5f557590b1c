"""Calls and their timings from a wire capture: SIP for the calls, RTP for what each side sent.

Input: the `UdpPackets` of the SIP capture and of the RTP capture (bench/wire_capture.py) and the
server's SIP address. Output: a `WireReport`, one row of figures per call and a summary.

Calls (per Call-ID, in capture order): the first INVITE towards the server (a retransmission
changes nothing), its first final response, the first ACK, the first BYE from the server (the
IVR hanging up) and the caller's 200 to it; a BYE from the caller is noted as such. The media
addresses come from the SDP: the caller's from the INVITE's offer, the IVR's from its 200.

Streams: an RTP packet belongs to the call whose SDP names its two ports, among the calls using
that server port, the latest that had begun by the packet's time: ports are reused during a run
(the IVR hands its range out round robin, and SIPp sends every call from its one media port),
so the port pair alone is not enough. The IVR's packets count from the call's INVITE (the IVR
binds the port then), the caller's from the 200 (when the caller learns it), until a second after
the call ended; a packet outside every window is stray.

Figures:
- setup: INVITE -> 200 OK per call;
- RTP spacing: the time between consecutive packets of one IVR stream (call and SSRC) within a
  talkspurt: not across a marker bit (RFC 3551 §4.1, a new talkspurt) nor where the timestamp
  moves more than one packet's worth (silence between prompts, not jitter), nor across a
  sequence gap (a packet missing from the capture; counted apart). A late packet inside a prompt
  keeps its place in the sequence and counts in full;
- pauses of the IVR's streams, per call: the longest interval inside a talkspurt (sequence +1,
  no marker bit) whatever the timestamp did, and the longest into a new talkspurt (marker bit:
  the pause between two prompts). The IVR marks every packet that follows silence (RFC 3551
  §4.1) and its timestamps follow the wall clock: when its media clock was held up for longer
  than it catches up on, it starts again on a new timeline and the next packet, unmarked,
  carries a timestamp jump. The spacing above leaves such an interval out (it looks like
  silence); here it counts, as the pause in the prompt the caller hears, and the jumps are
  counted too;
- key -> BYE: from the caller's last RFC 4733 end packet (E bit) to the IVR's BYE. The end packet
  goes out three times back to back; the last copy is taken, also if it trails the BYE a little;
- calls up at once: from the 200 to the end of the call, the most and the median over the
  middle half of the run (between ramp up and ramp down);
- call-seconds: the sum of answered calls' durations (200 -> BYE), the divisor for CPU per
  call-second.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from bench.wire_capture import RtpFields, UdpPackets, ip_number, rtp_fields

FRAME = 160  # timestamp units per 20 ms packet at 8 kHz
GRACE = 1.0  # seconds after a call's end during which its packets still count as its own
PROMPT_PACKETS = 245  # the real-caller flow's prompt: 4.9 s

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Endpoint = tuple[int, int]  # IPv4 as a number, UDP port

_HEADER = re.compile(r"^([A-Za-z-]+)[ \t]*:[ \t]*(.*)$")
_COMPACT = {"i": "call-id", "l": "content-length"}  # RFC 3261 §7.3.3


@dataclass(frozen=True)
class SipMessage:
    """The parts of one SIP datagram the call table needs."""

    time: float
    src: Endpoint
    dst: Endpoint
    method: str  # the request's method, "" for a response
    status: int  # the response's status code, 0 for a request
    call_id: str
    cseq_method: str
    media: Endpoint | None  # c= address and m=audio port of an SDP body
    event_payload_type: int | None  # a=rtpmap:N telephone-event/8000


def parse_sip(payload: bytes, time: float, src: Endpoint, dst: Endpoint) -> SipMessage | None:
    """One datagram as a `SipMessage`, or None when it is not SIP (a keep-alive, garbage)."""
    text = payload.decode("latin-1")
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    first = lines[0].split(" ", 2)
    if len(first) < 2:
        return None
    if first[0] == "SIP/2.0":
        if not first[1].isdigit():
            return None
        method, status = "", int(first[1])
    elif len(first) == 3 and first[2].startswith("SIP/2.0"):
        method, status = first[0], 0
    else:
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        match = _HEADER.match(line)
        if match:
            name = match.group(1).lower()
            headers.setdefault(_COMPACT.get(name, name), match.group(2).strip())
    cseq = headers.get("cseq", "").split()
    media, event_pt = _sdp(body)
    return SipMessage(
        time=time,
        src=src,
        dst=dst,
        method=method,
        status=status,
        call_id=headers.get("call-id", ""),
        cseq_method=cseq[1].upper() if len(cseq) > 1 else "",
        media=media,
        event_payload_type=event_pt,
    )


def _sdp(body: str) -> tuple[Endpoint | None, int | None]:
    """The audio address and the telephone-event payload type of an SDP body (RFC 4566 §5)."""
    host = port = None
    event = None
    for raw in body.splitlines():
        line = raw.strip()
        if line.startswith("c=IN IP4 "):
            host = ip_number(line.split()[2])
        elif line.startswith("m=audio "):
            port = int(line.split()[1])
        elif line.startswith("a=rtpmap:") and "telephone-event/" in line.lower():
            event = int(line[len("a=rtpmap:") :].split()[0])
    return ((host, port) if host is not None and port is not None else None), event


def sip_messages(packets: UdpPackets) -> list[SipMessage]:
    messages = []
    for i in range(len(packets)):
        src = (int(packets.src[i]), int(packets.sport[i]))
        dst = (int(packets.dst[i]), int(packets.dport[i]))
        message = parse_sip(packets.payload(i), float(packets.time[i]), src, dst)
        if message is not None:
            messages.append(message)
    return messages


@dataclass
class WireCall:
    """One call as the SIP capture saw it; times in seconds since the epoch."""

    call_id: str
    invite_at: float
    caller_media: Endpoint | None
    event_payload_type: int | None
    final_status: int = 0
    answered_at: float | None = None
    server_media: Endpoint | None = None
    ack_at: float | None = None
    bye_at: float | None = None  # the IVR's BYE
    caller_bye_at: float | None = None  # a BYE from the caller instead
    bye_ok_at: float | None = None  # the caller's 200 to the IVR's BYE

    @property
    def completed(self) -> bool:
        """Answered, and ended by the IVR with a BYE the caller accepted."""
        return self.answered_at is not None and self.bye_at is not None and self.bye_ok_at is not None

    @property
    def ended_at(self) -> float | None:
        return self.bye_at if self.bye_at is not None else self.caller_bye_at


def calls_from_sip(messages: list[SipMessage], server: Endpoint) -> list[WireCall]:
    """The calls placed to ``server``, in the order their INVITEs were seen."""
    calls: dict[str, WireCall] = {}
    for m in sorted(messages, key=lambda message: message.time):
        call = calls.get(m.call_id)
        if m.method == "INVITE" and m.dst == server:
            if call is None:
                calls[m.call_id] = WireCall(m.call_id, m.time, m.media, m.event_payload_type)
            continue
        if call is None:
            continue
        if m.status and m.cseq_method == "INVITE" and m.src == server and m.status >= 200:
            if not call.final_status:
                call.final_status = m.status
                if 200 <= m.status < 300:
                    call.answered_at, call.server_media = m.time, m.media
        elif m.method == "ACK" and call.ack_at is None:
            call.ack_at = m.time
        elif m.method == "BYE":
            if m.src == server and call.bye_at is None:
                call.bye_at = m.time
            elif m.src != server and call.caller_bye_at is None:
                call.caller_bye_at = m.time
        elif m.status == 200 and m.cseq_method == "BYE" and m.dst == server and call.bye_ok_at is None:
            call.bye_ok_at = m.time
    return list(calls.values())


def assign_to_calls(
    time: F64, port: I64, other_port: I64, call_port: I64, call_other: I64, since: F64, until: F64
) -> I64:
    """For each packet, the call it belongs to (-1: none): among the calls on ``port``, the one
    that began last at or before the packet's time, if ``other_port`` is its peer's and the
    packet came no later than ``until``. Vectorised: calls sorted by (port, start) once and one
    binary search per packet."""
    if len(call_port) == 0 or len(time) == 0:
        return np.full(len(time), -1, dtype=np.int64)
    origin = min(float(time.min()), float(since.min())) - 1.0
    us = np.int64(1_000_000)
    call_key = (call_port << 40) | ((since - origin) * us).astype(np.int64)
    order = np.argsort(call_key, kind="stable")
    packet_key = (port << 40) | ((time - origin) * us).astype(np.int64)
    slot = np.searchsorted(call_key[order], packet_key, side="right") - 1
    call = order[np.maximum(slot, 0)]
    valid = (slot >= 0) & (call_port[call] == port) & (call_other[call] == other_port) & (time <= until[call])
    return np.where(valid, call, -1)


def percentile(ordered: F64, q: float) -> float:
    """The value at rank q% of sorted values (nearest rank, as tests/rtp_probe.percentile)."""
    if len(ordered) == 0:
        return float("nan")
    return float(ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))])


@dataclass
class WireReport:
    """Per call (in the order of ``calls``) what each side sent, and the summary figures."""

    calls: list[WireCall]
    server_packets: I64
    caller_audio_packets: I64
    caller_end_packets: I64
    last_end_at: F64  # NaN for a call without a key
    spacing_ms: F64  # every counted interval, sorted
    seq_gaps: int
    stray_packets: int
    prompt_gap_ms: F64  # the longest interval inside one of the IVR's talkspurts; NaN: none
    prompt_gap_at: F64  # when the packet that ended it was captured
    between_gap_ms: F64  # the longest interval into a new talkspurt (between prompts); NaN: none
    stamp_jumps: I64  # intervals inside a talkspurt whose timestamp moved by more than a packet
    summary: dict[str, float] = field(default_factory=dict)


def _held(calls: list[WireCall]) -> tuple[float, float]:
    """(most, median over the middle half of the run) of the number of calls up at once."""
    spans = [
        (c.answered_at, c.ended_at) for c in calls if c.answered_at is not None and c.ended_at is not None
    ]
    if not spans:
        return 0.0, 0.0
    starts = np.sort(np.array([s for s, _ in spans]))
    ends = np.sort(np.array([e for _, e in spans]))
    edges = np.concatenate([starts, ends])
    up = np.searchsorted(starts, edges, side="right") - np.searchsorted(ends, edges, side="right")
    first, last = float(starts[0]), float(ends[-1])
    middle = np.arange(first + (last - first) / 4, last - (last - first) / 4, 0.1)
    held = np.searchsorted(starts, middle, side="right") - np.searchsorted(ends, middle, side="right")
    return float(up.max()), float(np.median(held)) if len(held) else float(up.max())


@dataclass
class _Pairs:
    """Consecutive packets of one IVR stream (call and SSRC), one entry per pair: the call, the
    interval (ms), when the second was captured, the sequence step, the timestamp advance and
    whether the second has the marker bit."""

    call: I64
    interval_ms: F64
    at: F64
    step: I64
    advance: I64
    marker: npt.NDArray[np.bool_]


def _pairs(rtp: RtpFields, rows: I64, time: F64, call: I64) -> _Pairs:
    order = np.lexsort((time, rtp.ssrc[rows], call))
    rows, time, call = rows[order], time[order], call[order]
    ssrc, seq, stamp = rtp.ssrc[rows], rtp.seq[rows], rtp.timestamp[rows]
    same = (call[1:] == call[:-1]) & (ssrc[1:] == ssrc[:-1])
    return _Pairs(
        call=call[1:][same],
        interval_ms=np.diff(time)[same] * 1000.0,
        at=time[1:][same],
        step=((seq[1:] - seq[:-1]) & 0xFFFF)[same],
        advance=((stamp[1:] - stamp[:-1]) & 0xFFFFFFFF)[same],
        marker=rtp.marker[rows][1:][same],
    )


def _spacing(pairs: _Pairs) -> tuple[F64, int]:
    """Counted intervals (ms, sorted) and sequence gaps of the IVR's streams (see the module doc)."""
    counted = (pairs.step == 1) & (pairs.advance <= FRAME) & ~pairs.marker
    return np.sort(pairs.interval_ms[counted]), int((pairs.step != 1).sum())


def _longest(pairs: _Pairs, keep: npt.NDArray[np.bool_], count: int) -> tuple[F64, F64]:
    """Per call, the longest of the kept intervals and when it ended (NaN where none is kept)."""
    longest, at = np.full(count, np.nan), np.full(count, np.nan)
    call, interval, when = pairs.call[keep], pairs.interval_ms[keep], pairs.at[keep]
    if len(call):
        order = np.lexsort((interval, call))  # by call, the longest last
        last = order[np.flatnonzero(np.r_[call[order][1:] != call[order][:-1], True])]
        longest[call[last]], at[call[last]] = interval[last], when[last]
    return longest, at


def analyse(sip: UdpPackets, rtp_packets: UdpPackets, server: tuple[str, int]) -> WireReport:
    """Everything the benchmark reports from its two captures."""
    server_sip = (ip_number(server[0]), server[1])
    return analyse_calls(calls_from_sip(sip_messages(sip), server_sip), rtp_packets)


def analyse_calls(calls: list[WireCall], rtp_packets: UdpPackets) -> WireReport:
    """The figures of these calls (a capture's, or those of a part of it) from the RTP capture;
    packets of calls not given are stray."""
    count = len(calls)
    rtp = rtp_fields(rtp_packets)
    time = rtp_packets.time[rtp.index]
    sport, dport = rtp_packets.sport[rtp.index], rtp_packets.dport[rtp.index]
    last_seen = float(time.max()) if len(time) else 0.0
    # The answered calls' ports and windows, one entry each; ``answered`` maps them to ``calls``.
    answered: list[int] = []
    server_port: list[int] = []
    caller_port: list[int] = []
    invited: list[float] = []
    answered_at: list[float] = []
    ends: list[float] = []
    for i, c in enumerate(calls):
        if c.server_media is None or c.caller_media is None or c.answered_at is None:
            continue
        answered.append(i)
        server_port.append(c.server_media[1])
        caller_port.append(c.caller_media[1])
        invited.append(c.invite_at)
        answered_at.append(c.answered_at)
        ends.append((c.ended_at or last_seen) + GRACE)
    ports = np.array(server_port, dtype=np.int64), np.array(caller_port, dtype=np.int64)
    until = np.array(ends, dtype=np.float64)
    to_call = np.array([*answered, -1], dtype=np.int64)  # "no call" (-1) indexes the last: -1 again
    from_server = assign_to_calls(time, sport, dport, *ports, np.array(invited, dtype=np.float64), until)
    from_caller = assign_to_calls(time, dport, sport, *ports, np.array(answered_at, dtype=np.float64), until)
    server_call, caller_call = to_call[from_server], to_call[from_caller]

    mine = server_call >= 0
    pairs = _pairs(rtp, np.flatnonzero(mine), time[mine], server_call[mine])
    spacing, seq_gaps = _spacing(pairs)
    inside = (pairs.step == 1) & ~pairs.marker
    prompt_gap, prompt_gap_at = _longest(pairs, inside, count)
    between_gap, _ = _longest(pairs, (pairs.step == 1) & pairs.marker, count)
    jumps = np.bincount(pairs.call[inside & (pairs.advance > FRAME)], minlength=count)

    # Per-call values looked up per caller packet; entry ``count`` stands for "no call".
    theirs = caller_call >= 0
    lookup = np.where(theirs, caller_call, count)
    event_pt = np.array([-1 if c.event_payload_type is None else c.event_payload_type for c in calls] + [-1])
    bye = np.array([np.inf if c.bye_at is None else c.bye_at for c in calls] + [np.inf])
    is_event = theirs & (rtp.payload_type == event_pt[lookup])
    # The end packets of the key that made the IVR hang up: a key pressed after the BYE is not.
    ends_key = is_event & rtp.end & (time <= bye[lookup] + 0.05)
    last_end = np.full(count, -np.inf)
    np.maximum.at(last_end, caller_call[ends_key], time[ends_key])
    last_end[np.isneginf(last_end)] = np.nan

    report = WireReport(
        calls=calls,
        server_packets=np.bincount(server_call[mine], minlength=count),
        caller_audio_packets=np.bincount(caller_call[theirs & ~is_event], minlength=count),
        caller_end_packets=np.bincount(caller_call[ends_key], minlength=count),
        last_end_at=last_end,
        spacing_ms=spacing,
        seq_gaps=seq_gaps,
        stray_packets=int((~mine & ~theirs).sum()),
        prompt_gap_ms=prompt_gap,
        prompt_gap_at=prompt_gap_at,
        between_gap_ms=between_gap,
        stamp_jumps=jumps,
    )
    report.summary = summarise(report)
    return report


def _most(values: F64) -> float:
    """The largest value that is not NaN (NaN when there is none; np.nanmax would warn)."""
    known = values[~np.isnan(values)]
    return float(known.max()) if len(known) else float("nan")


def summarise(report: WireReport) -> dict[str, float]:
    calls = report.calls
    setup = np.sort(
        np.array([1000 * (c.answered_at - c.invite_at) for c in calls if c.answered_at is not None])
    )
    bye = np.array([c.bye_at if c.bye_at is not None else np.nan for c in calls])
    key_to_bye = np.sort(1000 * (bye - report.last_end_at)[np.isfinite(bye - report.last_end_at)])
    spacing = report.spacing_ms
    most, median = _held(calls)
    completed = sum(c.completed for c in calls)
    return {
        "calls": float(len(calls)),
        "answered": float(sum(c.answered_at is not None for c in calls)),
        "completed": float(completed),
        "failed": float(len(calls) - completed),
        "caller_hung_up": float(sum(c.caller_bye_at is not None for c in calls)),
        "setup_p50_ms": percentile(setup, 50),
        "setup_p99_ms": percentile(setup, 99),
        "setup_max_ms": float(setup[-1]) if len(setup) else float("nan"),
        "spacing_intervals": float(len(spacing)),
        "spacing_p50_ms": percentile(spacing, 50),
        "spacing_p99_ms": percentile(spacing, 99),
        "spacing_p999_ms": percentile(spacing, 99.9),
        "spacing_max_ms": float(spacing[-1]) if len(spacing) else float("nan"),
        "spacing_over_30ms_pct": 100 * float((spacing > 30).mean()) if len(spacing) else float("nan"),
        "seq_gaps": float(report.seq_gaps),
        "prompt_gap_max_ms": _most(report.prompt_gap_ms),
        "between_gap_max_ms": _most(report.between_gap_ms),
        "stamp_jumps": float(report.stamp_jumps.sum()),
        "stray_packets": float(report.stray_packets),
        "key_to_bye_calls": float(len(key_to_bye)),
        "key_to_bye_p50_ms": percentile(key_to_bye, 50),
        "key_to_bye_p99_ms": percentile(key_to_bye, 99),
        "key_to_bye_max_ms": float(key_to_bye[-1]) if len(key_to_bye) else float("nan"),
        "calls_with_caller_audio": float((report.caller_audio_packets > 0).sum()),
        "calls_with_key": float((report.caller_end_packets > 0).sum()),
        "calls_with_prompt": float((report.server_packets >= PROMPT_PACKETS).sum()),
        "held_max": most,
        "held_median": median,
        "call_seconds": float(
            sum(
                c.ended_at - c.answered_at
                for c in calls
                if c.answered_at is not None and c.ended_at is not None
            )
        ),
    }
