"""A small fixed-depth jitter buffer, driven by the 20 ms media clock.

Theory of operation
-------------------
Packets are pushed as they arrive (in any order); the media clock pops exactly one frame per 20 ms
tick.  The buffer holds back playout until `depth_frames` packets are queued (the prefill), then
plays sequence numbers in order:

- the next expected packet is there: it is returned;
- it is missing but later packets are queued: it is declared lost, `None` is returned (the caller
  conceals or plays silence) and playout moves on, so one lost packet costs one frame, never a stall;
- nothing at all is queued: an underrun (the sender paused, e.g. silence suppression, an RFC 4733
  event, or hold); playout stops and prefills again when packets return, without counting loss.

Arriving packets are classified against a 64-packet replay window behind the highest sequence number
seen (the same bitmap idea as RFC 3711 §3.3.2): a packet already received is a duplicate; one whose
turn has already passed is late and dropped; one older than the highest but still playable counts as
reordered.

Restarts (RFC 3550 A.1).  A jump of more than `RESET_JUMP` sequence numbers in either direction
means either that the sender restarted (or changed SSRC without our noticing) or that one stray
packet (a very late duplicate, a packet from an old stream) came in.  As in A.1's `bad_seq` logic
the packet is held on probation: only when the next sequence number of the new series arrives too
does the buffer reset and play both; otherwise the stray packet is dropped (counted in
`probation`) and playout goes on undisturbed.

Packetisation (re-framing).  The media clock always takes 160 samples (20 ms) per tick, but callers
send 10, 30 or 40 ms packets too (RFC 3551 §4.5: G.711 may use any multiple of 10 ms; SIPp's
g711a.pcap uses 30 ms).  A 160-byte packet is returned as it is, the cheap common case.  Any other
size switches to re-framing: payloads are cut and joined, in sequence order, into 160-sample frames,
so the samples of packet n+1 follow those of packet n (their RTP timestamps are `len(payload)` apart,
RFC 3550 §5.1) and playout runs at the sender's real speed.  A lost packet is filled with codec
silence as long as the packets around it (their timestamp step), so the timeline stays intact;
a frame made only of fill is returned as None (lost), like a lost 20 ms packet.  Prefill is counted
in samples (`depth_frames` x 160).  G.711 is assumed: one payload byte per sample.

Sequence numbers used by packets that carry no audio (RFC 4733 events share the audio sequence
space of the same SSRC) are pushed with `payload=None`: they play out as a silent frame but are not
counted as loss (when re-framing they take no time at all: the event's timestamps describe the
event, not audio, RFC 4733 §2.5.1.2).

Time is only ever passed in; `now` feeds the RFC 3550 §6.4.1 interarrival jitter estimate.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from .rtp import seq_diff

__all__ = ["FRAME", "JitterBuffer", "JitterStats"]

FRAME = 160  # samples (= G.711 bytes) per 20 ms tick
RESET_JUMP = 100
PROBATION_SPAN = 3  # a packet this close after the held one confirms a restart (allows reordering)
_WINDOW = 64
_WINDOW_MASK = (1 << _WINDOW) - 1

_Packet = tuple[int, int, bytes | None, float]  # seq, timestamp, payload, arrival


@dataclass(slots=True)
class JitterStats:
    received: int = 0
    lost: int = 0
    late: int = 0
    duplicate: int = 0
    reordered: int = 0
    overflow: int = 0
    underruns: int = 0
    resets: int = 0
    probation: int = 0  # packets held after a huge sequence jump (RFC 3550 A.1), confirmed or not
    concealed: int = 0  # samples of silence filled in for lost packets while re-framing
    jitter: float = 0.0  # RFC 3550 §6.4.1 interarrival jitter, in timestamp units


class JitterBuffer:
    """Reorders RTP payloads by sequence number; `pop_frame()` once per 20 ms tick."""

    def __init__(
        self,
        depth_frames: int = 3,
        max_frames: int = 50,
        clock_rate: int = 8000,
        *,
        silence_byte: int = 0xFF,
    ) -> None:
        if depth_frames < 1:
            raise ValueError("depth_frames must be at least 1")
        if max_frames < depth_frames:
            raise ValueError("max_frames must be at least depth_frames")
        self.depth_frames = depth_frames
        self.max_frames = max_frames
        self.clock_rate = clock_rate
        self.stats = JitterStats()
        self._frames: dict[int, bytes | None] = {}
        self._next_seq: int | None = None  # the sequence number the next pop plays
        self._highest: int | None = None  # highest sequence number received
        self._window = 0  # bit i set: sequence number highest - i has been received
        self._playing = False
        self._popped = False  # has playout consumed a slot since the last reset?
        self._prev_arrival: float | None = None
        self._prev_timestamp = 0
        self._held: _Packet | None = None  # on probation after a huge jump
        # Re-framing state: payload pieces (and whether each is received audio or fill) not yet
        # played, `_offset` bytes of the first already played, `_buffered` bytes left in all.
        self._packet_samples = FRAME  # size of the latest audio payload
        self._prefill = depth_frames  # packets that make up depth_frames x 160 samples
        self._pieces: deque[bytes] = deque()
        self._is_audio: deque[bool] = deque()
        self._offset = 0
        self._buffered = 0
        self._silence = bytes([silence_byte])

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def packet_samples(self) -> int:
        """Samples per packet the sender currently uses (160 for 20 ms G.711)."""
        return self._packet_samples

    @property
    def silence_byte(self) -> int:
        return self._silence[0]

    @silence_byte.setter
    def silence_byte(self, value: int) -> None:
        """The codec's silence code, used to fill lost packets while re-framing."""
        self._silence = bytes([value])

    def reset(self) -> None:
        """Forget every packet and sequence state (new SSRC, re-INVITE); statistics are kept."""
        self._frames.clear()
        self._next_seq = None
        self._highest = None
        self._window = 0
        self._playing = False
        self._popped = False
        self._prev_arrival = None
        self._held = None
        self._pieces.clear()
        self._is_audio.clear()
        self._offset = self._buffered = 0
        self.stats.resets += 1

    def push(self, seq: int, timestamp: int, payload: bytes | None, now: float) -> None:
        """Accept one packet.  `payload=None` marks a sequence number that carries no audio."""
        stats = self.stats
        highest = self._highest
        if seq == ((highest + 1) & 0xFFFF if highest is not None else -1) and self._held is None:
            # The usual packet, the one after the highest: no classification needed.
            self._window = ((self._window << 1) | 1) & _WINDOW_MASK
            self._highest = seq
        elif highest is None:
            self._highest = seq
            self._window = 1
            self._next_seq = seq
        else:
            delta = seq_diff(seq, highest)
            if delta > RESET_JUMP or delta < -RESET_JUMP or (self._held is not None and self._confirms(seq)):
                self._probation(seq, timestamp, payload, now)
                return
            if delta > 0:
                self._window = ((self._window << delta) | 1) & _WINDOW_MASK
                self._highest = seq
            else:
                bit = 1 << -delta
                if -delta >= _WINDOW or self._window & bit:
                    stats.duplicate += 1
                    return
                self._window |= bit
                assert self._next_seq is not None
                if seq_diff(seq, self._next_seq) < 0:
                    if self._popped:
                        stats.late += 1
                        return
                    # Nothing played yet: an earlier packet overtaken in transit starts playout.
                    self._next_seq = seq
                stats.reordered += 1

        stats.received += 1
        self._update_jitter(timestamp, now)
        next_seq = self._next_seq
        assert next_seq is not None
        ahead = ((seq - next_seq + 0x8000) & 0xFFFF) - 0x8000  # seq_diff, inlined: every packet
        if ahead < 0:
            stats.late += 1
            return
        if ahead >= self.max_frames:
            # Too far ahead to hold: move playout forward, giving up the oldest slots.
            self._advance_to((seq - self.max_frames + 1) & 0xFFFF)
        self._frames[seq] = payload
        if payload is not None and len(payload) != self._packet_samples and payload:
            self._packet_samples = len(payload)
            # Prefill the same time whatever the packet size: depth_frames x 20 ms, rounded up.
            self._prefill = max(1, -(-self.depth_frames * FRAME // len(payload)))

    def _probation(self, seq: int, timestamp: int, payload: bytes | None, now: float) -> None:
        # RFC 3550 A.1: a huge jump is believed only when the next packet of the new series
        # confirms it ("two sequential packets"); a lone stray packet never resets playout.
        held = self._held
        if held is None or not self._confirms(seq):
            self.stats.probation += 1
            self._held = (seq, timestamp, payload, now)
            return
        self.reset()
        self.push(*held)
        self.push(seq, timestamp, payload, now)

    def _confirms(self, seq: int) -> bool:
        # The held packet's successor (or a near neighbour overtaken in transit), itself far from
        # the current series: once the current series has caught up with a stray held packet,
        # its own packets must not count as confirmation.
        assert self._held is not None and self._highest is not None
        return (
            0 < abs(seq_diff(seq, self._held[0])) <= PROBATION_SPAN
            and abs(seq_diff(seq, self._highest)) > RESET_JUMP - PROBATION_SPAN
        )

    def _advance_to(self, new_next: int) -> None:
        assert self._next_seq is not None
        while self._next_seq != new_next:
            if self._frames.pop(self._next_seq, 0) == 0:
                self.stats.lost += 1
            else:
                self.stats.overflow += 1
            self._next_seq = (self._next_seq + 1) & 0xFFFF

    def _update_jitter(self, timestamp: int, now: float) -> None:
        # RFC 3550 §6.4.1 / A.8: J += (|D| - J) / 16 with D the change in relative transit time.
        arrival = now * self.clock_rate
        previous = self._prev_arrival
        if previous is not None:
            # ts_diff, inlined: this runs for every packet received.
            sent = ((timestamp - self._prev_timestamp + 0x8000_0000) & 0xFFFF_FFFF) - 0x8000_0000
            stats = self.stats
            stats.jitter += (abs((arrival - previous) - sent) - stats.jitter) / 16.0
        self._prev_arrival = arrival
        self._prev_timestamp = timestamp

    def pop_frame(self) -> bytes | None:
        """The next 160-sample payload, or None (prefilling, lost, underrun or no-audio slot)."""
        frames = self._frames
        if not self._playing:
            if len(frames) < self._prefill:
                return None
            self._playing = True
        if self._buffered or self._packet_samples != FRAME:
            return self._pop_reframed()
        if not frames:
            self._playing = False
            self.stats.underruns += 1
            return None
        seq = self._next_seq
        assert seq is not None
        self._popped = True
        self._next_seq = (seq + 1) & 0xFFFF
        if seq in frames:
            payload = frames.pop(seq)
            if payload is None or len(payload) == FRAME:
                return payload
            # A packet of another size behind 20 ms ones (the ptime changed): re-frame from here.
            self._append(payload, True)
            return self._pop_reframed()
        self.stats.lost += 1
        return None

    def _append(self, piece: bytes, audio: bool) -> None:
        self._pieces.append(piece)
        self._is_audio.append(audio)
        self._buffered += len(piece)

    def _pop_reframed(self) -> bytes | None:
        frames = self._frames
        while self._buffered < FRAME:
            if not frames:
                self._playing = False
                self.stats.underruns += 1
                if not self._buffered:
                    return None
                # The talkspurt ended (or starved) mid-frame: pad its last samples and play them;
                # the next tick prefills again, as after any underrun.
                self._append(self._silence * (FRAME - self._buffered), False)
                break
            seq = self._next_seq
            assert seq is not None
            self._popped = True
            self._next_seq = (seq + 1) & 0xFFFF
            if seq in frames:
                payload = frames.pop(seq)
                if payload:  # None: an RFC 4733 event's slot, which takes no audio time
                    self._append(payload, True)
            else:
                # Lost: keep the timeline by filling in one packet's worth of silence.
                self.stats.lost += 1
                self.stats.concealed += self._packet_samples
                self._append(self._silence * self._packet_samples, False)
        return self._take_frame()

    def _take_frame(self) -> bytes | None:
        pieces, is_audio = self._pieces, self._is_audio
        self._buffered -= FRAME
        first = pieces[0]
        offset = self._offset
        end = offset + FRAME
        if end <= len(first):  # the whole frame lies inside one piece
            frame = first[offset:end]
            audio = is_audio[0]
            if end == len(first):
                pieces.popleft()
                is_audio.popleft()
                end = 0
            self._offset = end
            return frame if audio else None
        parts: list[bytes] = []
        audio = False
        need = FRAME
        while need:
            piece = pieces[0]
            take = min(len(piece) - offset, need)
            parts.append(piece[offset : offset + take])
            audio = audio or is_audio[0]
            need -= take
            offset += take
            if offset == len(piece):
                pieces.popleft()
                is_audio.popleft()
                offset = 0
        self._offset = offset
        return b"".join(parts) if audio else None
