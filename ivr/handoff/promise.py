"""The callback promise: when we will call, as an absolute deadline and as words the caller hears.

Two kinds. ASAP: from the queue's wait estimate, counting only open business time, so "within 25
minutes" at 19:50 on a Friday becomes "by Saturday at nine fifteen a m" and not a promise the
closed office cannot keep. A window: a part of a day the caller chose ("this afternoon", "tomorrow
morning", by speech or keys), cut to the business hours; the deadline is the end of the window.

ASAP promises use the estimate's upper bound (``WaitEstimate.upper``) plus a margin for dialing and
retries, rounded up to what is said, so the deadline in the store is never earlier than the words.

Business hours are anything with ``timezone`` and ``ranges`` (``ivr.flow.model.BusinessHours`` or
``Hours`` from the flow's ``callback.windows``). All datetimes here are timezone-aware.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from ivr.flow.build import _time_range, _weekdays  # the same parser as the flow's opening hours
from ivr.flow.model import OpenRange
from ivr.flow.templates import say_datetime, say_time
from ivr.handoff.estimator import WaitEstimate, round_up_minutes, speak_within

HORIZON_DAYS = 14  # business hours are searched this far ahead; beyond it there is no promise


class HoursLike(Protocol):
    @property
    def timezone(self) -> str: ...

    @property
    def ranges(self) -> tuple[OpenRange, ...]: ...


@dataclass(frozen=True)
class Hours:
    timezone: str
    ranges: tuple[OpenRange, ...]


class NoOpenTime(Exception):
    """No business time in the horizon (or in the chosen window): nothing honest to promise."""


def hours_from_windows(windows: Sequence[str], timezone: str) -> Hours:
    """``["mon-fri 08:00-20:00", "sat 09:00-16:00"]`` (``CallbackPolicy.windows``) as hours."""
    ranges: list[OpenRange] = []
    for text in windows:
        days, _, span = text.strip().partition(" ")
        weekdays = _weekdays(days)
        times = _time_range(span)
        if weekdays is None or times is None:
            raise ValueError(f"bad callback window {text!r} (write e.g. 'mon-fri 08:00-20:00')")
        ranges += [OpenRange(day, times[0], times[1]) for day in weekdays]
    ZoneInfo(timezone)  # raises for an unknown zone
    return Hours(timezone, tuple(ranges))


def open_intervals(
    hours: HoursLike, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The open periods overlapping [start, end), in the hours' time zone, merged and sorted."""
    zone = ZoneInfo(hours.timezone)
    local_start = start.astimezone(zone)
    spans: list[tuple[dt.datetime, dt.datetime]] = []
    day = local_start.date() - dt.timedelta(days=1)
    while True:
        day_start = dt.datetime.combine(day, dt.time(), zone)
        if day_start >= end:
            break
        for r in hours.ranges:
            if r.weekday != day.weekday():
                continue
            a = dt.datetime.combine(day, r.start, zone)
            b = (
                dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone)
                if r.end == dt.time.max
                else dt.datetime.combine(day, r.end, zone)
            )
            a, b = max(a, start), min(b, end)
            if a < b:
                spans.append((a, b))
        day += dt.timedelta(days=1)
    spans.sort()
    merged: list[tuple[dt.datetime, dt.datetime]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def is_open(hours: HoursLike | None, now: dt.datetime) -> bool:
    if hours is None:
        return True
    return bool(open_intervals(hours, now, now + dt.timedelta(seconds=1)))


def next_open(hours: HoursLike | None, now: dt.datetime) -> dt.datetime:
    """``now`` if open, else the next opening; raises ``NoOpenTime`` beyond the horizon."""
    if hours is None:
        return now
    spans = open_intervals(hours, now, now + dt.timedelta(days=HORIZON_DAYS))
    if not spans:
        raise NoOpenTime("no business hours in the next two weeks")
    return spans[0][0]


def add_open_time(hours: HoursLike | None, start: dt.datetime, seconds: float) -> dt.datetime:
    """The moment when ``seconds`` of business time after ``start`` have passed."""
    if hours is None:
        return start + dt.timedelta(seconds=seconds)
    left = dt.timedelta(seconds=seconds)
    for a, b in open_intervals(hours, start, start + dt.timedelta(days=HORIZON_DAYS)):
        if b - a >= left:
            return a + left
        left -= b - a
    raise NoOpenTime("not enough business hours in the next two weeks")


# -- windows --------------------------------------------------------------------------------------

PartName = Literal["morning", "afternoon", "evening"]
PARTS: dict[PartName, tuple[dt.time, dt.time]] = {
    "morning": (dt.time(8), dt.time(12)),
    "afternoon": (dt.time(12), dt.time(17)),
    "evening": (dt.time(17), dt.time(21)),
}
_PART_WORDS = {
    "morning": ("morning", "Vormittag"),
    "afternoon": ("afternoon", "Nachmittag"),
    "evening": ("evening", "Abend"),
}
_EN_DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
_DE_DAYS = "Montag Dienstag Mittwoch Donnerstag Freitag Samstag Sonntag".split()


@dataclass(frozen=True)
class Slot:
    """A window a caller can choose: open business time within one part of one day."""

    day: dt.date
    part: PartName
    start: dt.datetime
    end: dt.datetime

    def name(self, language: str, now: dt.datetime) -> str:
        """'this afternoon', 'tomorrow morning', 'on Monday evening' / 'heute Nachmittag' ..."""
        de = language.lower().startswith("de")
        today = now.astimezone(self.start.tzinfo).date()
        offset = (self.day - today).days
        en_part, de_part = _PART_WORDS[self.part]
        if de:
            head = {0: "heute", 1: "morgen"}.get(offset, f"am {_DE_DAYS[self.day.weekday()]}")
            return f"{head} {de_part}"
        head = {0: "this", 1: "tomorrow"}.get(offset, f"on {_EN_DAYS[self.day.weekday()]}")
        return f"{head} {en_part}"


def slot(
    hours: HoursLike | None, day: dt.date, part: PartName, now: dt.datetime, timezone: str = "UTC"
) -> Slot | None:
    """The open part of ``part`` on ``day`` that is still ahead of ``now`` (None if there is none)."""
    zone = ZoneInfo(hours.timezone if hours is not None else timezone)
    first, last = PARTS[part]
    a = max(dt.datetime.combine(day, first, zone), now)
    b = dt.datetime.combine(day, last, zone)
    if a >= b:
        return None
    spans = open_intervals(hours, a, b) if hours is not None else [(a, b)]
    if not spans:
        return None
    # Keep it one stretch: the first open span to the last (lunch breaks inside are the agent's business).
    start, end = spans[0][0], spans[-1][1]
    if (end - start).total_seconds() < 30 * 60:
        return None  # too little left to promise anything in it
    return Slot(day, part, start, end)


def offer_slots(
    hours: HoursLike | None, now: dt.datetime, count: int = 3, timezone: str = "UTC"
) -> list[Slot]:
    """The next ``count`` windows a caller can choose from, soonest first."""
    zone = ZoneInfo(hours.timezone if hours is not None else timezone)
    today = now.astimezone(zone).date()
    found: list[Slot] = []
    for offset in range(HORIZON_DAYS):
        for part in PARTS:
            s = slot(hours, today + dt.timedelta(days=offset), part, now, timezone)
            if s is not None:
                found.append(s)
                if len(found) == count:
                    return found
    return found


_DAY_WORDS = {"today": 0, "this": 0, "heute": 0, "tonight": 0, "tomorrow": 1, "morgen": 1}
_PART_PATTERNS: tuple[tuple[PartName, str], ...] = (
    ("morning", r"morning|vormittag|früh|frueh|morgens"),
    ("afternoon", r"afternoon|nachmittag"),
    ("evening", r"evening|tonight|abend"),
)


def parse_slot(text: str, now: dt.datetime, hours: HoursLike | None, timezone: str = "UTC") -> Slot | None:
    """'this afternoon', 'tomorrow morning', 'Monday evening', 'morgen früh', 'heute Nachmittag'."""
    words = text.lower()
    zone = ZoneInfo(hours.timezone if hours is not None else timezone)
    today = now.astimezone(zone).date()
    part: PartName | None = None
    for name, pattern in _PART_PATTERNS:
        if re.search(pattern, words):
            part = name
            break
    if part is None:
        return None
    # "morgen" is both "tomorrow" and (as "Morgen") "morning"; "morgen früh" means tomorrow morning.
    offset = 0
    tokens = re.findall(r"[a-zäöüß]+", words)
    for token in tokens:
        if token in _DAY_WORDS:
            offset = _DAY_WORDS[token]
            break
        for index, names in enumerate(zip(_EN_DAYS, _DE_DAYS, strict=True)):
            if token in (names[0].lower(), names[1].lower()):
                offset = (index - today.weekday()) % 7 or 7
                break
        else:
            continue
        break
    return slot(hours, today + dt.timedelta(days=offset), part, now, timezone)


# -- promises -------------------------------------------------------------------------------------


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
    en = f"by {say_datetime(local, 'en', local_now)}"
    de = f"bis {say_datetime(local, 'de', local_now)}"
    return Promise("asap", start, local, en, de, confident)


def promise_window(now: dt.datetime, chosen: Slot) -> Promise:
    """The promise for a chosen window: within it, by its end."""
    zone = chosen.start.tzinfo
    a, b = chosen.start.astimezone(zone), chosen.end.astimezone(zone)
    if a <= now:
        # The window has begun: "this afternoon, before five p m" rather than "between 2:07 and 5".
        en = f"{chosen.name('en', now)}, before {say_time(b.time(), 'en')}"
        de = f"{chosen.name('de', now)} bis {say_time(b.time(), 'de')}"
        return Promise("window", chosen.start, chosen.end, en, de)
    en = f"{chosen.name('en', now)}, between {say_time(a.time(), 'en')} and {say_time(b.time(), 'en')}"
    de = f"{chosen.name('de', now)} zwischen {say_time(a.time(), 'de')} und {say_time(b.time(), 'de')}"
    return Promise("window", chosen.start, chosen.end, en, de)
