"""What ``ivr serve`` runs for each call: the operator's YAML flow, over the call engine.

The flow is chosen by the number dialled (a flow named like the Request-URI user, e.g.
``sip:support@ivr``), else the default flow. Each call keeps the flow object it started with, so
a reload (file watch or SIGHUP) never changes a call in progress.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ivr.app.call_port import CallbackHandler, SipCallPort, TransferHandler, _no_agents, _no_callbacks
from ivr.app.prompt_rendering import static_prompts
from ivr.call.call import Call
from ivr.flow.interpreter import FlowResult, Interpreter
from ivr.flow.model import Flow
from ivr.flow.reload import FlowRegistry
from ivr.logs import get_logger
from ivr.speech.listener import SpeechResult
from ivr.speech.models import ModelRegistry, VoskModel, resolve_or_warn
from ivr.speech.prompt_library import PromptLibrary
from ivr.store.base import CallRecord, StoreError
from ivr.wording import keypad_only

Narrator = Callable[[str], None]


@dataclasses.dataclass
class LiveCall:
    """A call in progress, as the supervisor page and the CRM screen-pop see it."""

    call: Call
    flow: str
    interpreter: Interpreter
    port: SipCallPort
    step: str = ""


NOT_IN_SERVICE = "Sorry, this number is not in service. Goodbye."

log = get_logger(component="flows")


class FlowApplication:
    def __init__(
        self,
        registry: FlowRegistry,
        default_flow: str,
        prompts: PromptLibrary,
        *,
        narrate: Narrator | None = None,
        transfer: TransferHandler = _no_agents,
        callback: CallbackHandler = _no_callbacks,
        speech: bool = True,
        models: ModelRegistry | None = None,
        records: Callable[[CallRecord], Awaitable[None]] | None = None,
        waits: Callable[[str], tuple[float, float | None] | None] | None = None,
    ) -> None:
        self.registry = registry
        self.default_flow = default_flow
        self.prompts = prompts
        self.narrate = narrate
        self.transfer = transfer
        self.callback = callback
        self.speech = speech
        self.records = records  # where each call's detail record goes (the store)
        self.waits = waits  # call id -> (announced wait, actual wait): honest estimates are checked
        self.live: dict[str, LiveCall] = {}
        # Per (flow, step): entered, callers who hung up there, no-input/no-match; for supervisors.
        self.step_stats: dict[tuple[str, str], dict[str, int]] = {}
        self.on_finished: Callable[[str, FlowResult], None] | None = None  # (flow, result), for metrics
        # (flow/step, recognition result): ASR latency and outcome per step, for metrics
        self.on_speech: Callable[[str, SpeechResult], None] | None = None
        self.models = models if models is not None else ModelRegistry()
        self._speech_models: dict[str, VoskModel | None] = {}
        # Vosk releases the GIL while decoding: one thread per core decodes for every call.
        self.decoders = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="asr")

    def choose(self, call: Call) -> Flow | None:
        return self.registry.get(call.info.called) or self.registry.get(self.default_flow)

    async def prepare(self) -> None:
        """Render every static prompt and load every speech model, so no caller waits for them."""
        for name in self.registry.names():
            flow = self.registry.get(name)
            if flow is None:
                continue
            speech = await self.speech_model(flow.settings.language) is not None
            for language, text in static_prompts(flow):
                await self.prompts.text(text if speech else keypad_only(text, language), language)

    async def speech_model(self, language: str) -> VoskModel | None:
        """The recogniser model for ``language``; None (keypad only, one warning) without one."""
        if not self.speech:
            return None
        if language not in self._speech_models:
            info = resolve_or_warn(language)
            loop = asyncio.get_running_loop()
            model = await loop.run_in_executor(None, self.models.get, info) if info is not None else None
            self._speech_models[language] = model
        return self._speech_models[language]

    def _speech_heard(self, flow: str, call_id: str, result: SpeechResult) -> None:
        live = self.live.get(call_id)
        if self.on_speech is not None:
            self.on_speech(f"{flow}/{live.step if live else ''}", result)

    def _count_steps(self, flow: str, result: FlowResult) -> None:
        records = result.path.as_list()
        for index, record in enumerate(records):
            stats = self.step_stats.setdefault(
                (flow, str(record["step"])), {"entered": 0, "hangups": 0, "misses": 0}
            )
            stats["entered"] += 1
            stats["misses"] += sum(
                1 for i in record.get("inputs", []) if i.get("kind") in ("noinput", "nomatch")
            )
            if index == len(records) - 1 and result.outcome == "hung_up_by_caller":
                stats["hangups"] += 1

    async def _record(self, call: Call, flow: Flow, result: FlowResult, port: SipCallPort) -> None:
        assert self.records is not None
        waited = self.waits(call.call_id) if self.waits is not None else None
        record = CallRecord(
            call_id=call.call_id,
            started_at=call.started_at,
            ended_at=time.time(),
            caller=call.info.caller,
            called=call.info.called,
            flow=flow.name,
            flow_version=flow.version,
            path=result.path.steps,
            inputs=result.path.as_list(),
            handoff=port.handoff,
            outcome=result.outcome,
            announced_wait=waited[0] if waited else None,
            actual_wait=waited[1] if waited else None,
        )
        try:
            await self.records(record)
        except StoreError as error:
            # The caller has been served; a lost record is logged loudly, never their problem.
            call.log.error("call record not stored", error=str(error))

    async def __call__(self, call: Call) -> None:
        flow = self.choose(call)
        if flow is None:
            call.log.error("no flow for this call", called=call.info.called, default=self.default_flow)
            await call.play(await self.prompts.text(NOT_IN_SERVICE), interruptible=False)
            return
        port = SipCallPort(
            call,
            self.prompts,
            language=flow.settings.language,
            flow_dir=Path(flow.path).parent,
            transfer=self.transfer,
            callback=self.callback,
            narrate=self.narrate,
            speech_model=await self.speech_model(flow.settings.language),
            on_speech=lambda result: self._speech_heard(flow.name, call.call_id, result),
            executor=self.decoders,
        )
        narrate, calls = self.narrate, self.live

        def on_step(scope: str, step: str) -> None:
            name = f"{scope + '/' if scope else ''}{step}"
            # Looked up, not closed over: LiveCall holds the interpreter, which holds this function.
            live = calls.get(call.call_id)
            if live is not None:
                live.step = name
            if narrate is not None:
                narrate(f"step {name}")

        interpreter = Interpreter(flow, port, on_step=on_step)
        self.live[call.call_id] = LiveCall(call, flow.name, interpreter, port)
        try:
            result = await interpreter.run()
        finally:
            self.live.pop(call.call_id, None)
        self._count_steps(flow.name, result)
        if self.on_finished is not None:
            self.on_finished(flow.name, result)
        if self.records is not None:
            await self._record(call, flow, result, port)
        call.log.info(
            "flow finished",
            flow=flow.name,
            outcome=result.outcome,
            reason=result.reason,
            steps=result.path.steps,
        )
        if self.narrate is not None:
            self.narrate(f"flow {flow.name} finished: {result.outcome} ({result.reason})")
