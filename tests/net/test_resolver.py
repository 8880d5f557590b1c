"""Host names are looked up once, off the event loop, and what waits for them is sent after."""

from __future__ import annotations

import asyncio
import socket

from ivr.net.resolver import HostResolver, is_ip_literal, is_valid_hostname


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


def test_only_valid_host_names_are_looked_up() -> None:
    assert is_valid_hostname("pbx.example.com") and is_valid_hostname("localhost")
    assert is_valid_hostname("a-b.example.") and is_valid_hostname("x" * 63 + ".example")
    for bad in (
        "127.0.0.1%n%n%n%n",  # a format string
        "a" * 64 + ".example",  # a label over 63 characters
        ".".join(["abcdefgh"] * 29),  # 260 characters
        "-pbx.example",
        "pbx-.example",
        "pbx..example",
        "pbx_1.example",
        "pbx.example\n",
        "p\u00e4x.example",  # not ASCII: an IDN must come as its A-label
        "256.1.2.3",  # numeric last label: an address written wrong, not a name
        "",
        ".",
    ):
        assert not is_valid_hostname(bad), bad


def test_a_name_from_the_wire_that_is_not_a_host_name_is_never_looked_up() -> None:
    async def scenario() -> None:
        dns = Dns()
        resolver = HostResolver(dns.lookup, clock=Clock())
        results: list[object] = []
        resolver.when_resolved(("127.0.0.1%n%n%n%n", 5060), results.append)
        assert await resolver.resolve(("a" * 64 + ".example", 5060)) is None
        await asyncio.sleep(0)
        assert dns.asked == [] and results == []
        assert resolver.refused == 2 and resolver.dropped == 1

    asyncio.run(scenario())


def test_new_lookups_share_a_budget_and_cached_names_do_not_spend_it() -> None:
    async def scenario() -> None:
        dns, clock = Dns(), Clock()
        resolver = HostResolver(dns.lookup, clock=clock, lookups_per_second=1, lookup_burst=2)
        for name in ("one.example", "two.example", "three.example"):
            resolver.when_resolved((name, 5060), lambda a: None)
        await asyncio.sleep(0)
        assert dns.asked == ["one.example", "two.example"] and resolver.refused == 1
        dns.answers["one.example"].set_result("10.0.0.1")
        await asyncio.sleep(0)
        assert await resolver.resolve(("one.example", 5062)) == ("10.0.0.1", 5062)  # no lookup
        clock.now += 1.0  # one more token
        resolver.when_resolved(("three.example", 5060), lambda a: None)
        await asyncio.sleep(0)
        assert dns.asked == ["one.example", "two.example", "three.example"]
        resolver.close()

    asyncio.run(scenario())


def test_one_source_spends_its_own_budget_not_the_other_callers() -> None:
    async def scenario() -> None:
        dns, clock = Dns(), Clock()
        resolver = HostResolver(dns.lookup, clock=clock, source_lookups_per_second=1, source_lookup_burst=2)
        for n in range(5):  # one sender names five new hosts at once: two are looked up
            resolver.when_resolved((f"made-up-{n}.example", 5060), lambda a: None, source="198.51.100.9")
        resolver.when_resolved(("pbx.example", 5060), lambda a: None, source="192.0.2.1")
        await asyncio.sleep(0)
        assert dns.asked == ["made-up-0.example", "made-up-1.example", "pbx.example"]
        assert resolver.refused == 3
        resolver.close()

    asyncio.run(scenario())


def test_the_sources_remembered_are_bounded() -> None:
    async def scenario() -> None:
        dns = Dns()
        resolver = HostResolver(dns.lookup, clock=Clock(), source_lookup_burst=1, max_sources=2)
        for source in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
            resolver.when_resolved((f"host-{source[-1]}.example", 5060), lambda a: None, source=source)
        # The table was full when 10.0.0.3 came, so 10.0.0.1 was forgotten: it starts again full.
        resolver.when_resolved(("again.example", 5060), lambda a: None, source="10.0.0.1")
        resolver.when_resolved(("more.example", 5060), lambda a: None, source="10.0.0.3")
        await asyncio.sleep(0)
        assert dns.asked == ["host-1.example", "host-2.example", "host-3.example", "again.example"]
        resolver.close()

    asyncio.run(scenario())
