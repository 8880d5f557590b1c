"""Host names to addresses for the shells, without blocking the event loop.

A socket's ``sendto`` with a host name looks the name up synchronously, and one slow DNS answer
would then stop every call's audio. Here a name is looked up once in the loop's resolver thread
pool; what waits for it is queued and sent when the answer comes, and the answer is kept for
``ttl`` seconds (getaddrinfo does not tell the record's own TTL). A name that does not resolve is
remembered for ``negative_ttl`` seconds; what was meant for it is dropped and counted, and the
SIP transaction times out as it would for a host that does not answer.

Names come from the wire (Contacts, SDP ``c=`` lines), so what an attacker writes there must not
turn into DNS traffic: a name is looked up only if it is a valid host name (RFC 1123 labels and
length limits), and new lookups come out of budgets: one per source that named them (the address
a caller's INVITE came from: ``source_lookups_per_second``) and one for the whole process
(``lookups_per_second``), so that one sender's flood of made-up names neither reaches the DNS
server nor spends what other callers need. A refused name is treated as one that does not resolve.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ivr.logs import get_logger
from ivr.sip.ratelimit import RateLimiter

Address = tuple[str, int]
Lookup = Callable[[str], Awaitable[str]]
Deliver = Callable[[Address], None]

log = get_logger(component="resolver")


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


# RFC 1123 §2.1 (RFC 952 as amended): letters, digits and hyphens, not at either end, 1-63 each.
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
MAX_NAME_LENGTH = 253  # RFC 1035 §2.3.4: 255 octets on the wire, 253 characters written out


def is_valid_hostname(host: str) -> bool:
    """Whether ``host`` may be looked up: labels per RFC 1123, at most 253 characters, a final
    dot allowed; an all-numeric last label is an address written wrong (RFC 3696 §2), not a name."""
    name = host[:-1] if host.endswith(".") else host
    if not name or len(name) > MAX_NAME_LENGTH:
        return False
    labels = name.split(".")
    return all(_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit()


@dataclass
class _Pending:
    # (port, what to do with the address, or with None when the name did not resolve)
    waiting: list[tuple[int, Callable[[Address | None], None]]] = field(default_factory=list)


class HostResolver:
    def __init__(
        self,
        lookup: Lookup | None = None,
        *,
        family: int = socket.AF_INET,
        ttl: float = 300.0,
        negative_ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        max_waiting: int = 1000,
        lookups_per_second: float = 20.0,
        lookup_burst: float = 50.0,
        source_lookups_per_second: float = 1.0,
        source_lookup_burst: float = 5.0,
        max_sources: int = 10_000,
    ) -> None:
        self._lookup = lookup or self._getaddrinfo
        self._family = family
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._clock = clock
        self._max_waiting = max_waiting
        self._cache: dict[str, tuple[str | None, float]] = {}  # name -> (address or None, expires)
        self._pending: dict[str, _Pending] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # The same token buckets as the per-source SIP limit: one bucket for the whole process,
        # one per sender (bounded: full buckets are forgotten first).
        self._budget = RateLimiter(lookups_per_second, lookup_burst, max_keys=1)
        self._source_budget = RateLimiter(
            source_lookups_per_second, source_lookup_burst, max_keys=max_sources
        )
        self.dropped = 0  # sends given up: the name did not resolve, or too much was waiting
        self.refused = 0  # names never looked up: not a valid host name, or over the budget

    def address_now(self, addr: Address) -> Address | None:
        """``addr`` with an IP address, if that is known without waiting (else None)."""
        host, port = addr
        if is_ip_literal(host):
            return addr
        cached = self._cache.get(host)
        if cached is not None and cached[1] > self._clock() and cached[0] is not None:
            return cached[0], port
        return None

    def when_resolved(self, addr: Address, deliver: Deliver, source: str | None = None) -> None:
        """Call ``deliver`` with the resolved address once known; drop it if the name fails.

        ``source``: the address of whoever wrote the name (its lookups spend that source's budget)."""

        def then(resolved: Address | None) -> None:
            if resolved is None:
                self.dropped += 1
            else:
                deliver(resolved)

        self._wait(addr, then, source)

    async def resolve(self, addr: Address, source: str | None = None) -> Address | None:
        """The resolved address, waiting for the lookup if need be (None if the name fails)."""
        known = self.address_now(addr)
        if known is not None:
            return known
        future: asyncio.Future[Address | None] = asyncio.get_running_loop().create_future()

        def then(resolved: Address | None) -> None:
            if not future.done():
                future.set_result(resolved)

        self._wait(addr, then, source)
        return await future

    def _wait(self, addr: Address, then: Callable[[Address | None], None], source: str | None) -> None:
        known = self.address_now(addr)
        if known is not None:
            then(known)
            return
        host, port = addr
        cached = self._cache.get(host)
        if cached is not None and cached[1] > self._clock():  # known not to resolve, for now
            then(None)
            return
        pending = self._pending.get(host)
        if pending is None:
            if not is_valid_hostname(host) or not self._may_look_up(source):
                self.refused += 1
                then(None)
                return
            pending = self._pending[host] = _Pending()
            task = asyncio.get_running_loop().create_task(self._resolve(host))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if len(pending.waiting) >= self._max_waiting:
            then(None)  # a name that takes long to resolve must not pile up memory
            return
        pending.waiting.append((port, then))

    def _may_look_up(self, source: str | None) -> bool:
        now = self._clock()
        if source is not None and not self._source_budget.allow(source, now):
            return False
        return self._budget.allow("", now)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def _resolve(self, host: str) -> None:
        try:
            address: str | None = await self._lookup(host)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # gaierror, timeouts, anything: the name is unusable for now
            log.warning("host name did not resolve", host=host, error=str(error))
            address = None
        pending = self._pending.pop(host, _Pending())
        ttl = self._ttl if address is not None else self._negative_ttl
        self._cache[host] = (address, self._clock() + ttl)
        for port, then in pending.waiting:
            try:
                then((address, port) if address is not None else None)
            except Exception:
                log.exception("sending after resolving failed", host=host)

    async def _getaddrinfo(self, host: str) -> str:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, None, family=self._family, type=socket.SOCK_DGRAM)
        if not infos:
            raise OSError(f"no address for {host}")
        return str(infos[0][4][0])
