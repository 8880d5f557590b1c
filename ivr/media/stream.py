"""MediaStream: the sans-IO RTP endpoint of one call.

The shell feeds datagrams in with `receive(data, addr, now)` and calls `tick(now)` once per 20 ms
from the shared media clock; `tick` returns the datagram to send to `send_address` (or None) and
moves the receive side on by one frame.  Nothing here reads a clock or touches a socket.

Sending (RFC 3550 §5.1, RFC 3551 §4.1-4.2)
  SSRC, first sequence number and first timestamp are random.  The sequence number grows by one
  per packet sent; the timestamp grows by 160 per 20 ms of wall-clock time, whether or not a packet
  went out, so the receiver sees silence gaps as timestamp jumps.  The first packet of a talkspurt
  (after a gap, at start, after hold or an event) carries the marker bit.  RFC 4733 events pause
  the audio: their packets share the sequence space, carry the event's start timestamp, and the
  player resumes where it stopped once the event and a short inter-digit gap have been sent.

Receiving
  Symmetric RTP (RFC 4961): the first valid packet with a negotiated payload type latches its source
  address, which is also where we send.  Packets from anywhere else are dropped and counted, unless
  the latched source has been silent for `latch_timeout` seconds (NAT rebinding, media moved), in
  which case the new source takes over, or they come from the address the SDP gave, which always
  takes the latch back from a stranger that got there first.  Before anything is latched, a
  source other than the SDP's waits `foreign_grace` seconds (a NAT'd caller) so that a stranger
  spraying our ports cannot slip in keys before the caller's first packet; meanwhile the prompt
  is held back rather than sent where a NAT'd caller would never hear it.  Wrong payload types, malformed
  datagrams and packets while inactive are counted, never raised.  A new audio SSRC resets the
  jitter buffer; RFC 4733 packets go through the `DtmfReceiver` and are returned from `receive()`
  at once; audio goes through the jitter buffer and comes out, decoded, on `tick()`.  The jitter
  buffer re-frames 10/30/40 ms packets into 20 ms frames, so a tick always plays 160 samples.

In-band DTMF
  With `inband_dtmf` the played-out frames go through the Goertzel detector.  The first frame in
  which a digit is confidently heard yields a `DtmfStart` at once (barge-in 20 ms after the tone
  begins, as with RFC 4733's first packet); the `DtmfEvent` follows when the debounce confirms it.
  An in-band start that the debounce does not confirm is not followed by an event.

Taps and live input (bridging)
  A `StreamTap` set as `stream.tap` sees every played-out payload (or None) on `tick()` and every
  RFC 4733 event `receive()` (or a tick's timeout flush) produces; `send_frame(frame)` hands the
  player one live frame for its next tick.  `ivr.media.bridge.Bridge` is built from these two.
"""

from __future__ import annotations

import random
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from .dtmf import DtmfEvent, DtmfPacket, DtmfReceiver, DtmfSender, DtmfStart
from .g711 import Codec, codec_by_name
from .goertzel import DtmfDetector, generate_dtmf
from .jitter import JitterBuffer
from .player import Player
from .rtp import RTP_HEADER_SIZE, RtpPacket, RtpParseError, build_header

__all__ = ["DIRECTIONS", "Address", "MediaEvent", "MediaStream", "StreamStats", "StreamTap"]

Address = tuple[str, int]
MediaEvent = DtmfEvent | DtmfStart
Int16Array = npt.NDArray[np.int16]

_FIXED_HEADER = struct.Struct("!BHII")  # the fixed header after its first octet
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")  # RFC 4566 §6, from our side
FRAME = 160
FRAME_SECONDS = 0.020
DTMF_GAP_FRAMES = 2  # 40 ms pause between events, so receivers see distinct key presses
DTMF_END_TIMEOUT = 1.0  # an event with no packet for this long has lost all its end packets


@dataclass(slots=True)
class StreamStats:
    packets_sent: int = 0
    bytes_sent: int = 0
    packets_received: int = 0
    bytes_received: int = 0
    malformed: int = 0
    wrong_payload_type: int = 0
    foreign_source: int = 0
    relatched: int = 0
    ssrc_changes: int = 0
    not_receiving: int = 0
    dtmf_sent: int = 0


class StreamTap(Protocol):
    """Sees what a stream receives (a bridge, a conference mixer, a monitor)."""

    def on_frame(self, stream: MediaStream, payload: bytes | None) -> None:
        """The 160-byte payload (in `stream.codec`) played out by this tick, or None."""

    def on_events(self, stream: MediaStream, events: list[MediaEvent]) -> None:
        """RFC 4733 events as `receive()` returns them (and events whose end was lost)."""


class MediaStream:
    """One call's RTP session: `receive()` datagrams, `tick()` every 20 ms, `player` for prompts."""

    def __init__(
        self,
        codec: Codec | str = "PCMU",
        dtmf_pt: int | None = 101,
        remote: Address | None = None,
        *,
        direction: str = "sendrecv",
        rng: random.Random | None = None,
        jitter_depth: int = 3,
        jitter_max: int = 50,
        inband_dtmf: bool = False,
        record: bool = False,
        comfort_silence: bool = False,
        latch_timeout: float = 2.0,
        foreign_grace: float = 0.5,
        on_audio: Callable[[Int16Array], None] | None = None,
    ) -> None:
        # RFC 3550 §5.1: random initial values make known-plaintext attacks and collisions harder.
        rng = rng if rng is not None else random.SystemRandom()
        self.ssrc = rng.getrandbits(32)
        self._seq = rng.getrandbits(16)
        self._timestamp = rng.getrandbits(32)
        self.codec = codec_by_name(codec) if isinstance(codec, str) else codec
        self.dtmf_pt = dtmf_pt
        self.remote = remote
        self.direction = "sendrecv"
        self._set_direction(direction)
        self.latch_timeout = latch_timeout
        self.foreign_grace = foreign_grace
        self.on_audio = on_audio
        self.player = Player(comfort_silence=comfort_silence)
        self.jitter = JitterBuffer(jitter_depth, jitter_max, silence_byte=self.codec.silence_byte)
        self.tap: StreamTap | None = None
        self.stats = StreamStats()
        self._rx_payload: bytes | None = None  # payload played out on the last tick
        self._rx_frame: Int16Array | None = None  # ... decoded, when someone asked for it

        self._latched: Address | None = None
        self._last_latched_rx = 0.0
        self._foreign_since: float | None = None  # first packet from elsewhere while unlatched
        self._remote_ssrc: int | None = None
        self._dtmf_ssrc: int | None = None
        self._pending: list[MediaEvent] = []  # produced by tick(), drained by pop_events()
        self._starts: list[DtmfStart] = []
        self._dtmf_rx = DtmfReceiver(on_start=self._starts.append)
        self._last_dtmf_rx = 0.0
        self._dtmf_tx = DtmfSender()
        self._dtmf_queue: deque[DtmfPacket | None] = deque()
        self._event_timestamp = 0
        self._inband_tx: deque[bytes] = deque()
        self._detector = DtmfDetector() if inband_dtmf else None
        self._rx_buffer = np.zeros(FRAME, dtype=np.int16)
        self._rx_timestamp = 0  # frames played out x 160, for in-band event timestamps
        self._recording: list[Int16Array] | None = [] if record else None
        self._last_tick: float | None = None
        self._talkspurt = False  # True while consecutive audio packets are going out

    # -- configuration -------------------------------------------------------------------------

    def _set_direction(self, direction: str) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
        self.direction = direction
        self._sending = direction in ("sendrecv", "sendonly")
        self._receiving = direction in ("sendrecv", "recvonly")

    def set_remote(
        self, addr: Address | None, codec: Codec | str, dtmf_pt: int | None, direction: str = "sendrecv"
    ) -> None:
        """Apply a (re-)negotiated answer: new address, codec, event payload type, hold state."""
        new_codec = codec_by_name(codec) if isinstance(codec, str) else codec
        if addr != self.remote:
            self.remote = addr
            self._latched = None  # media moved: latch afresh to whoever now sends
        if new_codec is not self.codec:
            self.codec = new_codec
            self.jitter.reset()  # queued payloads are in the old encoding
            self.jitter.silence_byte = new_codec.silence_byte
            self._rx_payload = self._rx_frame = None
        self.dtmf_pt = dtmf_pt
        self._set_direction(direction)
        self._talkspurt = False

    @property
    def latched(self) -> Address | None:
        return self._latched

    @property
    def send_address(self) -> Address | None:
        """Where `tick()`'s packets go: the latched source (symmetric RTP), else the SDP address."""
        return self._latched if self._latched is not None else self.remote

    @property
    def recording(self) -> bool:
        return self._recording is not None

    def start_recording(self) -> None:
        self._recording = []

    def recorded_so_far(self) -> Int16Array:
        """What `stop_recording()` would return now, while recording goes on."""
        frames = self._recording or []
        return np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)

    def stop_recording(self) -> Int16Array:
        """Everything received since recording started, one frame per tick (silence where none)."""
        frames, self._recording = self._recording or [], None
        return np.concatenate(frames) if frames else np.zeros(0, dtype=np.int16)

    def pop_events(self) -> list[MediaEvent]:
        """Events produced by `tick()` (in-band digits, events whose end was lost)."""
        events, self._pending = self._pending, []
        return events

    # -- receive side --------------------------------------------------------------------------

    def receive(self, data: bytes, addr: Address, now: float) -> list[MediaEvent]:
        """Take one datagram; returns DTMF events it completes or starts.  Never raises."""
        stats = self.stats
        stats.packets_received += 1
        stats.bytes_received += len(data)
        if not self._receiving:
            stats.not_receiving += 1
            return []
        if len(data) > RTP_HEADER_SIZE and data[0] == 0x80:
            # Fast path for the usual packet (V=2, no padding, extension or CSRC): no dataclass.
            second, seq, timestamp, ssrc = _FIXED_HEADER.unpack_from(data, 1)
            pt = second & 0x7F
            payload = data[RTP_HEADER_SIZE:]
        else:
            try:
                packet = RtpPacket.parse(data)
            except RtpParseError:
                stats.malformed += 1
                return []
            second = packet.payload_type | (0x80 if packet.marker else 0)
            pt, seq, timestamp, ssrc = (
                packet.payload_type,
                packet.sequence_number,
                packet.timestamp,
                packet.ssrc,
            )
            payload = packet.payload
        is_dtmf = pt == self.dtmf_pt
        if pt != self.codec.payload_type and not is_dtmf:
            stats.wrong_payload_type += 1
            return []

        latched = self._latched
        if latched is None:
            remote = self.remote
            if remote is not None and (addr[0] != remote[0] or addr[1] != remote[1]):
                # Not from where the signalling said: a caller behind NAT, or a stranger spraying
                # our ports before the caller's first packet. Give the signalled address a moment;
                # only if it stays silent does this source latch (a NAT'd caller's audio waits).
                if self._foreign_since is None:
                    self._foreign_since = now
                if now - self._foreign_since < self.foreign_grace:
                    stats.foreign_source += 1
                    return []
            self._latched = (addr[0], addr[1])
        elif addr[0] != latched[0] or addr[1] != latched[1]:
            # The address the signalling gave always takes the latch back: otherwise a stranger
            # spraying RTP at our ports before the caller's first packet keeps the call's audio
            # and keys for as long as it goes on sending (RTP bleed).
            remote = self.remote
            signalled = remote is not None and addr[0] == remote[0] and addr[1] == remote[1]
            if not signalled and now - self._last_latched_rx <= self.latch_timeout:
                stats.foreign_source += 1
                return []
            self._latched = (addr[0], addr[1])
            stats.relatched += 1
        self._last_latched_rx = now

        if not is_dtmf:
            if ssrc != self._remote_ssrc:
                if self._remote_ssrc is not None:
                    stats.ssrc_changes += 1
                    self.jitter.reset()
                self._remote_ssrc = ssrc
            self.jitter.push(seq, timestamp, payload, now)
            return []

        events: list[MediaEvent] = []
        if ssrc != self._dtmf_ssrc:
            events.extend(self._dtmf_rx.flush())
            self._dtmf_rx.reset()
            self._dtmf_ssrc = ssrc
        if ssrc == self._remote_ssrc:
            # RFC 4733 §2.1: events use the audio's sequence space; the slot holds no audio.
            self.jitter.push(seq, timestamp, None, now)
        self._last_dtmf_rx = now
        completed = self._dtmf_rx.feed(RtpPacket(pt, seq, timestamp, ssrc, payload, bool(second & 0x80)), now)
        events.extend(self._starts)  # a DtmfStart comes before its own completion
        self._starts.clear()
        events.extend(completed)
        if events and self.tap is not None:
            self.tap.on_events(self, events)
        return events

    @property
    def received_frame(self) -> Int16Array | None:
        """The frame played out by the last tick, decoded (a buffer reused on the next tick).

        Decoding is lazy: a call that nobody listens to, records or scans for tones never pays
        for it.
        """
        if self._rx_frame is None and self._rx_payload is not None:
            payload = self._rx_payload
            if len(payload) == FRAME:
                self._rx_frame = self.codec.decode_into(payload, self._rx_buffer)
            else:
                self._rx_frame = self.codec.decode(payload)  # other packetisation: rare, allocate
        return self._rx_frame

    def _receive_tick(self, now: float) -> None:
        # Runs for every call 50 times a second: attributes are read once, and the common case
        # (nobody listens, no key in progress) costs a jitter pop and a few tests.
        payload = self._rx_payload = self.jitter.pop_frame()
        self._rx_frame = None
        if self.tap is not None:
            self.tap.on_frame(self, payload)
        if payload is not None and self.on_audio is not None:
            frame = self.received_frame
            assert frame is not None
            self.on_audio(frame)
        if self._detector is not None or self._recording is not None:
            self._scan_and_record(self.received_frame)
        self._rx_timestamp = (self._rx_timestamp + FRAME) & 0xFFFF_FFFF
        if now - self._last_dtmf_rx > DTMF_END_TIMEOUT and self._dtmf_rx.in_progress:
            flushed = self._dtmf_rx.flush()
            self._pending.extend(flushed)
            if flushed and self.tap is not None:
                self.tap.on_events(self, list(flushed))

    def _scan_and_record(self, frame: Int16Array | None) -> None:
        detector = self._detector
        if detector is not None:
            digit = detector.process(frame)
            if digit is not None:
                start = (self._rx_timestamp - (detector.on_frames - 1) * FRAME) & 0xFFFF_FFFF
                self._pending.append(DtmfEvent(digit, start, detector.on_frames * FRAME, "inband"))
            elif detector._candidate_frames == 1 and detector._candidate is not None:
                # This frame began a confident candidate: report the start now for barge-in, as
                # RFC 4733's first packet does; the debounce still decides whether it is a key.
                self._pending.append(DtmfStart(detector._candidate, self._rx_timestamp))
        if self._recording is not None:
            self._recording.append(frame.copy() if frame is not None else np.zeros(FRAME, np.int16))

    # -- send side -----------------------------------------------------------------------------

    def send_dtmf(self, digits: str, duration_ms: int = 100, volume: int = 10) -> None:
        """Queue key presses: RFC 4733 events if negotiated, otherwise in-band tones."""
        if self.dtmf_pt is not None:
            for digit in digits:
                self._dtmf_queue.extend(self._dtmf_tx.packets_for(digit, duration_ms, volume))
                self._dtmf_queue.extend([None] * DTMF_GAP_FRAMES)
            return
        for digit in digits:
            tone = np.concatenate(
                [generate_dtmf(digit, duration_ms), np.zeros(FRAME * DTMF_GAP_FRAMES, np.int16)]
            )
            tone = np.concatenate([tone, np.zeros((-len(tone)) % FRAME, np.int16)])
            encoded = self.codec.encode(tone)
            self._inband_tx.extend(encoded[i : i + FRAME] for i in range(0, len(encoded), FRAME))

    def send_frame(self, frame: Int16Array) -> None:
        """Send these 160 live samples on the next tick (mixed with a playing prompt, if any)."""
        self.player.feed(frame)

    @property
    def sending_dtmf(self) -> bool:
        return bool(self._dtmf_queue or self._inband_tx)

    def tick(self, now: float) -> bytes | None:
        """One 20 ms step: play out one received frame; return the packet to send, if any."""
        if self._receiving:
            self._receive_tick(now)
        # The timestamp follows the sampling clock: one frame per 20 ms actually elapsed, so a late
        # or skipped tick shows up as a timestamp jump, not as drift (RFC 3550 §5.1).
        last = self._last_tick
        if last is not None:
            frames = round((now - last) / FRAME_SECONDS)
            self._timestamp = (self._timestamp + FRAME * (frames if frames > 1 else 1)) & 0xFFFF_FFFF
        self._last_tick = now

        # Nowhere to send (no latch, no SDP address), or on probation: both need an empty latch,
        # which a call in progress has long left behind, so that test comes first.
        if not self._sending or (self._latched is None and (self.remote is None or self._on_probation(now))):
            self._talkspurt = False
            return None
        if self._dtmf_queue:
            return self._next_dtmf_packet()
        if self._inband_tx:
            payload: bytes | None = self._inband_tx.popleft()
        else:
            payload = self.player.next_payload(self.codec)
        if payload is None:
            self._talkspurt = False
            return None
        marker = not self._talkspurt  # RFC 3551 §4.1: first packet after silence
        self._talkspurt = True
        return self._emit(marker, self.codec.payload_type, self._timestamp, payload)

    def _on_probation(self, now: float) -> bool:
        """A source other than the SDP's sends and the SDP's address has been silent: most likely
        a caller behind NAT, whom audio sent to the SDP's (private) address never reaches. The
        prompt waits for the latch (``foreign_grace`` at most) instead of losing its first words."""
        since = self._foreign_since
        return self._latched is None and since is not None and now - since < self.foreign_grace + 0.1

    def _next_dtmf_packet(self) -> bytes | None:
        item = self._dtmf_queue.popleft()
        self._talkspurt = False
        if item is None or self.dtmf_pt is None:
            return None  # inter-digit gap (or events were renegotiated away)
        if item.marker:
            self._event_timestamp = self._timestamp  # RFC 4733 §2.5.1.2: event starts now
            self.stats.dtmf_sent += 1
        return self._emit(item.marker, self.dtmf_pt, self._event_timestamp, item.payload)

    def _emit(self, marker: bool, pt: int, timestamp: int, payload: bytes) -> bytes:
        seq = self._seq
        self._seq = (seq + 1) & 0xFFFF
        data = build_header(marker, pt, seq, timestamp, self.ssrc) + payload
        self.stats.packets_sent += 1
        self.stats.bytes_sent += len(data)
        return data
