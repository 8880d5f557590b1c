"""DTMF as RFC 4733 telephone events: payload codec, receiver state machine, sender.

Receiver theory of operation (RFC 4733 §2.5.2)
----------------------------------------------
All packets of one event carry the same RTP timestamp (the event's start), so the timestamp is the
event's identity.  For each packet:

=====================================  =========================================================
packet                                 action
=====================================  =========================================================
new timestamp (later than current)     the previous event, if never reported (its end packets were
                                       all lost), is reported now; the new one starts (`on_start`
                                       fires, for barge-in); if the packet already has the E bit,
                                       the new event is reported at once
same timestamp, not yet reported       duration updated; with the E bit: reported
same timestamp, already reported       ignored: the end packet is sent three times (§2.5.1.4)
older timestamp                        ignored: a stale or duplicated packet
=====================================  =========================================================

So every key press is reported exactly once, as early as its end is known.  `flush()` reports an
event whose end never arrived (the stream calls it when the event has gone quiet or the SSRC
changed).

Sender: `DtmfSender.packets_for` produces the §2.5.1 sequence for 20 ms packetisation; the media
stream gives every packet a new sequence number and the event's start timestamp.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .rtp import RtpPacket

__all__ = [
    "DIGITS",
    "DtmfEvent",
    "DtmfPacket",
    "DtmfReceiver",
    "DtmfSender",
    "DtmfStart",
    "TelephoneEvent",
    "TelephoneEventError",
    "digit_for_event",
    "event_for_digit",
]

# RFC 4733 §3.2 (Table 3): events 0-15 are the DTMF keys.
DIGITS = "0123456789*#ABCD"
_EVENT_OF = {digit: code for code, digit in enumerate(DIGITS)}
_PAYLOAD = struct.Struct("!BBH")
SAMPLES_PER_PACKET = 160  # 20 ms at 8 kHz
END_RETRANSMISSIONS = 3  # RFC 4733 §2.5.1.4
MAX_DURATION = 0xFFFF
RECENT_EVENTS = 8  # start timestamps remembered to recognise late packets of past events
# Packets of one key press come every 20 ms and its end is repeated right behind it; a start or
# update packet with a known timestamp after this much silence is a new press of the same key (a
# replayed capture; SIPp plays one every 300 ms).
REPLAY_GAP = 0.1


class TelephoneEventError(ValueError):
    """A telephone-event payload is malformed."""


def event_for_digit(digit: str) -> int:
    try:
        return _EVENT_OF[digit.upper()]
    except KeyError:
        raise ValueError(f"{digit!r} is not a DTMF digit (one of {DIGITS})") from None


def digit_for_event(event: int) -> str | None:
    """The key for an event code, or None for non-DTMF events (flash, tones ...)."""
    return DIGITS[event] if 0 <= event < len(DIGITS) else None


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """The 4-byte payload of RFC 4733 §2.3: event, E bit, volume (-dBm0), duration (timestamp units)."""

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 255:
            raise ValueError(f"event {self.event} does not fit in 8 bits")
        if not 0 <= self.volume <= 63:
            raise ValueError(f"volume {self.volume} outside 0..63")
        if not 0 <= self.duration <= MAX_DURATION:
            raise ValueError(f"duration {self.duration} does not fit in 16 bits")

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) < 4:
            raise TelephoneEventError(f"telephone-event payload is {len(payload)} bytes, needs 4")
        event, flags, duration = _PAYLOAD.unpack_from(payload)
        # flags: E bit, R bit (reserved, ignored on receipt per §2.3.3), 6-bit volume.
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    def __bytes__(self) -> bytes:
        return _PAYLOAD.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)


@dataclass(frozen=True, slots=True)
class DtmfEvent:
    """A completed key press.  `duration` is in timestamp units (samples at 8 kHz)."""

    digit: str
    start_timestamp: int
    duration: int
    source: str = "rfc4733"  # or "inband" when heard by the tone detector


@dataclass(frozen=True, slots=True)
class DtmfStart:
    """A key press has begun (reported before its end, so a prompt can be cut at once)."""

    digit: str
    start_timestamp: int


@dataclass(slots=True)
class DtmfReceiverStats:
    packets: int = 0
    malformed: int = 0
    retransmissions: int = 0
    stale: int = 0
    ignored_events: int = 0
    missing_end: int = 0


class DtmfReceiver:
    """Turns RFC 4733 packets of one SSRC into one `DtmfEvent` per key press."""

    def __init__(self, on_start: Callable[[DtmfStart], None] | None = None) -> None:
        self.on_start = on_start
        self.stats = DtmfReceiverStats()
        self._timestamp: int | None = None  # start timestamp of the current (or last) event
        self._digit: str | None = None  # None for non-DTMF events
        self._duration = 0
        self._reported = True
        self._recent: deque[int] = deque(maxlen=RECENT_EVENTS)
        self._last_at: dict[int, float] = {}  # latest arrival per event timestamp

    @property
    def in_progress(self) -> bool:
        """True while a key press has started and its end is not known yet."""
        return not self._reported

    def reset(self) -> None:
        """Forget the timestamp history (new SSRC); an unfinished event is dropped, flush first."""
        self._timestamp = None
        self._digit = None
        self._duration = 0
        self._reported = True
        self._recent.clear()
        self._last_at.clear()

    def _is_new_event(self, ts: int, now: float | None, end: bool) -> bool:
        """§2.5.1.2: a new start timestamp is a new event, and not only a later one.

        Senders that replay canned captures (SIPp's RFC 2833 pcaps) start each key at a fixed,
        possibly earlier timestamp, and the same key twice is the same bytes twice. Late packets of
        recent events are recognised by their timestamp; a whole key press replayed after a pause
        (when the arrival time is known) by the silence before it and by starting without the E
        bit, which a late retransmission of a finished event always carries.
        """
        replayed = now is not None and not end and now - self._last_at.get(ts, now) > REPLAY_GAP
        if ts == self._timestamp:
            return self._reported and replayed
        return ts not in self._recent or replayed

    def feed(self, packet: RtpPacket, now: float | None = None) -> list[DtmfEvent]:
        self.stats.packets += 1
        try:
            te = TelephoneEvent.parse(packet.payload)
        except TelephoneEventError:
            self.stats.malformed += 1
            return []
        ts = packet.timestamp
        is_new = self._is_new_event(ts, now, te.end)
        if now is not None:
            self._last_at[ts] = now
        if is_new:
            events = self.flush()
            if self._timestamp is not None and self._timestamp != ts:
                self._recent.append(self._timestamp)
                # Forget arrival times of events too old to be confused with new ones.
                keep = {*self._recent, ts}
                for old in [key for key in self._last_at if key not in keep]:
                    del self._last_at[old]
            self._timestamp = ts
            self._digit = digit_for_event(te.event)
            self._duration = te.duration
            if self._digit is None:
                self.stats.ignored_events += 1
                self._reported = True
                return events
            self._reported = False
            if self.on_start is not None:
                self.on_start(DtmfStart(self._digit, ts))
            if te.end:
                events.append(self._finish())
            return events
        if ts != self._timestamp:
            self.stats.stale += 1  # a late packet of an earlier key press
            return []
        if self._reported:
            if te.end:
                self.stats.retransmissions += 1
            else:
                self.stats.stale += 1
            return []
        self._duration = max(self._duration, te.duration)
        if te.end:
            return [self._finish()]
        return []

    def flush(self) -> list[DtmfEvent]:
        """Report the current event if it started but its end packets never came."""
        if self._reported or self._digit is None or self._timestamp is None:
            return []
        self.stats.missing_end += 1
        return [self._finish()]

    def _finish(self) -> DtmfEvent:
        assert self._digit is not None and self._timestamp is not None
        self._reported = True
        return DtmfEvent(self._digit, self._timestamp, self._duration)


@dataclass(frozen=True, slots=True)
class DtmfPacket:
    """One packet of an outgoing event; the stream adds sequence number and timestamp."""

    marker: bool
    event: TelephoneEvent

    @property
    def payload(self) -> bytes:
        return bytes(self.event)


class DtmfSender:
    """Builds the RFC 4733 §2.5.1 packet sequence of one key press, 20 ms apart."""

    def __init__(self, samples_per_packet: int = SAMPLES_PER_PACKET) -> None:
        self.samples_per_packet = samples_per_packet

    def packets_for(self, digit: str, duration_ms: int = 100, volume: int = 10) -> list[DtmfPacket]:
        """The packets for `digit` held `duration_ms`: updates then three end packets.

        §2.5.1.2: the first packet has the marker bit; every packet repeats the start timestamp and
        reports the duration so far, growing one packet (160 samples) at a time; §2.5.1.4: the
        final duration is sent three times with the E bit.
        """
        code = event_for_digit(digit)
        step = self.samples_per_packet
        count = max(1, round(duration_ms / 20))
        total = count * step
        if total > MAX_DURATION:
            # Longer events need §2.5.1.3 segmentation, which key presses never need.
            raise ValueError(f"a {duration_ms} ms event exceeds the 16-bit duration field")
        packets = [
            DtmfPacket(marker=(i == 1), event=TelephoneEvent(code, False, volume, i * step))
            for i in range(1, count)
        ]
        end = TelephoneEvent(code, True, volume, total)
        for _ in range(END_RETRANSMISSIONS):
            packets.append(DtmfPacket(marker=not packets, event=end))
        return packets
