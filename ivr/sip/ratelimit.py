"""Per-source rate limits: token buckets keyed by the sender's address, with time passed in.

A number on the public internet is probed within hours. A source that sends more requests, or
starts more calls, than a person or a PBX plausibly would is throttled: its excess datagrams are
dropped (and counted) before any parsing work, and everyone else is served as before.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ivr.sip.message import SipRequest

# SIP messages per second one address may send when the server listens on a public address and
# the operator set no rate: well above a phone (a few per call) and a small PBX, low enough that
# a flood from one address is cut before it is parsed. A trunk carrying more sets its own rate.
PUBLIC_SOURCE_RATE = 100.0


def source_rate_for(bind_host: str, given: float | None) -> float | None:
    """The per-source rate to enforce: ``given`` when the operator chose one (0: unlimited), else
    ``PUBLIC_SOURCE_RATE`` unless the server listens on loopback only, where every sender is local."""
    if given is not None:
        return given or None
    return None if _is_loopback(bind_host) else PUBLIC_SOURCE_RATE


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may stand for any address


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``allow(key, now)`` spends one token of ``key``'s bucket: ``rate`` per second, ``burst`` deep."""

    def __init__(self, rate: float, burst: float, max_keys: int = 10_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate > 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        self.refused = 0

    def allow(self, key: str, now: float) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        self.refused += 1
        return False

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled completely: they hold no state worth keeping."""
        full = [k for k, b in self._buckets.items() if b.tokens + (now - b.updated) * self.rate >= self.burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:  # a flood of distinct sources: start afresh
            self._buckets.clear()


# User agents of well-known SIP scanners. They get no answer at all: an answer (even 403) tells
# them a SIP service lives here and invites the next, more targeted sweep.
SCANNER_AGENTS = ("friendly-scanner", "sipvicious", "sipcli", "sip-scan", "sundayddr", "iWar", "sipsak")


def is_scanner(user_agent: str | None) -> bool:
    if not user_agent:
        return False
    lowered = user_agent.lower()
    return any(name.lower() in lowered for name in SCANNER_AGENTS)


def is_scanner_request(request: SipRequest) -> bool:
    """A scanner's request, by its User-Agent or, when it sends none (SIPVicious' compact mode),
    by the display name it gives itself or the shape of its From tag."""
    headers = request.headers
    if is_scanner(headers.get("User-Agent")):
        return True
    sender = headers.get("From") or ""
    for value in (sender, headers.get("To") or ""):
        if "<" in value and is_scanner(value.split("<", 1)[0].strip().strip('"')):
            return True
    return _probe_tag(sender)


_TAG = re.compile(r";\s*tag=([0-9a-fA-F]{16,})")


def _probe_tag(sender: str) -> bool:
    """SIPVicious tags every probe with hex of "<what it probes>\\x01<number>" to match the answers
    to its sweep; a user agent's random tag is almost never printable text around one \\x01."""
    match = _TAG.search(sender)
    if match is None or len(match.group(1)) % 2:
        return False
    raw = bytes.fromhex(match.group(1))
    head, sep, tail = raw.partition(b"\x01")
    printable = all(0x20 <= b < 0x7F for b in head + tail)
    return bool(sep) and bool(head) and bool(tail) and printable
