"""Several worker processes behind one SIP address, with stable call-to-worker affinity.

Every worker binds the SIP port with SO_REUSEPORT. The kernel spreads datagrams over the sockets
by the sender's address, which is no good for calls: a trunk or PBX sends every call from one
address, and a CANCEL or ACK must reach the worker that holds the INVITE. So each worker hashes
the Call-ID of what it receives; a message that belongs to another worker is passed to it over a
Unix datagram socket, together with the sender's address. The owner answers from its own socket
bound to the same port, so the peer sees one address. RTP needs none of this: each worker owns
the RTP ports it hands out (a slice of the configured range).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ivr.sip.message import new_call_id

Address = tuple[str, int]

# RFC 3261 §7.3.3 compact form "i"; header names are case-insensitive (§7.3.1).
_CALL_ID = re.compile(rb"^(?:call-id|i)[ \t]*:[ \t]*([^\r\n]+)", re.IGNORECASE | re.MULTILINE)


def call_id_of(datagram: bytes) -> bytes | None:
    match = _CALL_ID.search(datagram, 0, 8192)
    return match.group(1).strip() if match else None


def owner_of(datagram: bytes, workers: int) -> int | None:
    """The worker that owns this message's call, or None when it names no Call-ID."""
    call_id = call_id_of(datagram)
    if call_id is None:
        return None
    return owner_of_call_id(call_id, workers)


def owner_of_call_id(call_id: bytes, workers: int) -> int:
    return zlib.crc32(call_id) % workers


MAX_FORWARDED = 65_535 + 64  # a SIP datagram at its largest, behind the sender's address line


def encode_forward(data: bytes, addr: Address) -> bytes:
    return f"{addr[0]} {addr[1]}\n".encode() + data


def decode_forward(packet: bytes) -> tuple[bytes, Address] | None:
    head, sep, data = packet.partition(b"\n")
    if not sep:
        return None
    host, _, port = head.decode(errors="replace").rpartition(" ")
    if not host or not port.isdigit():
        return None
    return data, (host, int(port))


@dataclass(frozen=True)
class WorkerSet:
    index: int
    count: int
    run_dir: Path

    def socket_path(self, index: int) -> Path:
        return self.run_dir / f"worker-{index}.sock"

    def new_call_id(self, host: str) -> str:
        """A Call-ID owned by this worker: the answers to what it sends come back to it."""
        while True:
            call_id = new_call_id(host)
            if owner_of_call_id(call_id.encode(), self.count) == self.index:
                return call_id

    def rtp_slice(self, low: int, high: int) -> tuple[int, int]:
        """This worker's share of the RTP port range, kept even-aligned."""
        size = (high - low) // self.count
        size -= size % 2
        start = low + self.index * size
        return start, start + size


class Forwarder:
    """Routes each received SIP datagram to the worker that owns its call.

    A plain Unix datagram socket read with ``add_reader``: every event loop offers that, where
    uvloop's datagram transports take IP sockets only.
    """

    def __init__(self, workers: WorkerSet, deliver: Callable[[bytes, Address], None]) -> None:
        self.workers = workers
        self._deliver = deliver
        self._sock: socket.socket | None = None
        self.forwarded = 0

    async def start(self) -> None:
        path = self.workers.socket_path(self.workers.index)
        path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        sock.setblocking(False)
        self._sock = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._read_ready)

    def _read_ready(self) -> None:
        assert self._sock is not None
        for _ in range(64):  # a bounded batch, then the loop's other work gets its turn
            try:
                data = self._sock.recv(MAX_FORWARDED)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            decoded = decode_forward(data)
            if decoded is not None:
                self._deliver(*decoded)

    def route(self, data: bytes, addr: Address) -> bool:
        """True when the datagram was passed to another worker (the caller must not handle it)."""
        owner = owner_of(data, self.workers.count)
        if owner is None or owner == self.workers.index or self._sock is None:
            return False
        try:
            self._sock.sendto(encode_forward(data, addr), str(self.workers.socket_path(owner)))
        except OSError:
            return False  # the owner is gone (restarting) or its queue is full: handled here
        self.forwarded += 1
        return True

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(RuntimeError, ValueError):  # the loop may be closed already
                asyncio.get_running_loop().remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        self.workers.socket_path(self.workers.index).unlink(missing_ok=True)
