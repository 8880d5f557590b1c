"""Callback promises within business hours, in English and German."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from ivr.flow.hours import hours_from_windows, offer_slots, parse_slot
from ivr.handoff.estimator import estimate_wait
from ivr.handoff.promise import promise_asap, promise_window

BERLIN = ZoneInfo("Europe/Berlin")
HOURS = hours_from_windows(["mon-fri 08:00-20:00", "sat 09:00-16:00"], "Europe/Berlin")


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2025, 6, day, hour, minute, tzinfo=BERLIN)  # 2 June 2025 is a Monday


def test_asap_promise_from_the_estimate_while_open() -> None:
    est = estimate_wait(ahead=3, agents_working=2, agents_free=0, handle_time=300.0)  # 600 s, upper ~1000 s
    p = promise_asap(at(3, 10), HOURS, est)
    minutes = (p.deadline - at(3, 10)).total_seconds() / 60
    assert minutes % 5 == 0 and minutes * 60 >= est.upper + 300
    assert p.text("en") == f"within {'twenty-five' if minutes == 25 else minutes} minutes"
    assert p.text("de").startswith("innerhalb von ")


def test_asap_promise_near_closing_moves_to_the_next_opening() -> None:
    est = estimate_wait(ahead=3, agents_working=2, agents_free=0, handle_time=300.0)
    p = promise_asap(at(3, 19, 50), HOURS, est)
    assert p.deadline.astimezone(BERLIN).date() == dt.date(2025, 6, 4)
    assert p.deadline.minute % 15 == 0
    assert p.text("en").startswith("by tomorrow at eight")
    assert p.text("de").startswith("bis morgen um acht Uhr")
    closed = promise_asap(at(7, 18), HOURS, est)  # Saturday evening
    assert closed.start == at(9, 8) and closed.text("en").startswith("by Monday, June ninth at eight")


def test_no_agent_logged_in_gives_a_best_effort_promise() -> None:
    p = promise_asap(at(3, 10), HOURS, estimate_wait(0, 0, 0, 300.0))
    assert not p.confident and p.deadline == at(3, 20)
    assert p.text("en") == "by today at eight p m"


def test_slots_offered_and_parsed_in_both_languages() -> None:
    now = at(6, 13, 30)  # Friday afternoon
    slots = offer_slots(HOURS, now)
    assert [s.name("en", now) for s in slots] == ["this afternoon", "this evening", "tomorrow morning"]
    assert [s.name("de", now) for s in slots] == ["heute Nachmittag", "heute Abend", "morgen Vormittag"]
    assert slots[2].start == at(7, 9)  # Saturday opens at nine
    assert parse_slot("tomorrow morning please", now, HOURS) == slots[2]
    assert parse_slot("morgen früh", now, HOURS) == slots[2]
    assert parse_slot("heute Nachmittag", now, HOURS) == slots[0]
    assert parse_slot("monday evening", now, HOURS).start == at(9, 17)  # type: ignore[union-attr]
    assert parse_slot("tomorrow evening", now, HOURS) is None  # Saturday closes at 16:00
    assert parse_slot("whenever", now, HOURS) is None


def test_window_promise_text_and_deadline() -> None:
    now = at(6, 13, 30)
    later = promise_window(now, offer_slots(HOURS, now)[2])
    assert later.deadline == at(7, 12)
    assert later.text("en") == "tomorrow morning, between nine a m and twelve noon"
    assert later.text("de") == "morgen Vormittag zwischen neun Uhr und zwölf Uhr"
    current = promise_window(now, offer_slots(HOURS, now)[0])
    assert current.text("en") == "this afternoon, before five p m"
    assert current.text("de") == "heute Nachmittag bis siebzehn Uhr"
