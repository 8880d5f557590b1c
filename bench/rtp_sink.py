"""The media side of many SIPp calls: one UDP socket that hears the IVR, presses keys, times the reply.

Used by the capacity bench when SIPp places the calls: the SIPp scenario offers this socket's
address in its SDP, so the IVR sends every call's audio here, and keys sent from here come from
the address the signalling gave (the IVR takes RTP from anywhere else only after a grace period,
against RTP bleed). Streams are told apart by their source address and SSRC.

Per stream: the arrival time of every audio packet, stamped by the kernel (SO_TIMESTAMPNS) so the
figures do not include the receiver's own scheduling delays (on loopback the stamp is taken as the
IVR's datagram is delivered); ``keys_after`` seconds after the stream's first packet, the keys as
RFC 4733 events (a start packet and three end packets each, §2.5.1.4, like tests/rtp_probe.py);
then the reply: the first audio packet after the keys, as tests/rtp_probe.py defines it (the
first key stops the prompt before the IVR's next 20 ms pass). A prompt packet of the pass that
was under way when the keys arrived counts as the reply too, so the figure can be short by up to
one pass; the IVR does not mark the reply's first packet (it follows the cut prompt without a
silent frame), so nothing in the stream tells the two apart.

The receiver runs in a child process, apart from the bench's other work, and hands back what it
recorded when stopped. Packet parsing, key packets and the summary are plain functions.
"""

from __future__ import annotations

import heapq
import itertools
import multiprocessing
import multiprocessing.connection
import random
import socket
import struct
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event

from tests.rtp_probe import percentile

# Linux's SO_TIMESTAMPNS (asm-generic/socket.h); the socket module does not name it.
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("qq")
_RTP_HEADER = struct.Struct("!BBHII")
_EVENTS = {digit: code for code, digit in enumerate("0123456789*#ABCD")}  # RFC 4733 §3.2

StreamKey = tuple[str, int, int]  # source host, source port, SSRC


@dataclass
class StreamTimes:
    """What the receiver saw of one call's audio; times in seconds (the kernel's clock)."""

    arrivals: list[float] = field(default_factory=list)  # audio packets before the keys
    keys_at: float | None = None  # when the last key packet was sent
    reply_at: float | None = None  # first audio packet after the keys


def rtp_ssrc(data: bytes, payload_type: int) -> int | None:
    """The SSRC of an RTP packet of ``payload_type`` (RFC 3550 §5.1), else None."""
    if len(data) < _RTP_HEADER.size:
        return None
    first, second, _, _, ssrc = _RTP_HEADER.unpack_from(data)
    if first >> 6 != 2 or second & 0x7F != payload_type:
        return None
    return int(ssrc)


def kernel_stamp(ancdata: Iterable[tuple[int, int, bytes]]) -> float | None:
    """The SO_TIMESTAMPNS receive time (seconds, CLOCK_REALTIME) from recvmsg's ancillary data."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            return float(seconds + nanoseconds / 1e9)
    return None


def key_packets(keys: str, payload_type: int, ssrc: int, seq: int, timestamp: int) -> list[bytes]:
    """RFC 4733 packets for ``keys``: per key a start packet (marker set), then three end packets."""
    packets = []
    for digit in keys:
        for marker, end, duration in [(True, False, 160)] + [(False, True, 800)] * 3:
            header = _RTP_HEADER.pack(
                0x80, (0x80 if marker else 0) | payload_type, seq & 0xFFFF, timestamp & 0xFFFFFFFF, ssrc
            )
            packets.append(header + struct.pack("!BBH", _EVENTS[digit], (0x80 if end else 0) | 10, duration))
            seq += 1
        timestamp += 1600
    return packets


def stream_summary(streams: Mapping[StreamKey, StreamTimes]) -> dict[str, float]:
    """Spacing over the audio before the keys (p50/p99/max ms) and reply latency (p50/p95 ms)."""
    spacings = [
        1000 * (later - earlier)
        for times in streams.values()
        for earlier, later in itertools.pairwise(times.arrivals)
    ]
    replies = [
        1000 * (times.reply_at - times.keys_at)
        for times in streams.values()
        if times.reply_at is not None and times.keys_at is not None
    ]
    return {
        "streams": len(streams),
        "packets": sum(len(times.arrivals) for times in streams.values()),
        "spacing_p50_ms": percentile(spacings, 50),
        "spacing_p99_ms": percentile(spacings, 99),
        "spacing_max_ms": max(spacings) if spacings else float("nan"),
        "keys_sent": sum(1 for times in streams.values() if times.keys_at is not None),
        "replies": len(replies),
        "reply_p50_ms": percentile(replies, 50),
        "reply_p95_ms": percentile(replies, 95),
    }


@dataclass(frozen=True)
class SinkConfig:
    host: str = "127.0.0.1"
    payload_type: int = 0  # PCMU, what the scenario offers
    dtmf_payload_type: int = 101
    keys: str = "1#"
    keys_after: float = 4.0  # seconds after the stream's first packet


def _receive(config: SinkConfig, stop: Event, pipe: multiprocessing.connection.Connection) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # Up to a second of 1000 calls' audio may wait in the kernel without loss.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.bind((config.host, 0))
    pipe.send(sock.getsockname()[1])
    streams: dict[StreamKey, StreamTimes] = {}
    due: list[tuple[float, StreamKey]] = []  # (when to press the keys, stream), a heap
    control = socket.CMSG_SPACE(_TIMESPEC.size)
    while not stop.is_set():
        now = time.time()
        while due and due[0][0] <= now:
            _, key = heapq.heappop(due)
            packets = key_packets(
                config.keys, config.dtmf_payload_type, key[2] ^ 0x5A5A5A5A, random.getrandbits(16), 0
            )
            for packet in packets:
                sock.sendto(packet, key[:2])
            streams[key].keys_at = time.time()
        sock.settimeout(min(0.2, max(0.0005, due[0][0] - now)) if due else 0.2)
        try:
            data, ancdata, _, source = sock.recvmsg(2048, control)
        except TimeoutError:
            continue
        ssrc = rtp_ssrc(data, config.payload_type)
        stamp = kernel_stamp(ancdata)
        if ssrc is None or stamp is None:
            continue
        key = (source[0], source[1], ssrc)
        times = streams.get(key)
        if times is None:
            times = streams[key] = StreamTimes()
            heapq.heappush(due, (stamp + config.keys_after, key))
        if times.keys_at is None:
            times.arrivals.append(stamp)
        elif times.reply_at is None and stamp > times.keys_at:
            times.reply_at = stamp
    sock.close()
    pipe.send(streams)


class RtpSink:
    """The receiver in its child process: ``start()`` gives the port, ``stop()`` the streams."""

    def __init__(self, config: SinkConfig | None = None) -> None:
        context = multiprocessing.get_context("spawn")  # no inherited threads or sockets
        self._stop = context.Event()
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=_receive, args=(config or SinkConfig(), self._stop, child), daemon=True
        )
        self.port = 0

    def start(self) -> int:
        self._process.start()
        if not self._pipe.poll(30):
            raise RuntimeError("the RTP receiver did not start")
        self.port = int(self._pipe.recv())
        return self.port

    def stop(self) -> dict[StreamKey, StreamTimes]:
        self._stop.set()
        if not self._pipe.poll(30):
            self._process.terminate()  # our own child, by its handle
            raise RuntimeError("the RTP receiver did not report")
        streams: dict[StreamKey, StreamTimes] = self._pipe.recv()
        self._process.join(5)
        return streams
