"""The RTP poller: every socket read in one pass on the media clock's beat, over real sockets."""

from __future__ import annotations

import asyncio
import itertools
import socket

import pytest

from ivr.net import event_loop
from ivr.net.media_clock import FRAME_SECONDS, MediaClock
from ivr.net.rtp_transport import MAX_ROUNDS, RtpPortAllocator

Received = list[tuple[int, bytes, tuple[str, int]]]


def _sender() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


def test_one_drain_reads_every_socket_and_names_the_sender() -> None:
    ports = RtpPortAllocator("127.0.0.1", 41000, 41100)
    sockets = [ports.open() for _ in range(5)]
    received: Received = []
    for rtp in sockets:
        rtp.on_datagram = lambda data, addr, now, port=rtp.port: received.append((port, data, addr))
    sender = _sender()
    try:
        for rtp in sockets:
            sender.sendto(b"to %d" % rtp.port, ("127.0.0.1", rtp.port))
            sender.sendto(b"again %d" % rtp.port, ("127.0.0.1", rtp.port))
        ports.poller.drain(0.0)
        assert sorted(received) == sorted(
            item
            for rtp in sockets
            for item in [
                (rtp.port, b"to %d" % rtp.port, sender.getsockname()),
                (rtp.port, b"again %d" % rtp.port, sender.getsockname()),
            ]
        )
        assert ports.poller.stats.datagrams == 10
    finally:
        sender.close()
        for rtp in sockets:
            rtp.close()
        ports.poller.close()


def test_a_flooded_socket_is_read_a_bounded_number_of_times_per_drain() -> None:
    ports = RtpPortAllocator("127.0.0.1", 41100, 41200)
    flooded, quiet = ports.open(), ports.open()
    counts = {flooded.port: 0, quiet.port: 0}
    for rtp in (flooded, quiet):
        rtp.on_datagram = lambda data, addr, now, port=rtp.port: counts.__setitem__(port, counts[port] + 1)
    sender = _sender()
    try:
        for _ in range(3 * MAX_ROUNDS):
            sender.sendto(b"x", ("127.0.0.1", flooded.port))
        sender.sendto(b"y", ("127.0.0.1", quiet.port))
        ports.poller.drain(0.0)
        assert counts == {flooded.port: MAX_ROUNDS, quiet.port: 1}
        ports.poller.drain(0.02)  # the rest waits in the kernel for the next pass, nothing is lost
        assert counts[flooded.port] == 2 * MAX_ROUNDS
    finally:
        sender.close()
        flooded.close()
        quiet.close()
        ports.poller.close()


def test_a_broken_handler_silences_its_own_socket_only() -> None:
    ports = RtpPortAllocator("127.0.0.1", 41200, 41300)
    broken, healthy = ports.open(), ports.open()
    got: list[bytes] = []

    def explode(data: bytes, addr: tuple[str, int], now: float) -> None:
        raise ValueError("a bug in one call")

    broken.on_datagram = explode
    healthy.on_datagram = lambda data, addr, now: got.append(data)
    sender = _sender()
    try:
        for _ in range(2):
            sender.sendto(b"b", ("127.0.0.1", broken.port))
            sender.sendto(b"h", ("127.0.0.1", healthy.port))
            ports.poller.drain(0.0)
        assert got == [b"h", b"h"]
        assert ports.poller.stats.handler_errors == 1
    finally:
        sender.close()
        broken.close()
        healthy.close()
        ports.poller.close()


def test_a_closed_socket_leaves_the_poller_and_frees_its_port() -> None:
    ports = RtpPortAllocator("127.0.0.1", 41300, 41304)  # two ports
    first = ports.open()
    second = ports.open()
    with pytest.raises(RuntimeError, match="no free RTP port"):
        ports.open()
    first.close()
    assert len(ports.poller) == 1
    again = ports.open()
    assert again.port == first.port
    for rtp in (second, again):
        rtp.close()
    assert len(ports.poller) == 0
    ports.poller.close()


def test_sending_to_a_closed_port_is_not_an_error() -> None:
    ports = RtpPortAllocator("127.0.0.1", 41400, 41500)
    rtp = ports.open()
    gone = _sender()
    address = gone.getsockname()
    gone.close()
    try:
        for _ in range(3):  # the ICMP error of the first lands on the socket; the rest go on
            rtp.sendto(b"audio", address)
        ports.poller.drain(0.0)
    finally:
        rtp.close()
        ports.poller.close()


@pytest.mark.parametrize("kind", ["asyncio", "uvloop"])
def test_the_clock_receives_between_frames_and_before_each_tick(kind: event_loop.LoopKind) -> None:
    """Four receive passes per 20 ms frame, the frame's own pass right before its tickers."""
    events: list[tuple[str, float]] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        clock = MediaClock(loop, receive=lambda now: events.append(("receive", loop.time())))

        def ticker(now: float) -> None:
            events.append(("tick", now))
            if sum(1 for name, _ in events if name == "tick") == 10:
                clock.remove(key)
                done.set()

        key = clock.add(ticker)
        await asyncio.wait_for(done.wait(), 5)

    event_loop.run(scenario(), kind)
    names = [name for name, _ in events]
    assert names[:5] == ["receive"] * 4 + ["tick"]
    assert names.count("tick") == 10 and names.count("receive") == 40
    for index, name in enumerate(names):
        if name == "tick":
            assert names[index - 1] == "receive"
    receive_times = [at for name, at in events if name == "receive"]
    gaps = [b - a for a, b in itertools.pairwise(receive_times)]
    # A pass every 5 ms on average (the loop may run one late, never skip the beat).
    assert sum(gaps) / len(gaps) == pytest.approx(FRAME_SECONDS / 4, rel=0.3)


def test_the_loop_kind_is_chosen_by_name() -> None:
    assert event_loop.loop_factory("asyncio") is None
    assert event_loop.run(_loop_name(), "asyncio") == "asyncio"
    assert event_loop.run(_loop_name(), "uvloop") == "uvloop"
    assert event_loop.run(_loop_name(), "auto") == ("uvloop" if event_loop.uvloop_available() else "asyncio")


async def _loop_name() -> str:
    return event_loop.loop_name(asyncio.get_running_loop())
