"""UDP sockets for RTP: one per call, taken from a configured even-port range, read in batches.

A phone sends a packet every 20 ms for the whole call, so a server with N calls receives 50 N
datagrams a second. Handing each one to the event loop costs a wake-up, a selector pass and a
callback per datagram, which at a few hundred callers was most of the process's CPU. Instead
the sockets are not registered with the event loop at all: one ``RtpPoller`` (an epoll set of
its own) is drained by the media clock several times per frame, and each ready socket is read
right there. The cost per datagram is then one ``recvfrom`` and the sans-IO core's work; the
wake-ups are the clock's, whatever the number of calls. Sending goes straight to the socket,
as the transport's queueing buys nothing for a datagram that is stale 20 ms later anyway.

The socket only moves bytes: all RTP logic lives in the call's sans-IO ``MediaStream``.
"""

from __future__ import annotations

import itertools
import select
import socket
from collections.abc import Callable
from dataclasses import dataclass

from ivr.logs import get_logger

Address = tuple[str, int]
DatagramHandler = Callable[[bytes, Address, float], None]  # data, source, the drain's now
log = get_logger(component="rtp")

MAX_DATAGRAM = 2048  # RTP of telephone audio is ~200 bytes; anything longer is not ours anyway
MAX_ROUNDS = 8  # reads per socket per drain at most: a flood cannot hold up the media clock


def _ignore(data: bytes, addr: Address, now: float) -> None:
    pass


@dataclass(slots=True)
class PollerStats:
    drains: int = 0
    datagrams: int = 0
    receive_errors: int = 0  # ICMP errors reported on a socket, and the like
    handler_errors: int = 0  # a call's handler raised: that socket is silenced, the rest go on
    send_dropped: int = 0  # the socket's send buffer was full: one frame lost, never a stall


class RtpSocket:
    """One call's RTP port. ``on_datagram`` is called from ``RtpPoller.drain``."""

    def __init__(self, sock: socket.socket, port: int, allocator: RtpPortAllocator) -> None:
        self._sock = sock
        self.port = port
        self.fileno = sock.fileno()
        self.recvfrom = sock.recvfrom  # bound once: the poller calls it 50 times a second a call
        self._allocator = allocator
        self.on_datagram: DatagramHandler = _ignore
        self._closed = False

    def sendto(self, data: bytes, addr: Address) -> None:
        try:
            self._sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            self._allocator.poller.stats.send_dropped += 1
        except OSError:
            # The far end's port is closed (ICMP reported here) or its network unreachable:
            # the signalling decides the call's fate, the audio just goes nowhere meanwhile.
            pass

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.on_datagram = _ignore
            self._allocator.poller.discard(self)
            self._sock.close()
            self._allocator.release(self.port)


class RtpPoller:
    """Every RTP socket of the process in one epoll set, read on the media clock's beat."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._sockets: dict[int, RtpSocket] = {}
        self.stats = PollerStats()

    def __len__(self) -> int:
        return len(self._sockets)

    def add(self, sock: RtpSocket) -> None:
        self._epoll.register(sock.fileno, select.EPOLLIN)
        self._sockets[sock.fileno] = sock

    def discard(self, sock: RtpSocket) -> None:
        if self._sockets.pop(sock.fileno, None) is not None and not self._epoll.closed:
            self._epoll.unregister(sock.fileno)

    def drain(self, now: float) -> None:
        """Hand every datagram queued on any socket to its handler.

        Each round reads one datagram from each ready socket and asks epoll again, so a socket
        with one packet waiting (the usual case) costs one ``recvfrom`` and no failed read;
        sockets with more are read again in the next round, ``MAX_ROUNDS`` at most.
        """
        stats = self.stats
        stats.drains += 1
        sockets = self._sockets
        poll = self._epoll.poll
        for _ in range(MAX_ROUNDS):
            ready = poll(0)
            if not ready:
                return
            for fd, _events in ready:
                sock = sockets.get(fd)
                if sock is None:
                    continue
                try:
                    data, addr = sock.recvfrom(MAX_DATAGRAM)
                except BlockingIOError:
                    continue
                except OSError:
                    stats.receive_errors += 1  # an ICMP error reported on the socket: cleared now
                    continue
                stats.datagrams += 1
                try:
                    sock.on_datagram(data, addr if len(addr) == 2 else (addr[0], addr[1]), now)
                except Exception:
                    # One call's broken handler must not silence the others.
                    stats.handler_errors += 1
                    sock.on_datagram = _ignore
                    log.exception("RTP handler failed; its socket is ignored from now on")

    def close(self) -> None:
        self._epoll.close()


def _bound_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class RtpPortAllocator:
    """Hands out even ports (RFC 3550 §11: RTP on even, RTCP on the odd port above it)."""

    def __init__(self, host: str, low: int, high: int, poller: RtpPoller | None = None) -> None:
        if low % 2:
            low += 1
        if high <= low:
            raise ValueError(f"empty RTP port range {low}-{high}")
        self._host = host
        self._ports = list(range(low, high, 2))
        self._cursor = itertools.cycle(range(len(self._ports)))
        self._in_use: set[int] = set()
        self.poller = poller if poller is not None else RtpPoller()

    def open(self) -> RtpSocket:
        for _ in range(len(self._ports)):
            port = self._ports[next(self._cursor)]
            if port in self._in_use:
                continue
            try:
                bound = _bound_socket(self._host, port)
            except OSError:
                continue  # taken by another process: try the next one
            self._in_use.add(port)
            sock = RtpSocket(bound, port, self)
            self.poller.add(sock)
            return sock
        raise RuntimeError("no free RTP port in the configured range")

    def release(self, port: int) -> None:
        self._in_use.discard(port)
