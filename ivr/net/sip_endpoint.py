"""The asyncio shell around the sans-IO SIP user agent.

It only moves bytes and time: datagrams in -> ``UserAgent.receive_datagram``; whatever the core
wants sent goes out; the core's next deadline is one ``loop.call_at``; events are handed to the
application, whose reactions (answer, hang up, ...) are flushed in the same pass.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from ivr.logs import get_logger
from ivr.net.resolver import HostResolver
from ivr.net.tcp import SipTcpServer
from ivr.sip.ratelimit import RateLimiter
from ivr.sip.useragent import UserAgent

Address = tuple[str, int]
EventHandler = Callable[[Any], None]

log = get_logger(component="sip")


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: SipEndpoint) -> None:
        self._endpoint = endpoint

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self._endpoint.receive(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable from a peer that went away: the transaction timers handle it.
        log.debug("udp error", error=str(exc))


class SipEndpoint:
    def __init__(self, ua: UserAgent, on_event: EventHandler) -> None:
        self.ua = ua
        self._on_event = on_event
        self._loop = asyncio.get_running_loop()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: SipTcpServer | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._pumping = False
        self.local_address: Address = ("", 0)
        # With several workers: passes a datagram to the worker owning its call (True = passed).
        self.router: Callable[[bytes, Address], bool] | None = None
        # Per-source throttle, before any parsing: a flood from one address costs almost nothing.
        self.limiter: RateLimiter | None = None
        self.throttled = 0
        # Targets given by name (agents' phones, a trunk) are looked up off the loop, then cached.
        self.resolver = HostResolver()

    async def start(self, host: str, port: int, tcp: bool = False, reuse_port: bool = False) -> Address:
        transport, _ = await self._loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(host, port), reuse_port=reuse_port or None
        )
        self._udp = transport
        sockname = transport.get_extra_info("sockname")
        self.local_address = (sockname[0], sockname[1])
        if tcp:
            self._tcp = SipTcpServer(self.receive)
            await self._tcp.start(host, self.local_address[1])
        return self.local_address

    def close(self) -> None:
        self.resolver.close()
        if self._timer is not None:
            self._timer.cancel()
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()

    def receive(self, data: bytes, addr: Address) -> None:
        if self.limiter is not None and not self.limiter.allow(addr[0], self._loop.time()):
            self.throttled += 1
            return
        if self.router is not None and self.router(data, addr):
            return
        self.handle(data, addr)

    def handle(self, data: bytes, addr: Address) -> None:
        """Process a datagram here (received directly, or passed on by another worker)."""
        self.ua.receive_datagram(data, addr, self._loop.time())
        self.pump()

    def act(self, action: Callable[[float], object]) -> object:
        """Run an application action on the core with the current time, then flush."""
        result = action(self._loop.time())
        self.pump()
        return result

    def pump(self) -> None:
        # Re-entrant calls (an event handler acting on the core) are folded into the outer pass.
        if self._pumping:
            return
        self._pumping = True
        try:
            while True:
                self._flush()
                event = self.ua.next_event()
                if event is None:
                    break
                try:
                    self._on_event(event)
                except Exception:
                    log.exception("event handler failed", kind=type(event).__name__)
            self._flush()
        finally:
            self._pumping = False
        self._rearm()

    def _flush(self) -> None:
        for data, addr in self.ua.datagrams_to_send():
            target = self.resolver.address_now(addr)
            if target is None:
                self.resolver.when_resolved(addr, functools.partial(self._send, data))
            else:
                self._send(data, target)

    def _send(self, data: bytes, addr: Address) -> None:
        if self._tcp is not None and self._tcp.send(data, addr):
            return
        if self._udp is not None:
            self._udp.sendto(data, addr)

    def _rearm(self) -> None:
        when = self.ua.get_timer()
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None:
            self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self.ua.handle_timer(self._loop.time())
        self.pump()
