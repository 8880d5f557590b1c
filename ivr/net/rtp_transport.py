"""UDP sockets for RTP: one per call, taken from a configured even-port range.

The socket only delivers datagrams to the call's sans-IO ``MediaStream`` and sends what the
shared media clock asks for; all RTP logic lives in ``ivr.media``.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import socket
from collections.abc import Callable
from typing import Any

from ivr.logs import get_logger

Address = tuple[str, int]
log = get_logger(component="rtp")


class _RtpProtocol(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.deliver: Callable[[bytes, Address], None] = lambda data, addr: None

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.deliver(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        # The far end closed its port (ICMP unreachable); signalling decides the call's fate.
        pass


def _bound_socket(host: str, port: int) -> socket.socket:
    """Bound here rather than by asyncio: a port taken elsewhere then costs one failed bind(),
    not an OSError that asyncio keeps in a reference cycle (traceback, frame, error list)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _same(protocol: _RtpProtocol) -> _RtpProtocol:
    return protocol


class RtpSocket:
    def __init__(self, transport: asyncio.DatagramTransport, port: int, allocator: RtpPortAllocator) -> None:
        self._transport = transport
        self.port = port
        self._allocator = allocator
        self.on_datagram: Callable[[bytes, Address], None] = lambda data, addr: None

    def deliver(self, data: bytes, addr: Address) -> None:
        self.on_datagram(data, addr)

    def sendto(self, data: bytes, addr: Address) -> None:
        self._transport.sendto(data, addr)

    def close(self) -> None:
        if not self._transport.is_closing():
            self._transport.close()
            self._allocator.release(self.port)


class RtpPortAllocator:
    """Hands out even ports (RFC 3550 §11: RTP on even, RTCP on the odd port above it)."""

    def __init__(self, host: str, low: int, high: int) -> None:
        if low % 2:
            low += 1
        if high <= low:
            raise ValueError(f"empty RTP port range {low}-{high}")
        self._host = host
        self._ports = list(range(low, high, 2))
        self._cursor = itertools.cycle(range(len(self._ports)))
        self._in_use: set[int] = set()

    @property
    def in_use(self) -> int:
        return len(self._in_use)

    async def open(self) -> RtpSocket:
        loop = asyncio.get_running_loop()
        for _ in range(len(self._ports)):
            port = self._ports[next(self._cursor)]
            if port in self._in_use:
                continue
            protocol = _RtpProtocol()
            try:
                bound = _bound_socket(self._host, port)
            except OSError:
                continue  # taken by another process: try the next one
            transport, _ = await loop.create_datagram_endpoint(functools.partial(_same, protocol), sock=bound)
            self._in_use.add(port)
            sock = RtpSocket(transport, port, self)
            protocol.deliver = sock.deliver
            return sock
        raise RuntimeError("no free RTP port in the configured range")

    def release(self, port: int) -> None:
        self._in_use.discard(port)
