"""The B2BUA media bridge: what one leg receives, the other sends (RFC 7092 §3.1.3 style media relay).

Theory of operation
-------------------
A bridge joins two `MediaStream`s, A (usually the caller) and B (usually the agent), as a
`StreamListener` of both (its owner subscribes it to both legs, e.g. `Call.subscribe`, and
unsubscribes it after `close()`).  No extra clock and no tick of its own: the shared media clock
keeps calling `tick()` on each leg, and

- when A's tick plays out a frame, the bridge hands the payload to B's player as its live frame
  (`Player.feed_encoded`), and B's next tick sends it; the same the other way round;
- RFC 4733 key presses received on one leg are re-sent as events on the other (`send_dtmf`, which
  falls back to in-band tones when that leg has no telephone-event payload type).  They are not
  decoded to audio: RFC 4733 §2.1 events survive transcoding, tones in G.711 survive only barely.
  In-band tones are audio and simply cross with it.

Tick order.  The live input is one slot, not a queue.  If A ticks before B in a clock pass, B sends
A's frame of the same pass (no delay); if B ticks first, it sends A's frame of the previous pass
(one frame of delay).  Either way the delay is at most one frame and never grows: a frame that was
not sent before the next one arrived is replaced (counted in `dropped`), which only happens when
the order of the two ticks changes between passes (a ticker added or removed).

Codecs.  The payload goes on unchanged when both legs use the same codec; PCMU<->PCMA is one byte
translation per frame (the player's transcode table), no numpy work per tick.

Whisper.  Before connecting, `whisper(summary, hold=music)` plays the summary to B only while A
hears `hold` (looped); neither side hears the other.  When the summary has played out the bridge
connects by itself (unless told not to) and the hold prompt stops at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .dtmf import DtmfEvent
from .player import PlayResult
from .stream import MediaEvent, MediaStream

__all__ = ["Bridge", "BridgeStats", "DirectionStats"]

Int16Array = npt.NDArray[np.int16]

MIN_DTMF_MS = 40  # ITU-T Q.24: shorter tones need not be recognised; relay at least this long
MAX_DTMF_MS = 8000  # the 16-bit RFC 4733 duration field holds 8.19 s at 8 kHz


_STARTING = -1  # whisper id while play() runs (item ids start at 1)


@dataclass(slots=True)
class DirectionStats:
    frames: int = 0  # audio frames handed to the other leg
    silent: int = 0  # connected ticks with nothing to hand on (prefill, loss, silence, events)
    transcoded: int = 0  # frames that changed codec on the way
    dropped: int = 0  # frames replaced before the other leg sent them (tick order changed)
    dtmf: int = 0  # RFC 4733 key presses re-sent on the other leg


@dataclass(slots=True)
class BridgeStats:
    a_to_b: DirectionStats = field(default_factory=DirectionStats)
    b_to_a: DirectionStats = field(default_factory=DirectionStats)


class Bridge:
    """Relay audio and key presses between two streams ticked by the same media clock."""

    def __init__(
        self, a: MediaStream, b: MediaStream, *, connect: bool = True, relay_dtmf: bool = True
    ) -> None:
        if a is b:
            raise ValueError("a stream cannot be bridged to itself")
        self.a = a
        self.b = b
        self.relay_dtmf = relay_dtmf
        self.stats = BridgeStats()
        self._connected = connect
        self._closed = False
        self._whisper_id: int | None = None
        self._hold: Int16Array | None = None
        self._hold_id: int | None = None

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def whispering(self) -> bool:
        return self._whisper_id is not None

    def connect(self) -> None:
        """Start relaying now; a whisper still playing and the hold prompt stop at once."""
        if self._closed:
            raise RuntimeError("bridge is closed")
        if self._whisper_id is not None:
            self.b.player.cancel(self._whisper_id)  # its on_done hears it was stopped
        self._stop_hold()
        self._connected = True

    def disconnect(self) -> None:
        """Stop relaying (both legs keep their players); `connect()` resumes."""
        self._connected = False

    def close(self) -> None:
        """Stop relaying for good (transfer, hang-up of either leg); what it still hears is ignored."""
        self.disconnect()
        if self._whisper_id is not None:
            self.b.player.cancel(self._whisper_id)
        self._stop_hold()
        self._closed = True

    def whisper(
        self,
        summary: Int16Array,
        *,
        hold: Int16Array | None = None,
        connect_after: bool = True,
        on_done: Callable[[PlayResult], None] | None = None,
    ) -> int:
        """Play `summary` to B only while A hears `hold` (looped); returns the summary's item id.

        The bridge is disconnected meanwhile.  When the summary completes, the hold prompt stops
        and, with `connect_after`, the bridge connects on that very tick; `on_done` then gets the
        summary's `PlayResult`.  If the summary is stopped instead, the bridge stays disconnected.
        """
        if self._closed:
            raise RuntimeError("bridge is closed")
        self.disconnect()
        self._stop_hold()
        if self._whisper_id is not None:
            self.b.player.cancel(self._whisper_id)

        def finished(result: PlayResult) -> None:
            if self._whisper_id not in (result.id, _STARTING):
                return  # superseded by connect() or another whisper
            self._whisper_id = None
            self._stop_hold()
            if result.completed and connect_after:
                self._connected = True
            if on_done is not None:
                on_done(result)

        if hold is not None:
            self._hold = hold
            self._play_hold()
        self._whisper_id = _STARTING  # play() reports an empty summary before it returns
        item = self.b.player.play(summary, interruptible=False, on_done=finished)
        if self._whisper_id == _STARTING:
            self._whisper_id = item
        return item

    def _play_hold(self) -> None:
        assert self._hold is not None
        self._hold_id = self.a.player.play(self._hold, interruptible=False, on_done=self._hold_done)

    def _hold_done(self, result: PlayResult) -> None:
        if result.id == self._hold_id and result.completed and self._hold is not None:
            self._play_hold()  # loop the hold prompt until connected

    def _stop_hold(self) -> None:
        self._hold = None
        if self._hold_id is not None:
            hold, self._hold_id = self._hold_id, None
            self.a.player.cancel(hold)

    # -- StreamListener ------------------------------------------------------------------------

    def on_frame(self, stream: MediaStream, payload: bytes | None) -> None:
        if not self._connected:
            return
        if stream is self.a:
            target, stats = self.b, self.stats.a_to_b
        else:
            target, stats = self.a, self.stats.b_to_a
        if payload is None:
            stats.silent += 1
            return
        player = target.player
        if player.has_live:
            stats.dropped += 1
        player.feed_encoded(payload, stream.codec)
        stats.frames += 1
        if target.codec is not stream.codec:
            stats.transcoded += 1

    def on_events(self, stream: MediaStream, events: list[MediaEvent]) -> None:
        if not self._connected or not self.relay_dtmf:
            return
        if stream is self.a:
            target, stats = self.b, self.stats.a_to_b
        else:
            target, stats = self.a, self.stats.b_to_a
        for event in events:
            if isinstance(event, DtmfEvent) and event.source == "rfc4733":
                # duration is in 8 kHz timestamp units: /8 gives milliseconds.
                ms = min(MAX_DTMF_MS, max(MIN_DTMF_MS, round(event.duration / 8)))
                target.send_dtmf(event.digit, ms)
                stats.dtmf += 1
