"""The fast path to a human: ring a free agent with the right language and skill (the context in
SIP headers), whisper what the IVR learned, bridge. Agents who do not answer are skipped. When
nobody is free the caller hears the honest estimate and chooses: wait (position and estimate
repeated) or be called back without losing their place.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np

from ivr.flow.port import TransferOutcome, TransferRequest
from ivr.handoff.asking import Dialogue
from ivr.handoff.desk import Desk, context_headers, hold_music, summary_text
from ivr.handoff.numbers import ApprovedNumber, NumberRejected, approve, policy_from_flow
from ivr.handoff.ports import Leg, LegGone
from ivr.handoff.promise import promise_asap
from ivr.store.base import Booking, StoreError
from ivr.wording.numbers import digits_apart


class LiveTransfer(Desk):
    """The caller on the line, put through to an agent or kept waiting in the one line."""

    async def transfer(
        self, call: Leg, request: TransferRequest, dialogue: Dialogue | None = None
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
        self, call: Leg, request: TransferRequest, tried: set[str]
    ) -> TransferOutcome | None:
        headers = context_headers(call.call_id, call.caller, request.context)
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
            music = call.start_playing(np.tile(hold, 10), interruptible=False)
            agent_call = await self._ring(agent, headers)
            if agent_call is None:
                # Not answered: the music stops now, or the next words to the caller would queue
                # behind up to 20 s of it and any key pressed meanwhile would answer a question
                # the caller has not heard yet.
                call.stop_playing(music)
                continue
            if not call.active:  # the caller gave up while the agent's phone rang
                agent_call.hangup("caller left")
                self._record_hangup(agent, request.skill)
                raise LegGone(call.end_reason or "caller left")
            summary = summary_text(call.caller, request.context, request.language)
            whisper = await self.prompts.text(summary, request.language)
            waited = self.clock.now() - call.started_at
            call.log.info("connecting to agent", agent=agent.id, wait=round(waited, 1))
            if self.on_connected is not None:
                self.on_connected(self.clock.now() - call.started_at)
            announced = self.waits.get(call.call_id)
            if announced is not None:
                actual = self.clock.now() - self._entered.get(call.call_id, self.clock.now())
                self.waits[call.call_id] = (announced[0], actual)
                if self.on_waited is not None:
                    self.on_waited(announced[0], actual)
            assert self.dialer is not None  # it rang the agent
            first_to_hang_up = await self.dialer.bridge(call, agent_call, whisper=whisper, hold=hold)
            self._record_hangup(agent, request.skill)
            self.queue.leave(call.call_id)
            return TransferOutcome("connected", agent=agent.name, detail=f"{first_to_hang_up} hung up")
        return None

    async def _wait_or_callback(
        self, call: Leg, request: TransferRequest, tried: set[str], dialogue: Dialogue | None
    ) -> TransferOutcome:
        language, skill = request.language, request.skill
        now = self.clock.now()
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
        next_announcement = self.clock.monotonic() + self.config.announce_every
        while call.active:
            now = self.clock.now()
            if self.queue.ahead(call.call_id, now) == 0 and self.pool.pick(language, skill, exclude=tried):
                outcome = await self._try_agents(call, request, tried)
                if outcome is not None:
                    return outcome
                tried.clear()  # everyone missed once: try them all again while the caller waits
            if "2" in call.flush_keys():
                return TransferOutcome("no_agent", detail="caller chose a callback")
            if self.dialer is not None and self.dialer.stopping:
                return await self._callback_at_shutdown(call, request)
            if self.clock.monotonic() >= next_announcement:
                estimate = self._estimate(language, skill, self.queue.ahead(call.call_id, now))
                key = "still_waiting_offer" if estimate.seconds > self.config.wait_limit else "still_waiting"
                await self._say(
                    call, key, language, position=estimate.ahead + 1, wait=estimate.speak(language)
                )
                next_announcement = self.clock.monotonic() + self.config.announce_every
            if not call.playing:
                call.start_playing(np.tile(hold_music(), 5), interruptible=True)
            await asyncio.sleep(0.5)
        self.queue.leave(call.call_id)
        raise LegGone(call.end_reason or "caller left")

    async def _callback_at_shutdown(self, call: Leg, request: TransferRequest) -> TransferOutcome:
        """The server is stopping: a waiting caller keeps their place as a callback, not a cut line."""
        language = request.language
        entered = self._entered.pop(call.call_id, self.clock.now())
        self.queue.leave(call.call_id)
        try:
            number: ApprovedNumber | None = approve(
                call.caller, policy_from_flow((), self.config.default_country)
            )
        except NumberRejected:
            number = None
        if number is not None:
            ahead = self.queue.line_length(language, request.skill, self.clock.now())
            estimate = self._estimate(language, request.skill, ahead)
            now_dt = dt.datetime.fromtimestamp(self.clock.now(), ZoneInfo(self.config.timezone))
            promise = promise_asap(now_dt, None, estimate)
            booking = Booking(
                number=number.e164, language=language, queue_entered_at=entered,
                window_start=self.clock.now(), promised_by=promise.deadline.timestamp(), max_attempts=3,
                skill=request.skill,
                context=dict(request.context), promise_text=promise.text(language),
            )  # fmt: skip
            try:
                await self._db(self.store.book, booking, self.clock.now())
            except StoreError as error:
                call.log.error("callback could not be stored at shutdown", error=str(error))
            else:
                call.log.info("callback booked at shutdown", number=number.e164)
                await self._say(
                    call, "shutdown_booked", language, interruptible=False,
                    number=digits_apart(number.e164), promise=promise.text(language),
                )  # fmt: skip
                call.hangup("server stopping: callback booked")
                return TransferOutcome("failed", detail="server stopping; callback booked")
        await self._say(call, "shutdown_sorry", language, interruptible=False)
        call.hangup("server stopping")
        return TransferOutcome("failed", detail="server stopping")

    async def _refer(self, call: Leg, request: TransferRequest) -> TransferOutcome:
        assert self.dialer is not None
        agent = self.pool.pick(request.language, request.skill)
        if agent is None:
            return TransferOutcome("no_agent", detail="no agent for a blind transfer")
        status = await self.dialer.refer(call, agent.sip_uri)
        if 200 <= status < 300:
            return TransferOutcome("connected", agent=agent.name, detail="referred")
        return TransferOutcome("failed", detail=f"REFER ended with {status}")
