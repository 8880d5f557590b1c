"""The fast path to a human and the callback promise, over real calls.

Three jobs, all on the call engine:

- ``transfer``: ring a free agent with the right language and skill (the context in SIP headers),
  whisper what the IVR learned, bridge. Agents who do not answer are skipped. When nobody is free
  the caller hears the honest estimate and chooses: wait (position and estimate repeated) or be
  called back without losing their place.
- ``offer_callback``: confirm the number (caller ID or keyed in, approved against the flow's
  patterns), choose the first free slot or a window, and book it durably. The caller hears
  "booked" only after the store committed.
- ``run_dialer``: keeps the promises. Agent first: the agent is called and hears who is next, then
  the customer is dialled once per committed attempt and bridged; machines get a short message.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from ivr.call.bridging import connect_calls
from ivr.call.call import Call, CallGone
from ivr.call.engine import DialFailed, Engine
from ivr.flow.port import CallbackOutcome, CallbackRequest, TransferOutcome, TransferRequest
from ivr.handoff.agents import Agent, AgentEvent, AgentPool
from ivr.handoff.amd import AmdDetector
from ivr.handoff.asking import Answer, Dialogue, ask_by_voice, chosen_window, speakable_windows
from ivr.handoff.board import AgentBoard
from ivr.handoff.estimator import HandleTimes, WaitEstimate, estimate_wait
from ivr.handoff.numbers import ApprovedNumber, NumberRejected, approve, policy_from_flow
from ivr.handoff.promise import Promise, hours_from_windows, offer_slots, promise_asap, promise_window
from ivr.handoff.queue import RemoteWaiter, VirtualQueue
from ivr.handoff.scheduler import CustomerResult, RetryPolicy, Scheduler, Serve
from ivr.handoff.texts import say
from ivr.logs import get_logger
from ivr.media.prompts import silence, tone
from ivr.speech.prompts import PromptLibrary
from ivr.store.base import (
    ACTIVE_STATES,
    Booking,
    CallbackRecord,
    CallRecord,
    StaleState,
    StoreError,
    spacing_of,
)
from ivr.store.sqlite import SqliteStore
from ivr.store.thread import StoreThread

Int16Array = npt.NDArray[np.int16]
T = TypeVar("T")
log = get_logger(component="handoff")


@dataclass
class HandoffConfig:
    ring_timeout: float = 20.0  # an agent's phone rings this long before the next agent is tried
    max_agent_tries: int = 3
    customer_uri: str = "sip:{number}@127.0.0.1:5060"  # where callbacks are dialled (trunk/PBX)
    customer_timeout: float = 30.0
    lease: float = 120.0  # a claimed callback belongs to this process this long (renewed)
    dial_interval: float = 1.0
    announce_every: float = 30.0  # waiting callers hear position and estimate this often
    wait_limit: float = 600.0  # beyond this expected wait, the callback is offered again
    retry_spacing: float = 600.0  # between attempts on a customer who did not answer
    timezone: str = "Europe/Berlin"
    default_country: str = "49"
    owner: str = field(default_factory=lambda: f"ivr-{os.getpid()}-{int(time.time())}")
    run: str = ""  # this start of the server, shared by its worker processes ("" = owner)


def hold_music() -> Int16Array:
    """A soft two-tone pattern: the caller hears that the line is alive."""
    return np.concatenate([tone(440, 300, 0.08), tone(554, 300, 0.08), silence(1400)])


def context_headers(call_id: str, caller: str, context: Mapping[str, Any]) -> list[tuple[str, str]]:
    """What the IVR learned, for softphones and CRM screen-pops (and the whisper)."""
    payload = {"call_id": call_id, "caller": caller, **{k: v for k, v in context.items() if _plain(v)}}
    body = json.dumps(payload, ensure_ascii=True, separators=(",", ":"), default=str)[:900]
    # RFC 7433 User-to-User: a short hex reference the receiving system can look up.
    return [("X-IVR-Context", body), ("User-to-User", call_id.encode()[:64].hex() + ";encoding=hex")]


def _plain(value: object) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


# What an agent wants to hear first, in this order; the whisper stays a few seconds long.
WHISPER_FACTS = ("intent", "transcript", "postcode", "order_number", "digits", "last")


def facts_text(context: Mapping[str, Any], language: str, limit: int = 3) -> str:
    facts = [
        f"{key.replace('_', ' ')} {context[key]}"
        for key in WHISPER_FACTS
        if _plain(context.get(key)) and str(context.get(key, "")).strip() and len(str(context[key])) <= 60
    ]
    return ". ".join(facts[:limit]) or say("no_details", language)


def summary_text(caller: str, context: Mapping[str, Any], language: str) -> str:
    spoken = " ".join(caller.lstrip("+")) if caller.lstrip("+").isdigit() else caller
    return say("whisper", language, caller=spoken, facts=facts_text(context, language))


class Handoff:
    def __init__(
        self,
        pool: AgentPool,
        store: SqliteStore,
        prompts: PromptLibrary,
        config: HandoffConfig | None = None,
        *,
        executor: Executor | None = None,
    ) -> None:
        self.pool = pool
        self.store = store
        self.prompts = prompts
        self.config = config or HandoffConfig()
        self.queue = VirtualQueue()
        self.handle_times = HandleTimes()
        self.engine: Engine | None = None  # set once the engine exists (it needs our handlers)
        # One thread owns all store calls: SQLite connections belong to a thread, and commits
        # (an fsync each) then never block the event loop nor race each other.
        self.store_thread = StoreThread(executor)
        # Several worker processes agree on the agents through the store (see board.py).
        run = self.config.run or self.config.owner
        self.board = AgentBoard(pool, store, self.store_thread, self.config.owner, run)
        self._entered: dict[str, float] = {}  # call id -> when the caller joined the line
        self._busy: set[int] = set()  # callbacks being served by this process
        self.served_callbacks = 0
        self.on_connected: Callable[[float], None] | None = None  # seconds to a human, for metrics
        self.on_waited: Callable[[float, float], None] | None = None  # (announced, actual wait)
        # With several workers: the callers on hold at the others, so that one line runs across
        # all of them (order of service, positions and estimates); see ivr.ops.live_view.
        self.remote_waiting: Callable[[], Awaitable[list[RemoteWaiter]]] | None = None
        # call id -> (announced wait, actual wait or None); taken by the call record at the end.
        self.waits: dict[str, tuple[float, float | None]] = {}

    # -- helpers ------------------------------------------------------------------------------

    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Store calls fsync (a few ms): off the event loop, on the store's thread."""
        return await self.store_thread.run(fn, *args, **kwargs)

    async def _say(
        self, call: Call, key: str, language: str, interruptible: bool = True, **values: Any
    ) -> None:
        text = say(key, language, **values)
        call.log.info("say", text=text)
        await call.play(await self.prompts.text(text, language), interruptible=interruptible)

    async def _ask_key(self, call: Call, key: str, language: str, timeout: float = 6.0, **values: Any) -> str:
        call.flush_keys()
        await self._say(call, key, language, **values)
        return await call.collect_digits(1, first_timeout=timeout, terminator=None)

    async def _ask(
        self,
        call: Call,
        key: str,
        language: str,
        dialogue: Dialogue | None,
        *,
        extra: Sequence[str] = (),
        **values: Any,
    ) -> Answer:
        """One question: by key, and by voice too when ``dialogue`` can hear the caller."""
        if dialogue is None:
            digit = await self._ask_key(call, key, language, **values)
            return Answer(digit, heard=bool(digit))
        call.flush_keys()
        text = say(key, language, speech=True, **values)
        return await ask_by_voice(dialogue, text, key, language, extra=extra)

    def _estimate(self, language: str, skill: str | None, ahead: int) -> WaitEstimate:
        return estimate_wait(
            ahead,
            self.pool.working(language, skill),
            self.pool.available(language, skill),
            self.handle_times.mean(skill),
        )

    def _record_hangup(self, agent: Agent, skill: str | None) -> None:
        change = self.pool.apply(agent.id, AgentEvent.HANGUP, time.time())
        if change.handle_time is not None:
            self.handle_times.observe(skill, change.handle_time)

    async def _claim(self, agent: Agent) -> bool:
        """Reserve ``agent`` on the agent board before ringing; False if another worker has them."""
        if await self.board.claim(agent.id, time.time()):
            return True
        log.info("agent taken by another worker", agent=agent.id)
        return False

    async def _ring(self, agent: Agent, headers: list[tuple[str, str]]) -> Call | None:
        """Ring a claimed agent; None when they did not answer (and they are skipped for this caller)."""
        assert self.engine is not None
        self.pool.apply(agent.id, AgentEvent.RING, time.time())
        try:
            answered = await self.engine.dial(
                agent.sip_uri, headers=headers, timeout=self.config.ring_timeout
            )
        except DialFailed as failure:
            event = AgentEvent.NO_ANSWER if failure.status in (408, 480, 487) else AgentEvent.REJECTED
            self.pool.apply(agent.id, event, time.time())
            log.info("agent did not answer", agent=agent.id, status=failure.status, reason=failure.reason)
            return None
        self.pool.apply(agent.id, AgentEvent.ANSWERED, time.time())
        return answered

    async def record_call(self, record: CallRecord) -> None:
        await self._db(self.store.record_call, record)

    # -- transfer -----------------------------------------------------------------------------

    async def transfer(
        self, call: Call, request: TransferRequest, dialogue: Dialogue | None = None
    ) -> TransferOutcome:
        """``dialogue``: the caller's flow port when they can be heard (answers by voice), else None."""
        if request.mode == "refer":
            return await self._refer(call, request)
        language, skill = request.language, request.skill
        tried: set[str] = set()
        outcome = await self._try_agents(call, request, tried)
        if outcome is not None:
            return outcome
        if not any(agent.serves(language, skill) and agent.state.value != "offline" for agent in self.pool):
            await self._say(call, "nobody_working", language, interruptible=False)
            return TransferOutcome("no_agent", detail="no agent logged in")
        return await self._wait_or_callback(call, request, tried, dialogue)

    async def _try_agents(
        self, call: Call, request: TransferRequest, tried: set[str]
    ) -> TransferOutcome | None:
        headers = context_headers(call.call_id, call.info.caller, request.context)
        lost = 0  # claims another worker won: not a miss, the agent is just busy elsewhere
        while len(tried) < self.config.max_agent_tries and lost <= len(self.pool):
            agent = self.pool.pick(request.language, request.skill, exclude=tried)
            if agent is None:
                return None
            if not await self._claim(agent):
                lost += 1
                continue
            tried.add(agent.id)
            hold = hold_music()
            music = call.media.player.play(np.tile(hold, 10), interruptible=False)
            agent_call = await self._ring(agent, headers)
            if agent_call is None:
                # Not answered: the music stops now, or the next words to the caller would queue
                # behind up to 20 s of it and any key pressed meanwhile would answer a question
                # the caller has not heard yet.
                call.media.player.cancel(music)
                continue
            if not call.active:  # the caller gave up while the agent's phone rang
                agent_call.hangup("caller left")
                self._record_hangup(agent, request.skill)
                raise CallGone(call.end_reason or "caller left")
            summary = summary_text(call.info.caller, request.context, request.language)
            whisper = await self.prompts.text(summary, request.language)
            call.log.info("connecting to agent", agent=agent.id, wait=round(time.time() - call.started_at, 1))
            if self.on_connected is not None:
                self.on_connected(time.time() - call.started_at)
            announced = self.waits.get(call.call_id)
            if announced is not None:
                actual = time.time() - self._entered.get(call.call_id, time.time())
                self.waits[call.call_id] = (announced[0], actual)
                if self.on_waited is not None:
                    self.on_waited(announced[0], actual)
            result = await connect_calls(call, agent_call, whisper=whisper, hold=hold)
            self._record_hangup(agent, request.skill)
            self.queue.leave(call.call_id)
            return TransferOutcome("connected", agent=agent.name, detail=f"{result.first_to_hang_up} hung up")
        return None

    async def _wait_or_callback(
        self, call: Call, request: TransferRequest, tried: set[str], dialogue: Dialogue | None
    ) -> TransferOutcome:
        language, skill = request.language, request.skill
        now = time.time()
        self.queue.join(call.call_id, now, language, skill)
        self._entered[call.call_id] = now
        estimate = self._estimate(language, skill, self.queue.ahead(call.call_id, now))
        # What the caller was told, kept to compare with what happened (call record, metrics).
        self.waits[call.call_id] = (estimate.seconds, None)
        choice = await self._ask(
            call, "all_busy", language, dialogue, ahead=estimate.ahead, wait=estimate.speak(language)
        )
        if choice.digit == "2":
            return TransferOutcome("no_agent", detail="caller chose a callback")
        await self._say(call, "waiting", language, interruptible=False)
        next_announcement = time.monotonic() + self.config.announce_every
        while call.active:
            now = time.time()
            if self.queue.ahead(call.call_id, now) == 0 and self.pool.pick(language, skill, exclude=tried):
                outcome = await self._try_agents(call, request, tried)
                if outcome is not None:
                    return outcome
                tried.clear()  # everyone missed once: try them all again while the caller waits
            if any(key.digit == "2" for key in call.flush_keys()):
                return TransferOutcome("no_agent", detail="caller chose a callback")
            if self.engine is not None and self.engine.draining:
                return await self._callback_at_shutdown(call, request)
            if time.monotonic() >= next_announcement:
                estimate = self._estimate(language, skill, self.queue.ahead(call.call_id, now))
                key = "still_waiting_offer" if estimate.seconds > self.config.wait_limit else "still_waiting"
                await self._say(
                    call, key, language, position=estimate.ahead + 1, wait=estimate.speak(language)
                )
                next_announcement = time.monotonic() + self.config.announce_every
            if call.media.player.playing is False:
                call.media.player.play(np.tile(hold_music(), 5), interruptible=True)
            await asyncio.sleep(0.5)
        self.queue.leave(call.call_id)
        raise CallGone(call.end_reason or "caller left")

    async def _callback_at_shutdown(self, call: Call, request: TransferRequest) -> TransferOutcome:
        """The server is stopping: a waiting caller keeps their place as a callback, not a cut line."""
        language = request.language
        entered = self._entered.pop(call.call_id, time.time())
        self.queue.leave(call.call_id)
        try:
            number: ApprovedNumber | None = approve(
                call.info.caller, policy_from_flow((), self.config.default_country)
            )
        except NumberRejected:
            number = None
        if number is not None:
            ahead = self.queue.line_length(language, request.skill, time.time())
            estimate = self._estimate(language, request.skill, ahead)
            promise = promise_asap(dt.datetime.now(ZoneInfo(self.config.timezone)), None, estimate)
            booking = Booking(
                number=number.e164, language=language, queue_entered_at=entered, window_start=time.time(),
                promised_by=promise.deadline.timestamp(), max_attempts=3, skill=request.skill,
                context=dict(request.context), promise_text=promise.text(language),
            )  # fmt: skip
            try:
                await self._db(self.store.book, booking, time.time())
            except StoreError as error:
                call.log.error("callback could not be stored at shutdown", error=str(error))
            else:
                call.log.info("callback booked at shutdown", number=number.e164)
                await self._say(
                    call, "shutdown_booked", language, interruptible=False,
                    number=_spell(number.e164), promise=promise.text(language),
                )  # fmt: skip
                call.hangup("server stopping: callback booked")
                return TransferOutcome("failed", detail="server stopping; callback booked")
        await self._say(call, "shutdown_sorry", language, interruptible=False)
        call.hangup("server stopping")
        return TransferOutcome("failed", detail="server stopping")

    async def _refer(self, call: Call, request: TransferRequest) -> TransferOutcome:
        assert self.engine is not None
        agent = self.pool.pick(request.language, request.skill)
        if agent is None:
            return TransferOutcome("no_agent", detail="no agent for a blind transfer")
        status = await self.engine.refer(call, agent.sip_uri)
        if 200 <= status < 300:
            return TransferOutcome("connected", agent=agent.name, detail="referred")
        return TransferOutcome("failed", detail=f"REFER ended with {status}")

    # -- booking a callback -------------------------------------------------------------------

    async def offer_callback(
        self, call: Call, request: CallbackRequest, dialogue: Dialogue | None = None
    ) -> CallbackOutcome:
        """``dialogue``: the caller's flow port when they can be heard (answers by voice), else None."""
        language = request.language
        policy = policy_from_flow(request.allowed_numbers, self.config.default_country)
        offered = request.number or call.info.caller
        number = await self._confirm_number(call, offered, policy, language, dialogue)
        if number is None:
            return CallbackOutcome("declined", detail="no number we may call")
        zone = ZoneInfo(self.config.timezone)
        now_dt = dt.datetime.now(zone)
        hours = hours_from_windows(request.windows, self.config.timezone) if request.windows else None
        promise = await self._choose_window(call, language, hours, now_dt, dialogue)
        entered = self._entered.pop(call.call_id, time.time())
        self.queue.leave(call.call_id)
        booking = Booking(
            number=number.e164, language=language, queue_entered_at=entered,
            window_start=promise.start.timestamp(), promised_by=promise.deadline.timestamp(),
            max_attempts=request.attempts, skill=None, context=dict(request.context),
            promise_text=promise.text(language), retry_spacing=request.spacing,
        )  # fmt: skip
        try:
            record, created = await self._db(self.store.book, booking, time.time())
        except StoreError as error:
            call.log.error("callback could not be stored", error=str(error))
            return CallbackOutcome("failed", detail=str(error))
        call.log.info("callback booked", callback=record.id, created=created, promised_by=record.promised_by)
        return CallbackOutcome("booked", number=number.e164, promise=promise.text(language))

    async def _confirm_number(
        self, call: Call, offered: str, policy: Any, language: str, dialogue: Dialogue | None
    ) -> ApprovedNumber | None:
        try:
            number: ApprovedNumber | None = approve(offered, policy)
        except NumberRejected:
            number = None
        if number is not None:
            choice = await self._ask(call, "confirm_number", language, dialogue, number=_spell(number.e164))
            # Silence keeps the number read back; "no", 2, or anything not understood asks for another.
            if choice.digit == "1" or not choice.heard:
                return number
        for _ in range(2):
            call.flush_keys()
            await self._say(call, "enter_number", language)
            keyed = await call.collect_digits(16, first_timeout=10, inter_digit_timeout=4, terminator="#")
            try:
                return approve(keyed, policy)
            except NumberRejected as rejected:
                call.log.info("callback number refused", reason=rejected.reason)
                await self._say(call, "number_refused", language)
        return None

    async def _choose_window(
        self, call: Call, language: str, hours: Any, now_dt: dt.datetime, dialogue: Dialogue | None
    ) -> Promise:
        estimate = self._estimate(language, None, self.queue.line_length(language, None, time.time()))
        asap = promise_asap(now_dt, hours, estimate)
        slots = offer_slots(hours, now_dt, count=2, timezone=self.config.timezone)
        if not slots:
            return asap
        names = [s.name(language, now_dt) for s in slots]
        # By voice, any of the next windows can be named, not only the two offered by key.
        named = speakable_windows(hours, now_dt, language, self.config.timezone) if dialogue else {}
        asap_text = asap.text(language)
        choice = await self._ask(
            call, "choose_window", language, dialogue, extra=list(named), asap=asap_text, slots=names
        )
        chosen = chosen_window(choice, slots, named)
        return promise_window(now_dt, chosen) if chosen is not None else asap

    # -- keeping the promises -----------------------------------------------------------------

    async def run_dialer(self, stop: asyncio.Event) -> None:
        """Serve due callbacks agent-first until ``stop``; survives any single failure."""
        tasks: set[asyncio.Task[None]] = set()
        next_recovery = 0.0
        while not stop.is_set():
            try:
                if time.monotonic() >= next_recovery:
                    # Callbacks a crashed process was dialling come back once its lease ran out.
                    await self._db(self.store.recover, time.time(), retry_spacing=self.config.retry_spacing)
                    next_recovery = time.monotonic() + max(self.config.lease / 4, 1.0)
                await self._dial_round(tasks)
            except Exception:
                log.exception("dialer round failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.dial_interval)
        for task in tasks:
            task.cancel()

    async def _dial_round(self, tasks: set[asyncio.Task[None]]) -> None:
        await self.board.sync()  # what the other workers did with the agents
        if self.remote_waiting is not None:
            self.queue.sync_remote(await self.remote_waiting())
        now = time.time()
        self.pool.tick(now)
        records = await self._db(self.store.list_callbacks, ACTIVE_STATES)
        scheduler = Scheduler(RetryPolicy(), None, None)
        scheduler.sync_queue(self.queue, records)
        by_id = {r.id: r for r in records if r.id not in self._busy}
        for serve in scheduler.plan(now, self.queue, self.pool, by_id):
            if serve.kind != "callback" or serve.callback_id is None:
                continue  # live callers are connected by their own waiting loop
            self._busy.add(serve.callback_id)
            task = asyncio.ensure_future(self._serve_callback(serve, by_id[serve.callback_id]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    async def _serve_callback(self, serve: Serve, record: CallbackRecord) -> None:
        assert self.engine is not None and serve.callback_id is not None
        owner, lease = self.config.owner, self.config.lease
        scheduler = Scheduler(
            RetryPolicy(record.max_attempts, spacing_of(record, self.config.retry_spacing)), None, None
        )
        agent = self.pool.get(serve.agent)
        cb_id = serve.callback_id

        async def commit(
            event: str, changes: Mapping[str, Any] | None = None, detail: str = ""
        ) -> CallbackRecord:
            return await self._db(
                self.store.transition, cb_id, event, time.time(), owner=owner, changes=dict(changes or {}),
                detail=detail,
            )  # fmt: skip

        async def keep_lease() -> None:
            try:
                while True:
                    await asyncio.sleep(lease / 3)
                    await self._db(self.store.renew, cb_id, owner, time.time(), lease)
            except StoreError as error:  # StaleState included: the commit that follows will say so
                log.warning("callback lease not renewed", callback=cb_id, error=str(error))

        agent_call: Call | None = None
        renewing: asyncio.Task[None] | None = None
        if not await self._claim(agent):
            return  # the callback stays pending for the next round
        try:
            try:
                record = await self._db(
                    self.store.claim, cb_id, record.version, owner, agent.id, time.time(), lease
                )
            except StaleState:
                self.board.release(agent.id)  # never rung: free again for everyone
                return  # another process (or an operator) took it
            renewing = asyncio.ensure_future(keep_lease())
            headers = context_headers(f"callback-{cb_id}", record.number, record.context)
            agent_call = await self._ring(agent, headers)
            missed = agent_call is None
            if agent_call is not None:
                whisper = say("callback_whisper", record.language, number=_spell(record.number),
                              facts=facts_text(record.context, record.language))  # fmt: skip
                try:
                    await agent_call.play(
                        await self.prompts.text(whisper, record.language), interruptible=False
                    )
                except CallGone:
                    missed = True  # the agent hung up before the customer was dialled
            if missed:
                decision = scheduler.after_agent_missed(record, time.time(), "no answer")
                await commit(decision.event, decision.changes, decision.detail)
                return
            assert agent_call is not None
            # The attempt is committed before the customer's phone can ring: one dial per attempt.
            record = await commit("agent_answered")
            result, customer = await self._dial_customer(record)
            if customer is not None and not agent_call.active:
                # The agent left while the customer's phone rang: apologise, count it, try again.
                await self._say(customer, "machine_message", record.language, interruptible=False)
                customer.hangup("agent left")
                result, customer = "no_answer", None
            decision = scheduler.after_customer(record, result, time.time())
            await commit(decision.event, decision.changes, decision.detail)
            renewing.cancel()  # the outcome is committed: nothing left to hold
            log.info("callback attempt", callback=cb_id, attempt=record.attempts, result=result)
            if customer is not None:
                self.served_callbacks += 1
                await connect_calls(customer, agent_call)
            else:
                await self._say(agent_call, "callback_not_reached", record.language, interruptible=False)
        except (StoreError, CallGone) as error:
            # Anything left half-way is picked up by the store's lease recovery.
            log.warning("callback attempt broken off", callback=cb_id, error=str(error))
        finally:
            if renewing is not None:
                renewing.cancel()
            if agent_call is not None:
                if agent_call.active:
                    agent_call.hangup("callback attempt over")
                self._record_hangup(agent, record.skill)
            self._busy.discard(cb_id)

    async def _dial_customer(self, record: CallbackRecord) -> tuple[CustomerResult, Call | None]:
        assert self.engine is not None
        uri = self.config.customer_uri.format(number=record.number)
        try:
            customer = await self.engine.dial(uri, timeout=self.config.customer_timeout)
        except DialFailed as failure:
            return ("busy" if failure.status in (486, 600) else "no_answer"), None
        verdict = await self._detect_machine(customer)
        if verdict == "machine":
            await self._say(customer, "machine_message", record.language, interruptible=False)
            customer.hangup("answering machine")
            return "machine", None
        return "answered", customer

    async def _detect_machine(self, call: Call, limit: float = 4.0) -> str:
        detector = AmdDetector()
        decided: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def hear(frame: Int16Array) -> None:
            result = detector.feed(frame)
            if result is not None and not decided.done():
                decided.set_result(result.verdict)

        call.media.on_audio = hear
        try:
            return await asyncio.wait_for(asyncio.shield(decided), limit)
        except TimeoutError:
            final = detector.finish()
            return final.verdict if final is not None else "unknown"
        finally:
            call.media.on_audio = None


def _spell(number: str) -> str:
    return " ".join(number.lstrip("+"))


__all__ = ["Handoff", "HandoffConfig", "context_headers", "hold_music", "summary_text"]
