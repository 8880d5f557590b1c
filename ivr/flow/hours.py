"""Business hours and callback windows: when someone can answer, in the office's own time zone.

Opening hours are written the same way everywhere an operator writes them: the flow's
``settings.hours.open`` (``mon-fri: 08:00-20:00``) and ``settings.callback.windows``
(``"mon-fri 08:00-20:00"``) share the parsers here. ``24:00`` ends a day; a range may not run
past midnight (write two).

Hours are anything with ``timezone`` and ``ranges`` (``Hours`` here, or the flow's
``BusinessHours``, which adds the step taken while closed). Open time is computed as intervals of
timezone-aware datetimes, searched ``HORIZON_DAYS`` ahead: beyond that there is nothing honest to
promise. A window is one part of one day ("tomorrow morning") cut to the open time in it.

Pure: nothing here reads a clock or loads the flow's validator; ``now`` is always passed in.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from ivr.wording.times import DE_DAYS, EN_DAYS, say_day_part

HORIZON_DAYS = 14  # business hours are searched this far ahead; beyond it there is no promise
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class OpenRange:
    weekday: int  # 0 = Monday, as datetime.weekday()
    start: dt.time
    end: dt.time


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


# -- parsing --------------------------------------------------------------------------------------


def parse_weekdays(text: str) -> list[int] | None:
    """``"mon-fri"``, ``"sat"``, ``"sat,sun"``, ``"fri-mon"`` as weekday numbers; None if unreadable."""
    days: list[int] = []
    for part in str(text).lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            return None
        a = WEEKDAYS.index(first)
        b = WEEKDAYS.index(last) if last else a
        days += list(range(a, b + 1)) if a <= b else [*range(a, 7), *range(0, b + 1)]
    return days


def parse_time_range(text: str) -> tuple[dt.time, dt.time] | None:
    """``"08:00-20:00"`` as (start, end), ``24:00`` as the end of the day; None if unreadable."""
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text)
    if match is None:
        return None
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    try:
        start = dt.time(h1, m1)
        end = dt.time.max if (h2, m2) == (24, 0) else dt.time(h2, m2)
    except ValueError:
        return None
    return (start, end) if start < end else None


def hours_from_windows(windows: Sequence[str], timezone: str) -> Hours:
    """``["mon-fri 08:00-20:00", "sat 09:00-16:00"]`` (``CallbackPolicy.windows``) as hours."""
    ranges: list[OpenRange] = []
    for text in windows:
        days, _, span = text.strip().partition(" ")
        weekdays = parse_weekdays(days)
        times = parse_time_range(span)
        if weekdays is None or times is None:
            raise ValueError(f"bad callback window {text!r} (write e.g. 'mon-fri 08:00-20:00')")
        ranges += [OpenRange(day, times[0], times[1]) for day in weekdays]
    ZoneInfo(timezone)  # raises for an unknown zone
    return Hours(timezone, tuple(ranges))


# -- open time ------------------------------------------------------------------------------------


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
    """Whether ``now`` falls in the hours (no hours: always open); a naive ``now`` is local time."""
    if hours is None:
        return True
    local = now.astimezone(ZoneInfo(hours.timezone)) if now.tzinfo else now
    clock = local.time().replace(tzinfo=None)
    return any(r.weekday == local.weekday() and r.start <= clock < r.end for r in hours.ranges)


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


@dataclass(frozen=True)
class Slot:
    """A window a caller can choose: open business time within one part of one day."""

    day: dt.date
    part: PartName
    start: dt.datetime
    end: dt.datetime

    def name(self, language: str, now: dt.datetime) -> str:
        """'this afternoon', 'tomorrow morning', 'on Monday evening' / 'heute Nachmittag' ..."""
        return say_day_part(self.day, self.part, language, now.astimezone(self.start.tzinfo).date())


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
        for index, names in enumerate(zip(EN_DAYS, DE_DAYS, strict=True)):
            if token in (names[0].lower(), names[1].lower()):
                offset = (index - today.weekday()) % 7 or 7
                break
        else:
            continue
        break
    return slot(hours, today + dt.timedelta(days=offset), part, now, timezone)
