"""The callback promise: when we will call, as an absolute deadline and as words the caller hears.

Two kinds. ASAP: from the queue's wait estimate, counting only open business time, so "within 25
minutes" at 19:50 on a Friday becomes "by Saturday at nine fifteen a m" and not a promise the
closed office cannot keep. A window: a part of a day the caller chose ("this afternoon", "tomorrow
morning", by speech or keys), cut to the business hours; the deadline is the end of the window.

ASAP promises use the estimate's upper bound (``WaitEstimate.upper``) plus a margin for dialing and
retries, rounded up to what is said, so the deadline in the store is never earlier than the words.

Business hours, open time and the windows a caller can choose are ``ivr.flow.hours``. All
datetimes here are timezone-aware.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal

from ivr.flow.hours import HoursLike, Slot, add_open_time, is_open, next_open, open_intervals
from ivr.handoff.estimator import WaitEstimate
from ivr.wording.handoff import say_promised_by, say_promised_window
from ivr.wording.times import round_up_minutes, speak_within


@dataclass(frozen=True)
class Promise:
    kind: Literal["asap", "window"]
    start: dt.datetime  # not before (window start, or the next opening)
    deadline: dt.datetime  # promised by
    text_en: str
    text_de: str
    confident: bool = True  # False when no agent was working and the deadline is a best effort

    def text(self, language: str) -> str:
        return self.text_de if language.lower().startswith("de") else self.text_en


def promise_asap(
    now: dt.datetime, hours: HoursLike | None, estimate: WaitEstimate, margin: float = 300.0
) -> Promise:
    """'within 25 minutes' when open and soon; 'by tomorrow at nine fifteen a m' otherwise."""
    start = next_open(hours, now)
    if estimate.known:
        need = 60.0 * round_up_minutes(max(estimate.upper + margin, 300.0))
        confident = True
    else:
        # Nobody is logged in: promise the end of the next open stretch, and say so to metrics.
        spans = open_intervals(hours, start, start + dt.timedelta(days=1)) if hours else []
        need = (spans[0][1] - start).total_seconds() if spans else 4 * 3600.0
        confident = False
    deadline = add_open_time(hours, start, need)
    zone = start.tzinfo
    local_now = now.astimezone(zone)
    if (
        start == now
        and (deadline - now).total_seconds() <= 90 * 60
        and is_open(hours, deadline - dt.timedelta(seconds=1))
    ):
        seconds = (deadline - now).total_seconds()
        return Promise(
            "asap", start, deadline, speak_within(seconds, "en"), speak_within(seconds, "de"), confident
        )
    # Round the spoken deadline up to a quarter hour, and keep the stored one equal to it.
    local = deadline.astimezone(zone)
    quarter = math.ceil((local.minute * 60 + local.second + local.microsecond / 1e6) / 900.0 - 1e-9)
    local = local.replace(minute=0, second=0, microsecond=0) + dt.timedelta(minutes=15 * quarter)
    en, de = say_promised_by(local, "en", local_now), say_promised_by(local, "de", local_now)
    return Promise("asap", start, local, en, de, confident)


def promise_window(now: dt.datetime, chosen: Slot) -> Promise:
    """The promise for a chosen window: within it, by its end."""
    zone = chosen.start.tzinfo
    a, b = chosen.start.astimezone(zone), chosen.end.astimezone(zone)
    # Once the window has begun: "this afternoon, before five p m" rather than "between 2:07 and 5".
    start = None if a <= now else a.time()
    en = say_promised_window(chosen.name("en", now), start, b.time(), "en")
    de = say_promised_window(chosen.name("de", now), start, b.time(), "de")
    return Promise("window", chosen.start, chosen.end, en, de)
