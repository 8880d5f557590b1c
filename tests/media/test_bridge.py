from __future__ import annotations

import random

import numpy as np
import pytest

from ivr.media.bridge import Bridge
from ivr.media.dtmf import DtmfEvent
from ivr.media.g711 import codec_by_name
from ivr.media.player import PlayResult
from ivr.media.rtp import RtpPacket
from ivr.media.stream import MediaEvent, MediaStream

CALLER_PHONE = ("10.0.0.1", 4000)
IVR_A = ("10.0.0.9", 20000)
AGENT_PHONE = ("10.0.0.2", 5000)
IVR_B = ("10.0.0.9", 20002)


def tagged(n_frames: int, base: int) -> np.ndarray:
    """Frames whose constant value tells which frame it is, exactly representable in G.711."""
    values = [base + 256 * k for k in range(n_frames)]
    return np.repeat(np.array(values, np.int16), 160)


class Phone:
    """Listens to a phone's stream: the key presses it hears."""

    def __init__(self, events: list[object]) -> None:
        self.events = events

    def on_frame(self, stream: MediaStream, payload: bytes | None) -> None:
        pass

    def on_events(self, stream: MediaStream, events: list[MediaEvent]) -> None:
        self.events += events


class Rig:
    """Caller phone <-> leg A  ==bridge==  leg B <-> agent phone, one fake 20 ms clock."""

    def __init__(self, codec_a: str = "PCMU", codec_b: str = "PCMU", order: str = "ab", **kw: object) -> None:
        self.caller = MediaStream(codec_a, 101, IVR_A, rng=random.Random(1), jitter_depth=1)
        self.a = MediaStream(codec_a, 101, CALLER_PHONE, rng=random.Random(2), jitter_depth=1)
        self.agent = MediaStream(codec_b, 101, IVR_B, rng=random.Random(3), jitter_depth=1)
        self.b = MediaStream(codec_b, 101, AGENT_PHONE, rng=random.Random(4), jitter_depth=1)
        self.bridge = Bridge(self.a, self.b, **kw)  # type: ignore[arg-type]
        self.a.listener = self.b.listener = self.bridge  # the legs' owner subscribes it
        self.order = order
        self.now = 50.0
        self.tick_no = 0
        self.sent: dict[str, list[RtpPacket | None]] = {"a": [], "b": []}
        self.played: dict[str, list[np.ndarray | None]] = {"a": [], "b": [], "caller": [], "agent": []}
        self.events: dict[str, list[object]] = {"caller": [], "agent": []}
        self.caller.listener = Phone(self.events["caller"])
        self.agent.listener = Phone(self.events["agent"])

    def _leg(self, name: str) -> None:
        leg = self.a if name == "a" else self.b
        phone = self.caller if name == "a" else self.agent
        out = leg.tick(self.now)
        frame = leg.received_frame
        self.played[name].append(None if frame is None else frame.copy())
        self.sent[name].append(RtpPacket.parse(out) if out else None)
        if out:
            phone.receive(out, (IVR_A if name == "a" else IVR_B), self.now)

    def run(self, ticks: int) -> None:
        for _ in range(ticks):
            self.now += 0.02
            self.tick_no += 1
            for name, phone, leg in (("caller", self.caller, self.a), ("agent", self.agent, self.b)):
                out = phone.tick(self.now)
                frame = phone.received_frame
                self.played[name].append(None if frame is None else frame.copy())
                if out:
                    leg.receive(out, CALLER_PHONE if name == "caller" else AGENT_PHONE, self.now)
            for name in self.order:
                self._leg(name)


def values(frames: list[np.ndarray | None]) -> list[int | None]:
    out: list[int | None] = []
    for f in frames:
        out.append(None if f is None else int(f[0]))
    return out


def payload_values(packets: list[RtpPacket | None], codec: str) -> list[int | None]:
    c = codec_by_name(codec)
    return [None if p is None else int(c.decode(p.payload)[0]) for p in packets]


@pytest.mark.parametrize("order", ["ab", "ba"])
def test_audio_crosses_both_ways_with_at_most_one_frame_delay(order: str) -> None:
    rig = Rig(order=order)
    rig.caller.player.play(tagged(20, 100))
    rig.agent.player.play(tagged(20, -9000))
    rig.run(40)
    for src, dst in (("a", "b"), ("b", "a")):
        heard = values(rig.played[src])  # what the leg played out (received) per tick
        sent = payload_values(rig.sent[dst], "PCMU")  # what the other leg sent per tick
        first_heard = next(i for i, v in enumerate(heard) if v is not None)
        first_sent = next(i for i, v in enumerate(sent) if v is not None)
        delay = first_sent - first_heard
        assert delay == (0 if order[0] == src else 1)
        assert [v for v in sent if v is not None] == [v for v in heard if v is not None]
        assert len([v for v in sent if v is not None]) == 20
    assert rig.bridge.stats.a_to_b.frames == 20 and rig.bridge.stats.b_to_a.frames == 20
    assert rig.bridge.stats.a_to_b.dropped == 0 and rig.bridge.stats.a_to_b.transcoded == 0
    agent_heard = [v for v in values(rig.played["agent"]) if v is not None]
    caller_heard = [v for v in values(rig.played["caller"]) if v is not None]
    pcmu = codec_by_name("PCMU")
    assert agent_heard == [
        int(pcmu.decode(pcmu.encode(np.array([100 + 256 * k], np.int16)))[0]) for k in range(20)
    ]
    assert len(caller_heard) == 20


def test_pcmu_to_pcma_is_transcoded() -> None:
    rig = Rig("PCMU", "PCMA")
    signal = (np.sin(np.arange(160 * 10) / 9) * 9000).astype(np.int16)
    rig.caller.player.play(signal)
    rig.run(20)
    pcmu, pcma = codec_by_name("PCMU"), codec_by_name("PCMA")
    sent = [p for p in rig.sent["b"] if p is not None]
    assert len(sent) == 10 and all(p.payload_type == 8 for p in sent)
    expected = pcma.encode(pcmu.decode(pcmu.encode(signal)))
    assert b"".join(p.payload for p in sent) == expected
    assert rig.bridge.stats.a_to_b.transcoded == 10


def test_rfc4733_keys_are_relayed_as_events_both_ways() -> None:
    rig = Rig("PCMU", "PCMA")
    rig.caller.send_dtmf("12", duration_ms=120)
    rig.agent.send_dtmf("#")
    rig.run(60)
    agent_keys = [e for e in rig.events["agent"] if isinstance(e, DtmfEvent)]
    caller_keys = [e for e in rig.events["caller"] if isinstance(e, DtmfEvent)]
    assert [e.digit for e in agent_keys] == ["1", "2"]
    assert [e.digit for e in caller_keys] == ["#"]
    assert all(e.source == "rfc4733" and e.duration == 960 for e in agent_keys)
    assert rig.bridge.stats.a_to_b.dtmf == 2 and rig.bridge.stats.b_to_a.dtmf == 1
    relayed = [p for p in rig.sent["b"] if p is not None]
    assert relayed and all(p.payload_type == 101 for p in relayed)  # events, not tones


def test_whisper_is_heard_by_the_agent_only_then_the_bridge_connects() -> None:
    rig = Rig(connect=False)
    summary = np.full(160 * 10, 3000, np.int16)
    hold = np.full(160 * 4, -2000, np.int16)
    results: list[PlayResult] = []
    rig.caller.player.play(np.full(160 * 40, 700, np.int16))  # the caller keeps talking
    rig.bridge.whisper(summary, hold=hold, on_done=results.append)
    assert rig.bridge.whispering and not rig.bridge.connected
    rig.run(10)
    assert results == [PlayResult(results[0].id, True, 1600)]
    assert rig.bridge.connected and not rig.bridge.whispering
    to_b = payload_values(rig.sent["b"], "PCMU")
    to_a = payload_values(rig.sent["a"], "PCMU")
    pcmu = codec_by_name("PCMU")
    q = {v: int(pcmu.decode(pcmu.encode(np.array([v], np.int16)))[0]) for v in (3000, -2000, 700)}
    assert to_b == [q[3000]] * 10  # the summary, and not the caller
    assert to_a == [q[-2000]] * 10  # hold, looped (4 + 4 + 2 frames), never the summary
    rig.run(10)
    to_b = payload_values(rig.sent["b"], "PCMU")[10:]
    to_a = payload_values(rig.sent["a"], "PCMU")[10:]
    assert set(to_b) == {q[700]}  # connected: the caller now reaches the agent
    assert q[-2000] not in to_a and q[3000] not in to_a  # hold stopped at once
    assert not rig.a.player.playing


def test_connect_during_whisper_cuts_it_short() -> None:
    rig = Rig(connect=False)
    results: list[PlayResult] = []
    rig.bridge.whisper(
        np.full(160 * 50, 3000, np.int16), hold=np.full(160, 5, np.int16), on_done=results.append
    )
    rig.run(3)
    rig.bridge.connect()
    assert results and not results[0].completed
    assert not rig.a.player.playing and not rig.b.player.playing
    assert rig.bridge.connected


def test_tick_order_change_costs_at_most_one_frame() -> None:
    rig = Rig(order="ab")
    rig.caller.player.play(tagged(30, 100))
    rig.run(12)
    rig.order = "ba"
    rig.run(8)
    rig.order = "ab"
    rig.run(20)
    heard = [v for v in values(rig.played["a"]) if v is not None]
    sent = [v for v in payload_values(rig.sent["b"], "PCMU") if v is not None]
    assert len(heard) == 30
    missing = [v for v in heard if v not in sent]
    assert len(missing) <= 1 and rig.bridge.stats.a_to_b.dropped == len(missing)
    assert sent == [v for v in heard if v in sent]  # never duplicated or reordered


def test_close_stops_relaying_and_a_stream_cannot_be_bridged_to_itself() -> None:
    rig = Rig()
    with pytest.raises(ValueError):
        Bridge(rig.caller, rig.caller)
    rig.bridge.close()
    rig.caller.player.play(np.full(160 * 5, 900, np.int16))
    rig.run(10)
    assert all(p is None for p in rig.sent["b"])
    with pytest.raises(RuntimeError):
        rig.bridge.connect()
