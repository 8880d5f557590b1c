"""The handoff's ports (``ivr.handoff.ports``) over the call engine.

``ivr.handoff`` decides who is rung and what is said; these adapters place the calls: a ``Leg``
over an engine ``Call``, a ``Dialer`` over the ``Engine``, and the flow's transfer and callback
handlers, which hand the flow's call to the handoff as a leg. Errors are translated both ways:
``CallGone`` and ``DialFailed`` become the handoff's ``LegGone`` and ``NotAnswered``, and a
``LegGone`` leaving the handoff is a ``CallGone`` again for the engine (the caller left).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from ivr.call.bridging import connect_calls
from ivr.call.call import Call, CallGone
from ivr.call.engine import DialFailed, Engine
from ivr.flow.port import CallbackOutcome, CallbackRequest, TransferOutcome, TransferRequest
from ivr.handoff.asking import Dialogue
from ivr.handoff.ports import AudioListener, Frames, Leg, LegGone, NotAnswered
from ivr.handoff.service import Handoff

# The flow's handlers with the question-asking side of its port (``Dialogue``), which is what the
# handoff needs of it: any port that can say and listen, the SIP one or a scripted one.
TransferStep = Callable[[Call, TransferRequest, Dialogue | None], Awaitable[TransferOutcome]]
CallbackStep = Callable[[Call, CallbackRequest, Dialogue | None], Awaitable[CallbackOutcome]]


class EngineLeg:
    """One engine call as the handoff drives it."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.call_id = call.call_id
        self.caller = call.info.caller
        self.started_at = call.started_at
        self.log = call.log

    @property
    def active(self) -> bool:
        return self.call.active

    @property
    def end_reason(self) -> str | None:
        return self.call.end_reason

    async def play(self, frames: Frames, *, interruptible: bool = True) -> None:
        try:
            await self.call.play(frames, interruptible=interruptible)
        except CallGone as gone:
            raise LegGone(str(gone)) from gone

    def start_playing(self, frames: Frames, *, interruptible: bool) -> int:
        return self.call.media.player.play(frames, interruptible=interruptible)

    def stop_playing(self, item: int) -> None:
        self.call.media.player.cancel(item)

    @property
    def playing(self) -> bool:
        return self.call.media.player.playing

    def flush_keys(self) -> list[str]:
        return [key.digit for key in self.call.flush_keys()]

    async def collect_digits(
        self, max_digits: int, *, first_timeout: float, inter_digit_timeout: float = 3, terminator: str | None
    ) -> str:
        try:
            return await self.call.collect_digits(
                max_digits, first_timeout=first_timeout, inter_digit_timeout=inter_digit_timeout,
                terminator=terminator,
            )  # fmt: skip
        except CallGone as gone:
            raise LegGone(str(gone)) from gone

    def hear(self, listener: AudioListener | None) -> None:
        self.call.media.on_audio = listener

    def hangup(self, reason: str) -> None:
        self.call.hangup(reason)


def _call_of(leg: Leg) -> Call:
    assert isinstance(leg, EngineLeg), "legs of this dialer come from this dialer"
    return leg.call


class EngineDialer:
    """Calls placed, transferred and bridged by one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def stopping(self) -> bool:
        return self.engine.draining

    async def dial(self, uri: str, *, headers: Sequence[tuple[str, str]] = (), timeout: float) -> Leg:
        try:
            call = await self.engine.dial(uri, headers=list(headers) or None, timeout=timeout)
        except DialFailed as failure:
            raise NotAnswered(failure.status, failure.reason) from failure
        return EngineLeg(call)

    async def refer(self, leg: Leg, uri: str) -> int:
        return await self.engine.refer(_call_of(leg), uri)

    async def bridge(
        self, caller: Leg, agent: Leg, *, whisper: Frames | None = None, hold: Frames | None = None
    ) -> str:
        outcome = await connect_calls(_call_of(caller), _call_of(agent), whisper=whisper, hold=hold)
        return outcome.first_to_hang_up


def flow_handlers(handoff: Handoff) -> tuple[TransferStep, CallbackStep]:
    """The flow's transfer and callback steps, served by ``handoff`` on the flow's call."""

    async def transfer(call: Call, request: TransferRequest, dialogue: Dialogue | None) -> TransferOutcome:
        try:
            return await handoff.transfer(EngineLeg(call), request, dialogue)
        except LegGone as gone:
            raise CallGone(str(gone)) from gone

    async def offer_callback(
        call: Call, request: CallbackRequest, dialogue: Dialogue | None
    ) -> CallbackOutcome:
        try:
            return await handoff.offer_callback(EngineLeg(call), request, dialogue)
        except LegGone as gone:
            raise CallGone(str(gone)) from gone

    return transfer, offer_callback


__all__ = ["EngineDialer", "EngineLeg", "flow_handlers"]
