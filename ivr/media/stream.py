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
  address, which is also where we send; which sources are taken, and when another takes over (NAT
  rebinding, the SDP's address against a stranger, the grace of a NAT'd caller), is the
  `SourceLatch`'s policy (ivr.media.source_latch).  Packets it holds back are dropped and counted
  (`foreign_source`).  Wrong payload types, malformed datagrams and packets while inactive are
  counted, never raised.  A new audio SSRC resets the jitter buffer; RFC 4733 packets go through the
  `DtmfReceiver`, and the events they start or complete go to the listener at once; audio goes
  through the jitter buffer and comes out on `tick()`.  The jitter buffer re-frames 10/30/40 ms
  packets into 20 ms frames, so a tick always plays 160 samples.

In-band DTMF
  With `inband_dtmf` the played-out frames go through the Goertzel detector.  The first frame in
  which a digit is confidently heard yields a `DtmfStart` at once (barge-in 20 ms after the tone
  begins, as with RFC 4733's first packet); the `DtmfEvent` follows when the debounce confirms it.
  An in-band start that the debounce does not confirm is not followed by an event.

One way out: the listener
  Everything the stream has to tell goes to one `StreamListener`, set by the stream's owner (in a
  call, its RtpLeg, which hands it on to whoever subscribed): `on_frame` sees every played-out
  payload (or None) on `tick()`, and decodes it through `received_frame` only if it needs samples;
  `on_events` gets the RFC 4733 events `receive()` starts or completes, at once, and the events a
  tick produces (in-band digits, events whose end was lost) once that tick's packet is built.
  `tick()` returns the one thing that is not an event: the datagram to send.

Live input (bridging)
  `send_frame(frame)` hands the player one live frame for its next tick.  `ivr.media.bridge.Bridge`
  is a listener of both its streams that feeds each one's frames to the other.
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
from .source_latch import ACCEPTED, HELD_BACK, Address, SourceLatch

__all__ = [
    "DIRECTIONS", "Address", "AudioListener", "MediaEvent", "MediaStream", "StreamListener", "StreamStats",
]  # fmt: skip

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


class StreamListener(Protocol):
    """The one way out of a stream: what it plays out and the key presses it hears."""

    def on_frame(self, stream: MediaStream, payload: bytes | None) -> None:
        """The 160-byte payload (in `stream.codec`) played out by this tick, or None.

        `stream.received_frame` decodes it, for a listener that needs samples."""

    def on_events(self, stream: MediaStream, events: list[MediaEvent]) -> None:
        """Key presses: started or completed by a datagram, or by a tick (in-band, end lost)."""


class AudioListener:
    """A listener that wants samples: hands ``on_audio`` each played-out frame, decoded (a buffer
    the stream reuses on its next tick), and nothing for ticks that played nothing."""

    def __init__(self, on_audio: Callable[[Int16Array], None]) -> None:
        self.on_audio = on_audio

    def on_frame(self, stream: MediaStream, payload: bytes | None) -> None:
        if payload is not None:
            frame = stream.received_frame
            assert frame is not None
            self.on_audio(frame)

    def on_events(self, stream: MediaStream, events: list[MediaEvent]) -> None:
        pass


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
        listener: StreamListener | None = None,
    ) -> None:
        # RFC 3550 §5.1: random initial values make known-plaintext attacks and collisions harder.
        rng = rng if rng is not None else random.SystemRandom()
        self.ssrc = rng.getrandbits(32)
        self._seq = rng.getrandbits(16)
        self._timestamp = rng.getrandbits(32)
        self.codec = codec_by_name(codec) if isinstance(codec, str) else codec
        self.dtmf_pt = dtmf_pt
        self.latch = SourceLatch(remote, timeout=latch_timeout, foreign_grace=foreign_grace)
        self.direction = "sendrecv"
        self._set_direction(direction)
        self.listener = listener  # owned by whoever owns the stream: in a call, its RtpLeg
        self.player = Player(comfort_silence=comfort_silence)
        self.jitter = JitterBuffer(jitter_depth, jitter_max, silence_byte=self.codec.silence_byte)
        self.stats = StreamStats()
        self._rx_payload: bytes | None = None  # payload played out on the last tick
        self._rx_frame: Int16Array | None = None  # ... decoded, when someone asked for it

        self._remote_ssrc: int | None = None
        self._dtmf_ssrc: int | None = None
        self._pending: list[MediaEvent] = []  # produced by this tick, told when it ends
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
        self.latch.move(addr)
        if new_codec is not self.codec:
            self.codec = new_codec
            self.jitter.reset()  # queued payloads are in the old encoding
            self.jitter.silence_byte = new_codec.silence_byte
            self._rx_payload = self._rx_frame = None
        self.dtmf_pt = dtmf_pt
        self._set_direction(direction)
        self._talkspurt = False

    @property
    def remote(self) -> Address | None:
        """The address the SDP gave (`set_remote`)."""
        return self.latch.remote

    @property
    def latched(self) -> Address | None:
        return self.latch.latched

    @property
    def send_address(self) -> Address | None:
        """Where `tick()`'s packets go: the latched source (symmetric RTP), else the SDP address."""
        return self.latch.send_address

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

    # -- receive side --------------------------------------------------------------------------

    def receive(self, data: bytes, addr: Address, now: float) -> None:
        """Take one datagram; DTMF events it starts or completes go to the listener.  Never raises."""
        stats = self.stats
        stats.packets_received += 1
        stats.bytes_received += len(data)
        if not self._receiving:
            stats.not_receiving += 1
            return
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
                return
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
            return

        verdict = self.latch.accept(addr, now)
        if verdict != ACCEPTED:
            if verdict == HELD_BACK:
                stats.foreign_source += 1
                return
            stats.relatched += 1

        if not is_dtmf:
            if ssrc != self._remote_ssrc:
                if self._remote_ssrc is not None:
                    stats.ssrc_changes += 1
                    self.jitter.reset()
                self._remote_ssrc = ssrc
            self.jitter.push(seq, timestamp, payload, now)
            return

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
        if events and self.listener is not None:
            self.listener.on_events(self, events)

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
        # (no key in progress, a listener that decodes nothing) costs a jitter pop and a few tests.
        payload = self._rx_payload = self.jitter.pop_frame()
        self._rx_frame = None
        listener = self.listener
        if listener is not None:
            listener.on_frame(self, payload)
        if self._detector is not None or self._recording is not None:
            self._scan_and_record(self.received_frame)
        self._rx_timestamp = (self._rx_timestamp + FRAME) & 0xFFFF_FFFF
        if now - self._last_dtmf_rx > DTMF_END_TIMEOUT and self._dtmf_rx.in_progress:
            self._pending.extend(self._dtmf_rx.flush())

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

    def tick(self, now: float) -> bytes | None:
        """One 20 ms step: play out one received frame; return the packet to send, if any.

        The events this step produced go to the listener once its packet is built: a barge-in
        they cause stops the prompt from the next frame on."""
        if self._receiving:
            self._receive_tick(now)
        packet = self._send_tick(now)
        if self._pending:
            events, self._pending = self._pending, []
            if self.listener is not None:
                self.listener.on_events(self, events)
        return packet

    def _send_tick(self, now: float) -> bytes | None:
        # The timestamp follows the sampling clock: one frame per 20 ms actually elapsed, so a late
        # or skipped tick shows up as a timestamp jump, not as drift (RFC 3550 §5.1).
        last = self._last_tick
        if last is not None:
            frames = round((now - last) / FRAME_SECONDS)
            self._timestamp = (self._timestamp + FRAME * (frames if frames > 1 else 1)) & 0xFFFF_FFFF
        self._last_tick = now

        # Nowhere to send (no latch, no SDP address), or a NAT'd caller's source on probation.
        if not self._sending or not self.latch.can_send(now):
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
