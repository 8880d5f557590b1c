"""The frame player: a queue of audio items, one 20 ms frame per media clock tick, with barge-in.

Items are int16 arrays at 8 kHz.  The media clock takes one frame per tick, either as samples
(`next_frame`, for mixing and recording) or already encoded for the wire (`next_payload`).  Encoding
happens once per item and codec, in one table lookup over the whole item, so a tick only slices
bytes.  Read-only arrays (what `PromptCache` hands out) are encoded once per process and shared by
every call that plays them.

Barge-in: `stop_interruptible()` removes the current and queued interruptible items at once, so
the very next frame is already the next protected item (or nothing): the caller hears the prompt
stop within one 20 ms frame of the key press or speech onset.
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

    def stop_interruptible(self) -> list[int]:
        """Barge-in: drop the current and queued interruptible items; returns their ids."""
        stopped = [item for item in self._queue if item.interruptible]
        if stopped:
            self._queue = deque(item for item in self._queue if not item.interruptible)
            for item in stopped:
                self._report(item, completed=False)
        return [item.id for item in stopped]

    def stop(self) -> list[int]:
        """Drop everything, protected items included (hang-up, transfer)."""
        stopped = list(self._queue)
        self._queue.clear()
        for item in stopped:
            self._report(item, completed=False)
        return [item.id for item in stopped]

    def pop_finished(self) -> list[PlayResult]:
        done, self.finished = self.finished, []
        return done

    def next_frame(self) -> Int16Array | None:
        """The next 160 samples (a read-only view), silence or None when idle."""
        if not self._queue:
            return self._silence if self.comfort_silence else None
        item = self._queue[0]
        pos = item.position
        frame = item.samples[pos : pos + FRAME]
        self._advance(item, pos + FRAME)
        return frame

    def next_payload(self, codec: Codec) -> bytes | None:
        """The next frame encoded with `codec`; silence or None when idle."""
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
