"""Host names are looked up once, off the event loop, and what waits for them is sent after."""

from __future__ import annotations

import asyncio
import socket

from ivr.net.resolver import HostResolver, is_ip_literal


class Dns:
    """A resolver under the test's control: every lookup waits until the test answers it."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.answers: dict[str, asyncio.Future[str]] = {}

    async def lookup(self, host: str) -> str:
        self.asked.append(host)
        self.answers[host] = asyncio.get_running_loop().create_future()
        return await self.answers[host]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_ip_literals_are_told_apart_from_names() -> None:
    assert is_ip_literal("127.0.0.1") and is_ip_literal("::1")
    assert not is_ip_literal("pbx.example.com") and not is_ip_literal("localhost")


def test_a_name_is_looked_up_once_and_what_waited_is_sent_in_order() -> None:
    async def scenario() -> None:
        dns, clock = Dns(), Clock()
        resolver = HostResolver(dns.lookup, clock=clock, ttl=60)
        sent: list[tuple[str, tuple[str, int]]] = []
        assert resolver.address_now(("10.0.0.7", 5060)) == ("10.0.0.7", 5060)
        assert resolver.address_now(("pbx.example", 5060)) is None
        resolver.when_resolved(("pbx.example", 5060), lambda a: sent.append(("invite", a)))
        resolver.when_resolved(("pbx.example", 5070), lambda a: sent.append(("options", a)))
        await asyncio.sleep(0)
        assert dns.asked == ["pbx.example"] and sent == []  # one lookup for both, nothing sent yet
        dns.answers["pbx.example"].set_result("10.1.2.3")
        await asyncio.sleep(0)
        assert sent == [("invite", ("10.1.2.3", 5060)), ("options", ("10.1.2.3", 5070))]
        # Cached: known at once, no second lookup ...
        assert resolver.address_now(("pbx.example", 5080)) == ("10.1.2.3", 5080)
        # ... until the answer is older than the ttl.
        clock.now += 61
        assert resolver.address_now(("pbx.example", 5060)) is None
        resolver.when_resolved(("pbx.example", 5060), lambda a: sent.append(("bye", a)))
        await asyncio.sleep(0)
        assert dns.asked == ["pbx.example", "pbx.example"]
        dns.answers["pbx.example"].set_result("10.1.2.4")
        await asyncio.sleep(0)
        assert sent[-1] == ("bye", ("10.1.2.4", 5060))

    asyncio.run(scenario())


def test_a_name_that_does_not_resolve_drops_what_waited_and_is_not_asked_again_at_once() -> None:
    async def scenario() -> None:
        dns, clock = Dns(), Clock()
        resolver = HostResolver(dns.lookup, clock=clock, negative_ttl=30)
        sent: list[tuple[str, int]] = []
        resolver.when_resolved(("gone.example", 5060), sent.append)
        waiting = asyncio.ensure_future(resolver.resolve(("gone.example", 5060)))
        await asyncio.sleep(0)
        dns.answers["gone.example"].set_exception(socket.gaierror(-2, "Name or service not known"))
        assert await waiting is None
        assert sent == [] and resolver.dropped == 1
        # Within the negative ttl a new send is dropped at once, without a lookup.
        resolver.when_resolved(("gone.example", 5060), sent.append)
        assert resolver.dropped == 2 and dns.asked == ["gone.example"]
        assert await resolver.resolve(("gone.example", 5060)) is None
        clock.now += 31
        resolver.when_resolved(("gone.example", 5060), sent.append)
        await asyncio.sleep(0)
        assert dns.asked == ["gone.example", "gone.example"]
        resolver.close()

    asyncio.run(scenario())


def test_sends_piling_up_behind_a_slow_name_are_capped() -> None:
    async def scenario() -> None:
        dns = Dns()
        resolver = HostResolver(dns.lookup, max_waiting=3)
        sent: list[tuple[str, int]] = []
        for port in range(5):
            resolver.when_resolved(("slow.example", 5060 + port), sent.append)
        assert resolver.dropped == 2
        await asyncio.sleep(0)
        dns.answers["slow.example"].set_result("10.9.9.9")
        await asyncio.sleep(0)
        assert [port for _, port in sent] == [5060, 5061, 5062]

    asyncio.run(scenario())


def test_the_system_resolver_is_asked_through_the_loop() -> None:
    async def scenario() -> None:
        resolver = HostResolver()
        assert await resolver.resolve(("localhost", 5060)) == ("127.0.0.1", 5060)

    asyncio.run(scenario())
