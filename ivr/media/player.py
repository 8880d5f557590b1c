"""The frame player: a queue of audio items, one 20 ms frame per media clock tick, with barge-in.

Items are int16 arrays at 8 kHz.  The media clock takes one frame per tick, either as samples
(`next_frame`, for mixing and recording) or already encoded for the wire (`next_payload`).  Encoding
happens once per item and codec, in one table lookup over the whole item, so a tick only slices
bytes.  Read-only arrays (what `PromptCache` hands out) are encoded once per process and shared by
every call that plays them.

Barge-in: `stop_interruptible()` removes the current and queued interruptible items at once, so
the very next frame is already the next protected item (or nothing): the caller hears the prompt
stop within one 20 ms frame of the key press or speech onset.

Live input: `feed(frame)` / `feed_encoded(payload, codec)` hand the player one frame for the next
tick only, e.g. the other leg of a bridge.  A live frame is not queued: a newer one replaces an
unplayed one (counted in `live_replaced`), so live audio never builds up latency.  When an item is
playing at the same time, the two are mixed (summed and clipped), so a beep or announcement is
heard over the live voice; otherwise the live frame is sent alone.  A live payload already in the
outgoing codec goes out as it is; PCMU<->PCMA is one 256-entry byte translation (decode to linear,
encode again, as G.711 does between the laws), computed once per pair.
"""

from __future__ import annotations

import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .g711 import Codec

__all__ = ["FRAME", "PlayResult", "Player"]

FRAME = 160
Int16Array = npt.NDArray[np.int16]


@dataclass(frozen=True, slots=True)
class PlayResult:
    """How an item ended: `completed` False when it was stopped; `position` in samples played."""

    id: int
    completed: bool
    position: int


class _EncodedCache:
    """Per-process encodings of read-only arrays, dropped when the array is garbage-collected."""

    def __init__(self) -> None:
        self._entries: dict[int, dict[str, bytes]] = {}

    def get(self, samples: Int16Array, codec: Codec) -> bytes:
        if samples.flags.writeable:
            return codec.encode(samples)  # could change under us: never share
        key = id(samples)
        per_codec = self._entries.get(key)
        if per_codec is None:
            per_codec = {}
            self._entries[key] = per_codec
            weakref.finalize(samples, self._entries.pop, key, None)
        encoded = per_codec.get(codec.name)
        if encoded is None:
            encoded = codec.encode(samples)
            per_codec[codec.name] = encoded
        return encoded


_ENCODED = _EncodedCache()


@dataclass(slots=True)
class _Item:
    id: int
    samples: Int16Array
    interruptible: bool
    on_done: Callable[[PlayResult], None] | None
    position: int = 0
    codec: Codec | None = None
    encoded: bytes = field(default=b"")


def _transcode_table(source: Codec, target: Codec) -> bytes:
    table = _TRANSCODE.get((source.name, target.name))
    if table is None:
        table = target.encode(source.decode(bytes(range(256))))
        _TRANSCODE[(source.name, target.name)] = table
    return table


_TRANSCODE: dict[tuple[str, str], bytes] = {}


class Player:
    """Queue of items played frame by frame; `comfort_silence` makes an idle player send silence.

    Completion goes to the item's `on_done` callback, or, without one, to `finished` (drain it with
    `pop_finished()`).
    """

    def __init__(self, comfort_silence: bool = False) -> None:
        self.comfort_silence = comfort_silence
        self.finished: list[PlayResult] = []
        self._queue: deque[_Item] = deque()
        self._next_id = 1
        self._silence = np.zeros(FRAME, dtype=np.int16)
        self._silence.setflags(write=False)
        self._silence_payloads: dict[str, bytes] = {}
        self._live: Int16Array | bytes | None = None  # one frame for the next tick
        self._live_codec: Codec | None = None  # set when `_live` is an encoded payload
        self.live_replaced = 0  # live frames replaced before they were played

    @property
    def playing(self) -> bool:
        return bool(self._queue)

    @property
    def current_id(self) -> int | None:
        return self._queue[0].id if self._queue else None

    @property
    def position(self) -> int:
        """Samples of the current item already played (0 when idle)."""
        return self._queue[0].position if self._queue else 0

    @property
    def queued(self) -> int:
        return len(self._queue)

    def play(
        self,
        samples: Int16Array,
        *,
        interruptible: bool = True,
        on_done: Callable[[PlayResult], None] | None = None,
    ) -> int:
        """Queue `samples`; returns the item id that its `PlayResult` will carry."""
        array = np.asarray(samples)
        if array.dtype != np.int16 or array.ndim != 1:
            raise TypeError(f"play() takes a 1-D int16 array, got {array.dtype} shape {array.shape}")
        if len(array) % FRAME:
            array = np.concatenate([array, np.zeros(FRAME - len(array) % FRAME, dtype=np.int16)])
        item = _Item(self._next_id, array, interruptible, on_done)
        self._next_id += 1
        if len(array) == 0:
            self._report(item, completed=True)
        else:
            self._queue.append(item)
        return item.id

    @property
    def has_live(self) -> bool:
        return self._live is not None

    def feed(self, frame: Int16Array) -> None:
        """Play these 160 samples on the next tick (mixed with a playing item); not queued."""
        if frame.dtype != np.int16 or frame.shape != (FRAME,):
            raise TypeError(f"feed() takes 160 int16 samples, got {frame.dtype} shape {frame.shape}")
        if self._live is not None:
            self.live_replaced += 1
        self._live = frame
        self._live_codec = None

    def feed_encoded(self, payload: bytes, codec: Codec) -> None:
        """`feed()` for a frame already encoded with `codec` (passed on without decoding if it can)."""
        if len(payload) != FRAME:
            raise ValueError(f"feed_encoded() takes a {FRAME}-byte G.711 frame, got {len(payload)} bytes")
        if self._live is not None:
            self.live_replaced += 1
        self._live = payload
        self._live_codec = codec

    def cancel(self, item_id: int) -> bool:
        """Drop one queued or playing item, protected or not; False if it is not queued."""
        for item in self._queue:
            if item.id == item_id:
                self._queue.remove(item)
                self._report(item, completed=False)
                return True
        return False

    def stop_interruptible(self) -> list[int]:
        """Barge-in: drop the current and queued interruptible items; returns their ids."""
        stopped = [item for item in self._queue if item.interruptible]
        if stopped:
            self._queue = deque(item for item in self._queue if not item.interruptible)
            for item in stopped:
                self._report(item, completed=False)
        return [item.id for item in stopped]

    def stop(self) -> list[int]:
        """Drop everything, protected items and a pending live frame included (hang-up, transfer)."""
        stopped = list(self._queue)
        self._queue.clear()
        self._live = self._live_codec = None
        for item in stopped:
            self._report(item, completed=False)
        return [item.id for item in stopped]

    def pop_finished(self) -> list[PlayResult]:
        done, self.finished = self.finished, []
        return done

    def next_frame(self) -> Int16Array | None:
        """The next 160 samples (a read-only view), silence or None when idle."""
        if self._live is not None:
            return self._live_frame()
        if not self._queue:
            return self._silence if self.comfort_silence else None
        item = self._queue[0]
        pos = item.position
        frame = item.samples[pos : pos + FRAME]
        self._advance(item, pos + FRAME)
        return frame

    def next_payload(self, codec: Codec) -> bytes | None:
        """The next frame encoded with `codec`; silence or None when idle."""
        if self._live is not None:
            return self._live_payload(codec)
        if not self._queue:
            if not self.comfort_silence:
                return None
            payload = self._silence_payloads.get(codec.name)
            if payload is None:
                payload = self._silence_payloads[codec.name] = codec.silence(FRAME)
            return payload
        item = self._queue[0]
        if item.codec is not codec:
            item.encoded = _ENCODED.get(item.samples, codec)
            item.codec = codec
        pos = item.position
        payload = item.encoded[pos : pos + FRAME]
        self._advance(item, pos + FRAME)
        return payload

    def _take_live(self) -> Int16Array:
        live, codec = self._live, self._live_codec
        self._live = self._live_codec = None
        if isinstance(live, bytes):
            assert codec is not None
            return codec.decode(live)
        assert live is not None
        return live

    def _mixed(self, live: Int16Array) -> Int16Array:
        item = self._queue[0]
        pos = item.position
        prompt = item.samples[pos : pos + FRAME]
        self._advance(item, pos + FRAME)
        mixed: Int16Array = np.clip(live.astype(np.int32) + prompt, -32768, 32767).astype(np.int16)
        return mixed

    def _live_frame(self) -> Int16Array:
        live = self._take_live()
        return self._mixed(live) if self._queue else live

    def _live_payload(self, codec: Codec) -> bytes:
        if self._queue:
            return codec.encode(self._mixed(self._take_live()))
        live, source = self._live, self._live_codec
        self._live = self._live_codec = None
        if isinstance(live, bytes):
            assert source is not None
            return live if source is codec else live.translate(_transcode_table(source, codec))
        assert live is not None
        return codec.encode(live)

    def _advance(self, item: _Item, position: int) -> None:
        item.position = position
        if position >= len(item.samples):
            self._queue.popleft()
            self._report(item, completed=True)

    def _report(self, item: _Item, completed: bool) -> None:
        result = PlayResult(item.id, completed, min(item.position, len(item.samples)))
        if item.on_done is not None:
            item.on_done(result)
        else:
            self.finished.append(result)
