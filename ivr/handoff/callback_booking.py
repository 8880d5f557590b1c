"""Booking a callback: confirm the number (caller ID or keyed in, approved against the flow's
patterns), choose the first free slot or a window, and book it durably. The caller hears "booked"
only after the store committed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from ivr.flow.hours import hours_from_windows, offer_slots
from ivr.flow.port import CallbackOutcome, CallbackRequest
from ivr.handoff.asking import Dialogue, chosen_window, speakable_windows
from ivr.handoff.desk import Desk
from ivr.handoff.numbers import ApprovedNumber, NumberRejected, approve, policy_from_flow
from ivr.handoff.ports import Leg
from ivr.handoff.promise import Promise, promise_asap, promise_window
from ivr.store.base import Booking, StoreError
from ivr.wording.numbers import digits_apart


class CallbackBooking(Desk):
    """The dialogue that books a callback."""

    async def offer_callback(
        self, call: Leg, request: CallbackRequest, dialogue: Dialogue | None = None
    ) -> CallbackOutcome:
        """``dialogue``: the caller's flow port when they can be heard (answers by voice), else None."""
        language = request.language
        policy = policy_from_flow(request.allowed_numbers, self.config.default_country)
        offered = request.number or call.caller
        number = await self._confirm_number(call, offered, policy, language, dialogue)
        if number is None:
            return CallbackOutcome("declined", detail="no number we may call")
        zone = ZoneInfo(self.config.timezone)
        now_dt = dt.datetime.fromtimestamp(self.clock.now(), zone)
        hours = hours_from_windows(request.windows, self.config.timezone) if request.windows else None
        promise = await self._choose_window(call, language, hours, now_dt, dialogue)
        entered = self._entered.pop(call.call_id, self.clock.now())
        self.queue.leave(call.call_id)
        booking = Booking(
            number=number.e164, language=language, queue_entered_at=entered,
            window_start=promise.start.timestamp(), promised_by=promise.deadline.timestamp(),
            max_attempts=request.attempts, skill=None, context=dict(request.context),
            promise_text=promise.text(language), retry_spacing=request.spacing,
        )  # fmt: skip
        try:
            record, created = await self._db(self.store.book, booking, self.clock.now())
        except StoreError as error:
            call.log.error("callback could not be stored", error=str(error))
            return CallbackOutcome("failed", detail=str(error))
        call.log.info("callback booked", callback=record.id, created=created, promised_by=record.promised_by)
        return CallbackOutcome("booked", number=number.e164, promise=promise.text(language))

    async def _confirm_number(
        self, call: Leg, offered: str, policy: Any, language: str, dialogue: Dialogue | None
    ) -> ApprovedNumber | None:
        try:
            number: ApprovedNumber | None = approve(offered, policy)
        except NumberRejected:
            number = None
        if number is not None:
            choice = await self._ask(
                call, "confirm_number", language, dialogue, number=digits_apart(number.e164)
            )
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
        self, call: Leg, language: str, hours: Any, now_dt: dt.datetime, dialogue: Dialogue | None
    ) -> Promise:
        estimate = self._estimate(language, None, self.queue.line_length(language, None, self.clock.now()))
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
