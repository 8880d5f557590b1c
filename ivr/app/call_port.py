"""The flow interpreter's ``CallPort`` over a real SIP ``Call``.

Flows speak text (rendered by TTS, cached) or recorded files, listen for keys (and speech, once a
recogniser is attached), and hand over to people. This adapter is where a flow's port meets a live
call; ``ivr chat`` and the conversation tests run the same interpreter over other ports. Transfers
and callbacks go to the handlers it is given (``ivr.handoff`` in a server), which drive the call
themselves.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from pathlib import Path

import numpy as np
import numpy.typing as npt

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
from ivr.media.vad import SpeechStart, Vad
from ivr.speech.listener import RecognitionSpec, SpeechListener, SpeechResult
from ivr.speech.models import VoskModel
from ivr.speech.prompt_library import PromptLibrary
from ivr.wording import keypad_only

Int16Array = npt.NDArray[np.int16]

# Handlers get the call and, when the caller can be heard, this port: their own questions ("press 1
# or say yes") are then answered by voice too. Without a recogniser they get None: keys only.
TransferHandler = Callable[[Call, TransferRequest, "SipCallPort | None"], Awaitable[TransferOutcome]]
CallbackHandler = Callable[[Call, CallbackRequest, "SipCallPort | None"], Awaitable[CallbackOutcome]]


async def _no_agents(call: Call, request: TransferRequest, port: SipCallPort | None) -> TransferOutcome:
    return TransferOutcome("no_agent", detail="no agents configured")


async def _no_callbacks(call: Call, request: CallbackRequest, port: SipCallPort | None) -> CallbackOutcome:
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
        on_speech: Callable[[SpeechResult], None] | None = None,
        speech_model: VoskModel | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.call = call
        self.prompts = prompts
        self.language = language
        self.flow_dir = flow_dir
        self._transfer = transfer
        self._callback = callback
        self._narrate = narrate
        self._on_speech = on_speech  # every recognition result, for metrics
        self.spoken: list[str] = []
        self.handoff: str | None = None  # for the call record: "agent:<name>", "callback:<number>"
        self.listening = False  # the caller's turn: what the API shows (and `ivr test --sip` waits for)
        self.listens = 0
        # Speech: a listener per call when the flow's language has a model (else keypad only).
        # Partial results (~0.2 ms per 100 ms decoded, next to ~2.6 ms of decoding) are kept for
        # the live view: a supervisor sees what the caller is saying while they say it.
        self._listener = (
            SpeechListener(speech_model, executor=executor, on_partial=self._on_partial)
            if speech_model is not None
            else None
        )
        self.partial = ""  # the latest partial transcript of the current (or last) spoken turn
        self._barge_vad: Vad | None = None  # watches for speech while a prompt may be cut
        self._barged_by_speech = False

    @property
    def call_id(self) -> str:
        return self.call.call_id

    @property
    def caller(self) -> str:
        return self.call.info.caller

    @property
    def called(self) -> str:
        return self.call.info.called

    @property
    def speech(self) -> bool:
        return self._listener is not None

    def _on_partial(self, text: str) -> None:
        self.partial = text

    # Received audio is decoded only while someone listens: during prompts the caller may cut
    # short, and while listening. The rest of the call costs no decoding and no VAD.
    def _on_audio(self, frame: Int16Array) -> None:
        if self._barge_vad is not None and isinstance(self._barge_vad.process(frame), SpeechStart):
            if self.call.barge_in_enabled and self.call.media.player.stop_interruptible():
                self.call.barge_ins += 1
                self._barged_by_speech = True
        if self._listener is not None:
            self._listener.on_audio(frame)

    def _hear(self, on: bool) -> None:
        self.call.media.on_audio = self._on_audio if on and self._listener is not None else None

    async def say(self, text: str, *, barge_in: bool, recording: str | None = None) -> SayResult:
        self._barged_by_speech = False
        if barge_in and self._listener is not None:
            self._barge_vad = Vad()
            self._hear(True)
        try:
            return await self._say(text, barge_in=barge_in, recording=recording)
        finally:
            self._barge_vad = None

    async def _say(self, text: str, *, barge_in: bool, recording: str | None) -> SayResult:
        if self._listener is None:
            text = keypad_only(text, self.language)  # nobody can hear "say 'agent'" here
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
        if self._barged_by_speech:
            # The words that cut the prompt are in the listener's pre-roll: listen() hears them.
            return SayResult(False, Heard("speech"))
        # The key that cut the prompt stays queued: the next listen() reads it (type-ahead).
        return SayResult(False, Heard("keys"))

    async def listen(self, spec: ListenSpec) -> Heard:
        self.listening = True
        self.listens += 1
        try:
            if spec.speech and self._listener is not None:
                return await self._listen_both(spec)
            if not spec.keys:
                # Speech-only steps need a recogniser; without one the caller could only stay silent.
                return Heard("noinput")
            return await self._keys(spec)
        finally:
            self.listening = False

    async def _listen_both(self, spec: ListenSpec) -> Heard:
        """Keys and speech at once: the first real input wins; silence on both is no-input."""
        assert self._listener is not None
        self._hear(True)
        self.partial = ""
        speech_spec = RecognitionSpec(
            grammar=spec.grammar or None,  # an empty grammar means open speech
            threshold=spec.confidence,
            no_input_timeout=spec.timeout,
            end_silence_ms=None if spec.end_silence is None else round(spec.end_silence * 1000),
            early_match_ms=None if spec.early_match is None else round(spec.early_match * 1000),
        )
        spoken = self._listener.start(speech_spec)
        keyed = asyncio.ensure_future(self._keys(spec)) if spec.keys else None
        try:
            waiting: set[asyncio.Future[object]] = {spoken}  # type: ignore[arg-type]
            if keyed is not None:
                waiting.add(keyed)  # type: ignore[arg-type]
            while waiting:
                done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                if keyed in done and keyed.result().kind == "keys":
                    return keyed.result()
                if spoken in done:
                    heard = self._heard(spoken.result())
                    if heard.kind != "noinput":
                        return heard
            return Heard("noinput")
        finally:
            if not spoken.done():
                self._listener.cancel()
            if keyed is not None and not keyed.done():
                keyed.cancel()
            self._hear(False)

    def _heard(self, result: SpeechResult) -> Heard:
        if self._on_speech is not None:
            self._on_speech(result)
        self.call.log.info(
            "heard speech", kind=result.kind, text=result.text, confidence=round(result.confidence, 3),
            latency_ms=result.latency_ms, speech_ms=result.speech_ms, early=result.early,
        )  # fmt: skip
        if result.kind == "speech":
            if self._narrate is not None:
                self._narrate(f"heard speech {result.text!r} ({result.confidence:.2f})")
            return Heard("speech", transcript=result.text, confidence=result.confidence)
        return Heard(result.kind)

    async def _keys(self, spec: ListenSpec) -> Heard:
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
        outcome = await self._transfer(self.call, request, self if self.speech else None)
        if outcome.connected:
            self.handoff = f"{request.mode}:{outcome.agent}"
        return outcome

    async def offer_callback(self, request: CallbackRequest) -> CallbackOutcome:
        outcome = await self._callback(self.call, request, self if self.speech else None)
        if outcome.booked:
            self.handoff = f"callback:{outcome.number}"
        return outcome

    async def hangup(self, reason: str) -> None:
        if self._listener is not None:
            self._listener.cancel()
        self.call.hangup(reason)

    def now(self) -> dt.datetime:
        return dt.datetime.now().astimezone()
