"""One Call object per call: the interface that flows, the demo and the test caller drive.

A call knows its media stream and how to end its SIP leg, nothing about flows. Awaiting
``play`` or ``collect_digits`` on a call whose far end hangs up raises ``CallGone``, so
application code never keeps talking into a dead line.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from ivr.logs import get_logger
from ivr.media.dtmf import DtmfEvent, DtmfStart
from ivr.media.player import PlayResult
from ivr.media.stream import MediaStream, StreamListener

Int16Array = npt.NDArray[np.int16]
T = TypeVar("T")


class CallGone(Exception):
    """The call ended (far end hung up, cancelled, or the server is shutting down)."""


class PlayOutcome(enum.Enum):
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"  # barge-in: a key (or speech) stopped the prompt


@dataclass(frozen=True)
class KeyPress:
    digit: str
    at: float  # monotonic time the end of the key press was seen
    source: str


@dataclass
class CallInfo:
    call_id: str
    direction: str  # "inbound" or "outbound"
    caller: str
    called: str
    remote_address: tuple[str, int]
    headers: dict[str, str] = field(default_factory=dict)


class Call:
    def __init__(self, info: CallInfo, media: MediaStream, end_leg: Callable[[], None]) -> None:
        self.info = info
        self.media = media
        self._end_leg = end_leg
        self.log = get_logger(call_id=info.call_id)
        self.started_at = time.time()
        self.ended = asyncio.Event()
        self.end_reason: str | None = None
        self.ended_by: str | None = None  # "local" (we hung up) or "remote"
        self.keys: asyncio.Queue[KeyPress] = asyncio.Queue()
        self.key_log: list[KeyPress] = []
        self.barge_in_enabled = True
        self.barge_ins = 0
        # Waiters for prompt completion, keyed by the player's item id.
        self._playing: dict[int, asyncio.Future[PlayResult]] = {}
        self._loop = asyncio.get_running_loop()
        # Who hears the call's media besides the call itself (a bridge, a speech listener, a
        # machine detector); the call's RtpLeg, the stream's one listener, hands them each frame
        # and key press. A tuple, replaced on each change, so that one may leave while being told.
        self.media_listeners: tuple[StreamListener, ...] = ()

    @property
    def call_id(self) -> str:
        return self.info.call_id

    @property
    def active(self) -> bool:
        return not self.ended.is_set()

    # -- what applications call ----------------------------------------------------------------

    async def play(self, samples: Int16Array, *, interruptible: bool = True) -> PlayOutcome:
        """Play audio to the caller; returns when it finished or was cut by barge-in."""
        self._check_active()
        if len(samples) == 0:
            return PlayOutcome.COMPLETED
        future: asyncio.Future[PlayResult] = self._loop.create_future()
        item = self.media.player.play(samples, interruptible=interruptible, on_done=self._on_played)
        self._playing[item] = future
        try:
            result = await future  # _finish() fails it with CallGone when the call ends
        finally:
            del future  # CallGone's traceback holds this frame: no frame -> future -> error cycle
        return PlayOutcome.COMPLETED if result.completed else PlayOutcome.INTERRUPTED

    async def collect_digits(
        self,
        max_digits: int,
        *,
        first_timeout: float = 5.0,
        inter_digit_timeout: float = 3.0,
        terminator: str | None = "#",
    ) -> str:
        """Read up to ``max_digits`` keys (keys pressed during a prompt count: type-ahead)."""
        digits = ""
        timeout = first_timeout
        while len(digits) < max_digits:
            try:
                key = await self._until_ended(asyncio.wait_for(self.keys.get(), timeout))
            except TimeoutError:
                break
            if terminator is not None and key.digit == terminator:
                break
            digits += key.digit
            timeout = inter_digit_timeout
        return digits

    def send_dtmf(self, digits: str, duration_ms: int = 100) -> None:
        self._check_active()
        self.media.send_dtmf(digits, duration_ms)

    def flush_keys(self) -> list[KeyPress]:
        """Take every key pressed so far out of the queue (type-ahead the caller did not mean)."""
        keys = []
        while not self.keys.empty():
            keys.append(self.keys.get_nowait())
        return keys

    def hangup(self, reason: str = "local hangup") -> None:
        if self.ended.is_set():
            return
        self._finish(reason, "local")
        self._end_leg()

    async def wait_ended(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self.ended.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def subscribe(self, listener: StreamListener) -> None:
        """Hear the call's media from now on (each played-out frame and key press) until
        `unsubscribe`; subscribing twice changes nothing."""
        if listener not in self.media_listeners:
            self.media_listeners = (*self.media_listeners, listener)

    def unsubscribe(self, listener: StreamListener) -> None:
        """Stop hearing the call's media (nothing happens if not subscribed)."""
        self.media_listeners = tuple(other for other in self.media_listeners if other is not listener)

    # -- what the engine calls -----------------------------------------------------------------

    def on_media_events(self, events: list[DtmfEvent | DtmfStart]) -> None:
        for event in events:
            if isinstance(event, DtmfStart):
                # Barge-in on the key's first packet: the next 20 ms frame is already silent.
                if self.barge_in_enabled and self.media.player.stop_interruptible():
                    self.barge_ins += 1
                continue
            if self.barge_in_enabled and self.media.player.stop_interruptible():
                self.barge_ins += 1  # in-band keys only become known at their end
            key = KeyPress(event.digit, self._loop.time(), event.source)
            self.key_log.append(key)
            self.keys.put_nowait(key)
            self.log.info("key", digit=event.digit, source=event.source)

    def on_remote_ended(self, reason: str) -> None:
        self._finish(reason, "remote")

    def _finish(self, reason: str, by: str) -> None:
        if self.ended.is_set():
            return
        self.end_reason = reason
        self.ended_by = by
        self.ended.set()
        # Fail the waiters before stopping the player, whose stop reports "interrupted".
        for future in self._playing.values():
            if not future.done():
                future.set_exception(CallGone(reason))
        self._playing.clear()
        self.media.player.stop()
        stats = self.media.stats
        self.log.info(
            "call ended",
            reason=reason,
            ended_by=by,
            duration=round(time.time() - self.started_at, 3),
            keys="".join(key.digit for key in self.key_log),
            rtp_sent=stats.packets_sent,
            rtp_received=stats.packets_received,
            rtp_foreign=stats.foreign_source,
            rtp_malformed=stats.malformed,
        )

    def _on_played(self, result: PlayResult) -> None:
        future = self._playing.pop(result.id, None)
        if future is not None and not future.done():
            future.set_result(result)

    def _check_active(self) -> None:
        if self.ended.is_set():
            raise CallGone(self.end_reason or "ended")

    async def _until_ended(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` unless the call ends first; then raise ``CallGone``."""
        self._check_active()
        work = asyncio.ensure_future(awaitable)
        ended = asyncio.ensure_future(self.ended.wait())
        try:
            await asyncio.wait({work, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
        try:
            if work.done():
                return work.result()
            work.cancel()
            raise CallGone(self.end_reason or "ended")
        finally:
            # An exception raised here keeps this frame in its traceback; without the task in the
            # frame there is no frame -> task -> exception -> frame cycle left for the GC.
            del work, ended
