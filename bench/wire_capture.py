"""Capture on the loopback wire with tcpdump, and read the capture back as arrays.

The real-caller benchmark takes every figure from what crossed the wire, recorded by a process
apart from both ends (tcpdump on ``lo``), so neither the IVR's nor SIPp's own clock or scheduling
enters the figures. Two captures per run: SIP on the server's port with whole packets, RTP in
the server's RTP port range cut to 64 bytes (Ethernet, IPv4, UDP and RTP headers and a telephone
event's 4 bytes fit; the audio itself is not needed), which keeps a run of millions of packets
to a few hundred MB.

Reading: a classic libpcap file (as tcpdump writes: link type EN10MB on ``lo``; LINUX_SLL and
LINUX_SLL2 from ``-i any`` too; micro- or nanosecond stamps, either byte order) becomes one
`UdpPackets`, a set of numpy arrays with one entry per IPv4/UDP packet; anything else (ARP,
IPv6, TCP, fragments) is skipped, and a record cut short at the end of the file (tcpdump killed
mid-write) is dropped. `rtp_fields` adds the RTP header fields. Walking the records is the only
per-packet Python step (each record's length gives the next one's place); everything after it is
vectorised, so four million packets take seconds, not minutes.

A capture too long to hold at once (the soak's hour) is rotated (`Tcpdump` with ``rotate``) and
read a span at a time: `first_stamp` says where each file begins, `select` keeps a span of a
file's packets and `concat` joins the spans of consecutive files.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import struct
import subprocess
import time
from array import array
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

LINKTYPE_ETHERNET = 1
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276
# Link type -> (offset of the EtherType-like protocol field, offset of the network header).
_LINK_LAYOUT = {LINKTYPE_ETHERNET: (12, 14), LINKTYPE_LINUX_SLL: (14, 16), LINKTYPE_LINUX_SLL2: (0, 20)}
_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
ETHERTYPE_IPV4 = 0x0800
IPPROTO_UDP = 17
RTP_SNAPLEN = 64
# libpcap on Linux (TPACKET_V3) hands packets to tcpdump a ring block at a time: when the block is
# full, or when tcpdump's 1 s read timeout passes; on SIGINT the block being filled is lost. So
# the last packets are only safe once this long has passed without traffic.
BLOCK_TIMEOUT = 1.0

U8 = npt.NDArray[np.uint8]
I64 = npt.NDArray[np.int64]


class PcapError(ValueError):
    """Not a classic libpcap file, or a link type this reader does not know."""


@dataclass
class UdpPackets:
    """IPv4/UDP packets of a capture, one array entry per packet, in capture order.

    ``time`` is seconds since the epoch; addresses are IPv4 as 32-bit numbers; ``payload_at`` is
    the offset of the UDP payload in ``data`` (the file's bytes), ``payload_len`` how much of it
    was captured and ``udp_len`` how long it was on the wire.
    """

    data: bytes
    time: npt.NDArray[np.float64]
    src: npt.NDArray[np.uint32]
    dst: npt.NDArray[np.uint32]
    sport: npt.NDArray[np.int64]
    dport: npt.NDArray[np.int64]
    payload_at: I64
    payload_len: I64
    udp_len: I64

    def __len__(self) -> int:
        return len(self.time)

    def payload(self, index: int) -> bytes:
        start = int(self.payload_at[index])
        return self.data[start : start + int(self.payload_len[index])]


@dataclass
class RtpFields:
    """RTP header fields (RFC 3550 §5.1) of the packets of a `UdpPackets` that look like RTP
    (version 2, whole fixed header captured); ``index`` maps back to those packets. For
    packets with at least 4 payload bytes, ``event`` and ``end`` are the first byte and the E bit
    of an RFC 4733 payload (meaningful only where ``payload_type`` is telephone-event)."""

    index: I64
    marker: npt.NDArray[np.bool_]
    payload_type: I64
    seq: I64
    timestamp: I64
    ssrc: I64
    event: I64
    end: npt.NDArray[np.bool_]


def ip_number(address: str) -> int:
    """Dotted IPv4 -> the 32-bit number the arrays hold."""
    return int.from_bytes(bytes(map(int, address.split("."))), "big")


def _record_offsets(data: bytes, order: str) -> tuple[I64, I64]:
    """Start and captured length of every whole record after the global header.

    Each record's place follows from the one before, so this is a walk; but in an RTP capture
    cut to a fixed snap length nearly every record has the same length, and a run of them is
    taken at once: assume the next records are as long as this one, read their length fields
    through one strided view of the file, keep them up to the first that differs. Runs are kept
    as (first start, record size, count) and spread out at the end."""
    word = struct.Struct(order + "I")
    field = np.dtype(order + "u4")
    run_first, run_step, run_count = array("q"), array("q"), array("q")
    offset, size, chunk = 24, len(data), 256
    while offset + 16 <= size:
        caplen = word.unpack_from(data, offset + 8)[0]
        step = 16 + caplen
        count = min(chunk, (size - offset) // step)
        if count == 0:
            break  # cut short at the end of the file
        if count > 1:
            lengths = np.ndarray((count,), field, data, offset + 8, (step,))
            differs = lengths != caplen
            if differs.any():
                count = int(differs.argmax())
                chunk = max(256, 2 * count)
            else:
                chunk = min(2 * chunk, 1 << 20)
        run_first.append(offset + 16)
        run_step.append(step)
        run_count.append(count)
        offset += count * step
    counts = np.frombuffer(run_count, dtype=np.int64)
    before = np.cumsum(counts) - counts
    within = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(before, counts)
    steps = np.repeat(np.frombuffer(run_step, dtype=np.int64), counts)
    starts = np.repeat(np.frombuffer(run_first, dtype=np.int64), counts) + within * steps
    return starts, steps - 16


def _be16(buf: U8, at: I64) -> I64:
    return (buf[at].astype(np.int64) << 8) | buf[at + 1]


def _be32(buf: U8, at: I64) -> I64:
    return (_be16(buf, at) << 16) | _be16(buf, at + 2)


def _u32(buf: U8, at: I64, order: str) -> I64:
    """32-bit words in the pcap's own byte order (its record headers)."""
    octets = [buf[at + k].astype(np.int64) for k in range(4)]
    if order == "<":
        octets.reverse()
    return (octets[0] << 24) | (octets[1] << 16) | (octets[2] << 8) | octets[3]


def read_pcap(data: bytes) -> UdpPackets:
    """The IPv4/UDP packets of a classic pcap file's bytes."""
    if len(data) < 24 or data[:4] not in _MAGIC:
        raise PcapError("not a classic libpcap file (pcapng is not read here: tcpdump -w writes pcap)")
    order, unit = _MAGIC[data[:4]]
    linktype = struct.unpack_from(order + "I", data, 20)[0] & 0x0FFFFFFF
    if linktype not in _LINK_LAYOUT:
        raise PcapError(f"link type {linktype} not supported (EN10MB, LINUX_SLL, LINUX_SLL2 are)")
    proto_at, net_at = _LINK_LAYOUT[linktype]
    starts, caplen = _record_offsets(data, order)
    buf = np.frombuffer(data, dtype=np.uint8)
    # Only records long enough for a link header, an IPv4 header and a UDP header are looked into.
    whole = caplen >= net_at + 28
    starts, caplen = starts[whole], caplen[whole]
    ip = starts + net_at
    ihl = (buf[ip] & 0x0F).astype(np.int64) * 4
    udp = ip + ihl
    keep = (
        (_be16(buf, starts + proto_at) == ETHERTYPE_IPV4)
        & (buf[ip] >> 4 == 4)
        & (ihl >= 20)
        & (buf[ip + 9] == IPPROTO_UDP)
        & ((_be16(buf, ip + 6) & 0x1FFF) == 0)  # first fragment (or none): a UDP header follows
        & (udp + 8 <= starts + caplen)
    )
    starts, caplen, ip, udp = starts[keep], caplen[keep], ip[keep], udp[keep]
    stamp_at = starts - 16
    time_ = _u32(buf, stamp_at, order).astype(np.float64) + _u32(buf, stamp_at + 4, order) * unit
    return UdpPackets(
        data=data,
        time=time_,
        src=_be32(buf, ip + 12).astype(np.uint32),
        dst=_be32(buf, ip + 16).astype(np.uint32),
        sport=_be16(buf, udp),
        dport=_be16(buf, udp + 2),
        payload_at=udp + 8,
        payload_len=starts + caplen - udp - 8,
        udp_len=_be16(buf, udp + 4) - 8,
    )


def first_stamp(head: bytes) -> float | None:
    """The time of a capture's first record, from the file's first bytes (40 are enough); None
    while tcpdump has not written one yet. A rotated capture (tcpdump -G) names its files by when
    tcpdump got round to rotating, which may trail the packets by the ring's block timeout or
    more under load: the first packet's own stamp says where a file really begins."""
    if len(head) < 40 or head[:4] not in _MAGIC:
        return None
    order, unit = _MAGIC[head[:4]]
    seconds, fraction = struct.unpack_from(order + "II", head, 24)
    return float(seconds) + float(fraction) * unit


def select(packets: UdpPackets, keep: npt.NDArray[np.bool_]) -> UdpPackets:
    """The packets where ``keep`` is true, holding only the span of bytes their payloads need, so
    that a slice of a large capture does not keep the whole file's bytes alive."""
    index = np.flatnonzero(keep)
    if len(index) == 0:
        low = high = 0
    else:
        low = int(packets.payload_at[index].min())
        high = int((packets.payload_at[index] + packets.payload_len[index]).max())
    return UdpPackets(
        data=packets.data[low:high],
        time=packets.time[index],
        src=packets.src[index],
        dst=packets.dst[index],
        sport=packets.sport[index],
        dport=packets.dport[index],
        payload_at=packets.payload_at[index] - low,
        payload_len=packets.payload_len[index],
        udp_len=packets.udp_len[index],
    )


def concat(parts: list[UdpPackets]) -> UdpPackets:
    """Captures written one after another (the files of a rotated capture) as one."""
    if not parts:
        return read_pcap(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, RTP_SNAPLEN, LINKTYPE_ETHERNET))
    shift = np.cumsum([0] + [len(part.data) for part in parts[:-1]]).astype(np.int64)
    return UdpPackets(
        data=b"".join(part.data for part in parts),
        time=np.concatenate([part.time for part in parts]),
        src=np.concatenate([part.src for part in parts]),
        dst=np.concatenate([part.dst for part in parts]),
        sport=np.concatenate([part.sport for part in parts]),
        dport=np.concatenate([part.dport for part in parts]),
        payload_at=np.concatenate([part.payload_at + at for part, at in zip(parts, shift, strict=True)]),
        payload_len=np.concatenate([part.payload_len for part in parts]),
        udp_len=np.concatenate([part.udp_len for part in parts]),
    )


def rtp_fields(packets: UdpPackets) -> RtpFields:
    """The RTP header of every packet that carries one (RFC 3550 §5.1; CSRCs and a header
    extension are stepped over to find the payload)."""
    buf = np.frombuffer(packets.data, dtype=np.uint8)
    at, length = packets.payload_at, packets.payload_len
    candidate = np.flatnonzero(length >= 12)
    first = buf[at[candidate]]
    second = buf[at[candidate] + 1]
    # RTCP (RFC 3550 §6.4, RFC 5761 §4) has packet types 200-204 where RTP has M and PT.
    rtp = (first >> 6 == 2) & ((second < 200) | (second > 204))
    index = candidate[rtp]
    start, captured = at[index], at[index] + length[index]
    first, second = first[rtp], second[rtp]
    body = start + 12 + 4 * (first & 0x0F).astype(np.int64)
    extended = (first & 0x10) != 0
    if extended.any():
        readable = extended & (body + 4 <= captured)
        words = np.zeros(len(body), dtype=np.int64)
        words[readable] = _be16(buf, body[readable] + 2)
        body = np.where(extended, body + 4 + 4 * words, body)
    has_event = body + 4 <= captured
    event = np.full(len(index), -1, dtype=np.int64)
    end = np.zeros(len(index), dtype=bool)
    event[has_event] = buf[body[has_event]]
    end[has_event] = (buf[body[has_event] + 1] & 0x80) != 0
    return RtpFields(
        index=index,
        marker=(second & 0x80) != 0,
        payload_type=(second & 0x7F).astype(np.int64),
        seq=_be16(buf, start + 2),
        timestamp=_be32(buf, start + 4),
        ssrc=_be32(buf, start + 8),
        event=event,
        end=end,
    )


@dataclass
class CaptureCounts:
    """What tcpdump said when it stopped."""

    captured: int = 0
    received: int = 0
    dropped: int = 0  # by the kernel: the capture buffer overflowed, packets are missing

    @classmethod
    def parse(cls, stderr: str) -> CaptureCounts:
        def count(what: str) -> int:
            match = re.search(rf"^(\d+) packets? {what}", stderr, re.MULTILINE)
            return int(match.group(1)) if match else 0

        return cls(count("captured"), count("received by filter"), count("dropped by kernel"))


class Tcpdump:
    """One tcpdump writing packets that match ``bpf`` on ``interface`` to ``path``.

    ``-U`` writes each packet as it comes (nothing waits in tcpdump's buffer when it stops);
    stopping is SIGINT, after which tcpdump writes out what it holds and reports its counts.
    ``-B`` gives the kernel a large buffer so that bursts are not dropped while tcpdump writes.
    Stop with `stop_captures`, which first waits out the ring's block timeout (`BLOCK_TIMEOUT`).
    With ``rotate`` (tcpdump -G, seconds) one file per period, named after ``path`` with the epoch
    second of the rotation (`rotated_files`): a capture of an hour is read and deleted a file at a
    time, and a rotation loses nothing (one capture handle throughout).
    """

    def __init__(
        self,
        path: Path,
        bpf: str,
        *,
        snaplen: int = 0,
        interface: str = "lo",
        buffer_kib: int = 65536,
        rotate: int = 0,
    ) -> None:
        self.path = path
        self.rotate = rotate
        binary = shutil.which("tcpdump")
        if binary is None:
            raise FileNotFoundError(
                "tcpdump not found: install the Debian package tcpdump (bash run.sh does)"
            )
        self.args = [
            binary,
            "-i",
            interface,
            "-n",
            "-U",
            "-s",
            str(snaplen),
            "-B",
            str(buffer_kib),
            "-w",
            str(self._rotated_pattern() if rotate else path),
        ]
        if rotate:
            self.args += ["-G", str(rotate)]
        if os.geteuid() == 0:
            # As root tcpdump would switch to its own user, who may not write to our directory.
            self.args += ["-Z", pwd.getpwuid(0).pw_name]
        self.args.append(bpf)
        self._stderr_path = path.with_suffix(".stderr")
        self.process: subprocess.Popen[bytes] | None = None
        self.counts = CaptureCounts()

    def start(self, timeout: float = 10.0) -> None:
        """Start and return once tcpdump is capturing (it says "listening on")."""
        with open(self._stderr_path, "wb") as err:
            self.process = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        deadline = time.monotonic() + timeout
        while "listening on" not in self._stderr():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"tcpdump did not start: {' '.join(self.args)}\n{self._stderr()}")
            time.sleep(0.02)

    def stop(self) -> CaptureCounts:
        """SIGINT, wait for tcpdump to write out and exit (only the process started here)."""
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        self.counts = CaptureCounts.parse(self._stderr())
        return self.counts

    def _rotated_pattern(self) -> Path:
        # tcpdump -G passes the name through strftime: %s, the epoch second it rotated at, orders
        # the files and never repeats.
        return self.path.with_name(f"{self.path.stem}-%s{self.path.suffix}")

    def rotated_files(self) -> list[Path]:
        """With ``rotate``: the files written so far, oldest first (the last may still grow)."""
        prefix, suffix = f"{self.path.stem}-", self.path.suffix
        found = []
        for file in self.path.parent.glob(f"{prefix}*{suffix}"):
            stamp = file.name[len(prefix) : len(file.name) - len(suffix)]
            if stamp.isdigit():
                found.append((int(stamp), file))
        return [file for _, file in sorted(found)]

    def _stderr(self) -> str:
        try:
            return self._stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def stop_captures(*captures: Tcpdump) -> list[CaptureCounts]:
    """Stop captures once the traffic is over, without losing its last packets (`BLOCK_TIMEOUT`)."""
    time.sleep(BLOCK_TIMEOUT + 0.5)
    return [capture.stop() for capture in captures]


def call_captures(
    workdir: Path, sip_port: int, rtp_ports: tuple[int, int], rotate: int = 0
) -> tuple[Tcpdump, Tcpdump]:
    """The run's two captures (not started): SIP whole, RTP cut to its headers; with ``rotate``,
    each in a new file every that many seconds."""
    workdir.mkdir(parents=True, exist_ok=True)
    sip = Tcpdump(workdir / "sip.pcap", f"udp port {sip_port}", rotate=rotate)
    rtp = Tcpdump(
        workdir / "rtp.pcap",
        f"udp portrange {rtp_ports[0]}-{rtp_ports[1]}",
        snaplen=RTP_SNAPLEN,
        rotate=rotate,
    )
    return sip, rtp
