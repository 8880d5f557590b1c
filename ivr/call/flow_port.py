"""The flow interpreter's ``CallPort`` over a real SIP ``Call``.

Flows speak text (rendered by TTS, cached) or recorded files, listen for keys (and speech, once a
recogniser is attached), and hand over to people. This adapter is the only place where flow
concepts meet the call engine; ``ivr chat`` and the flow tests run the same interpreter over
other ports.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path

from ivr.call.call import Call, CallGone, PlayOutcome
from ivr.flow.port import (
    CallbackOutcome,
    CallbackRequest,
    CallerHungUp,
    Heard,
    ListenSpec,
    SayResult,
    TransferOutcome,
    TransferRequest,
)
from ivr.speech.prompts import PromptLibrary

TransferHandler = Callable[[Call, TransferRequest], Awaitable[TransferOutcome]]
CallbackHandler = Callable[[Call, CallbackRequest], Awaitable[CallbackOutcome]]


async def _no_agents(call: Call, request: TransferRequest) -> TransferOutcome:
    return TransferOutcome("no_agent", detail="no agents configured")


async def _no_callbacks(call: Call, request: CallbackRequest) -> CallbackOutcome:
    return CallbackOutcome("failed", detail="no callback store configured")


class SipCallPort:
    def __init__(
        self,
        call: Call,
        prompts: PromptLibrary,
        *,
        language: str,
        flow_dir: Path,
        transfer: TransferHandler = _no_agents,
        callback: CallbackHandler = _no_callbacks,
        narrate: Callable[[str], None] | None = None,
    ) -> None:
        self.call = call
        self.prompts = prompts
        self.language = language
        self.flow_dir = flow_dir
        self._transfer = transfer
        self._callback = callback
        self._narrate = narrate
        self.spoken: list[str] = []

    @property
    def call_id(self) -> str:
        return self.call.call_id

    @property
    def caller(self) -> str:
        return self.call.info.caller

    @property
    def called(self) -> str:
        return self.call.info.called

    async def say(self, text: str, *, barge_in: bool, recording: str | None = None) -> SayResult:
        try:
            if recording is not None:
                samples = await self.prompts.file(self.flow_dir / recording)
            else:
                samples = await self.prompts.text(text, self.language)
            self.spoken.append(text)
            self.call.log.info("say", text=text, barge_in=barge_in)
            if self._narrate is not None:
                self._narrate(f'says "{text}"')
            outcome = await self.call.play(samples, interruptible=barge_in)
        except CallGone as gone:
            raise CallerHungUp(str(gone)) from gone
        if outcome is PlayOutcome.COMPLETED:
            return SayResult(True)
        # The key that cut the prompt stays queued: the next listen() reads it (type-ahead).
        return SayResult(False, Heard("keys"))

    async def listen(self, spec: ListenSpec) -> Heard:
        if not spec.keys:
            # Speech-only steps need a recogniser; without one the caller could only stay silent.
            return Heard("noinput")
        try:
            digits = await self.call.collect_digits(
                spec.max_digits,
                first_timeout=spec.timeout,
                inter_digit_timeout=spec.inter_digit_timeout,
                terminator=spec.terminator,
            )
        except CallGone as gone:
            raise CallerHungUp(str(gone)) from gone
        if not digits:
            return Heard("noinput")
        if self._narrate is not None:
            self._narrate(f"heard keys {digits}")
        return Heard("keys", digits=digits)

    async def transfer(self, request: TransferRequest) -> TransferOutcome:
        return await self._transfer(self.call, request)

    async def offer_callback(self, request: CallbackRequest) -> CallbackOutcome:
        return await self._callback(self.call, request)

    async def hangup(self, reason: str) -> None:
        self.call.hangup(reason)

    def now(self) -> dt.datetime:
        return dt.datetime.now().astimezone()
