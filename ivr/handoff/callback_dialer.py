"""Keeping the promises: agent first. The agent is called and hears who is next, then the customer
is dialled once per committed attempt and bridged; machines get a short message. Every step is
committed to the store first (see ``ivr.store.base``), so a crash never dials an attempt twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from ivr.handoff.amd import AmdDetector
from ivr.handoff.desk import Desk, context_headers, facts_text
from ivr.handoff.ports import Frames, Leg, LegGone, NotAnswered
from ivr.handoff.scheduler import CustomerResult, RetryPolicy, Scheduler, Serve
from ivr.logs import get_logger
from ivr.store.base import ACTIVE_STATES, CallbackRecord, StaleState, StoreError, spacing_of
from ivr.wording.handoff import say
from ivr.wording.numbers import digits_apart

log = get_logger(component="handoff")


class CallbackDialer(Desk):
    """Serves due callbacks, agent first, until told to stop."""

    async def run_dialer(self, stop: asyncio.Event) -> None:
        """Serve due callbacks agent-first until ``stop``; survives any single failure."""
        tasks: set[asyncio.Task[None]] = set()
        next_recovery = 0.0
        while not stop.is_set():
            try:
                if self.clock.monotonic() >= next_recovery:
                    # Callbacks a crashed process was dialling come back once its lease ran out.
                    spacing = self.config.retry_spacing
                    await self._db(self.store.recover, self.clock.now(), retry_spacing=spacing)
                    next_recovery = self.clock.monotonic() + max(self.config.lease / 4, 1.0)
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
        now = self.clock.now()
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
        assert self.dialer is not None and serve.callback_id is not None
        dialer = self.dialer
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
                self.store.transition, cb_id, event, self.clock.now(), owner=owner,
                changes=dict(changes or {}), detail=detail,
            )  # fmt: skip

        async def keep_lease() -> None:
            try:
                while True:
                    await asyncio.sleep(lease / 3)
                    await self._db(self.store.renew, cb_id, owner, self.clock.now(), lease)
            except StoreError as error:  # StaleState included: the commit that follows will say so
                log.warning("callback lease not renewed", callback=cb_id, error=str(error))

        agent_call: Leg | None = None
        renewing: asyncio.Task[None] | None = None
        if not await self._claim(agent):
            return  # the callback stays pending for the next round
        try:
            try:
                record = await self._db(
                    self.store.claim, cb_id, record.version, owner, agent.id, self.clock.now(), lease
                )
            except StaleState:
                self.board.release(agent.id)  # never rung: free again for everyone
                return  # another process (or an operator) took it
            renewing = asyncio.ensure_future(keep_lease())
            headers = context_headers(f"callback-{cb_id}", record.number, record.context)
            agent_call = await self._ring(agent, headers)
            missed = agent_call is None
            if agent_call is not None:
                whisper = say("callback_whisper", record.language, number=digits_apart(record.number),
                              facts=facts_text(record.context, record.language))  # fmt: skip
                try:
                    await agent_call.play(
                        await self.prompts.text(whisper, record.language), interruptible=False
                    )
                except LegGone:
                    missed = True  # the agent hung up before the customer was dialled
            if missed:
                decision = scheduler.after_agent_missed(record, self.clock.now(), "no answer")
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
            decision = scheduler.after_customer(record, result, self.clock.now())
            await commit(decision.event, decision.changes, decision.detail)
            renewing.cancel()  # the outcome is committed: nothing left to hold
            log.info("callback attempt", callback=cb_id, attempt=record.attempts, result=result)
            if customer is not None:
                self.served_callbacks += 1
                await dialer.bridge(customer, agent_call)
            else:
                await self._say(agent_call, "callback_not_reached", record.language, interruptible=False)
        except (StoreError, LegGone) as error:
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

    async def _dial_customer(self, record: CallbackRecord) -> tuple[CustomerResult, Leg | None]:
        assert self.dialer is not None
        uri = self.config.customer_uri.format(number=record.number)
        try:
            customer = await self.dialer.dial(uri, timeout=self.config.customer_timeout)
        except NotAnswered as failure:
            return ("busy" if failure.status in (486, 600) else "no_answer"), None
        verdict = await self._detect_machine(customer)
        if verdict == "machine":
            await self._say(customer, "machine_message", record.language, interruptible=False)
            customer.hangup("answering machine")
            return "machine", None
        return "answered", customer

    async def _detect_machine(self, call: Leg, limit: float = 4.0) -> str:
        detector = AmdDetector()
        decided: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def hear(frame: Frames) -> None:
            result = detector.feed(frame)
            if result is not None and not decided.done():
                decided.set_result(result.verdict)

        call.hear(hear)
        try:
            return await asyncio.wait_for(asyncio.shield(decided), limit)
        except TimeoutError:
            final = detector.finish()
            return final.verdict if final is not None else "unknown"
        finally:
            call.hear(None)
