"""Business hours: the parsers every opening-hours text goes through, and open-time arithmetic."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from zoneinfo import ZoneInfo

import pytest

from ivr.flow.hours import (
    Hours,
    NoOpenTime,
    OpenRange,
    add_open_time,
    hours_from_windows,
    is_open,
    next_open,
    parse_time_range,
    parse_weekdays,
)

BERLIN = ZoneInfo("Europe/Berlin")
HOURS = hours_from_windows(["mon-fri 08:00-20:00", "sat 09:00-16:00"], "Europe/Berlin")


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2025, 6, day, hour, minute, tzinfo=BERLIN)  # 2 June 2025 is a Monday


def test_weekdays_and_time_ranges_as_operators_write_them() -> None:
    assert parse_weekdays("mon-fri") == [0, 1, 2, 3, 4]
    assert parse_weekdays("sat, sun") == [5, 6]
    assert parse_weekdays("fri-mon") == [4, 5, 6, 0]
    assert parse_weekdays("weekdays") is None
    assert parse_time_range("08:00-20:00") == (dt.time(8), dt.time(20))
    assert parse_time_range(" 9:30 - 24:00 ") == (dt.time(9, 30), dt.time.max)
    assert parse_time_range("20:00-08:00") is None  # past midnight: two ranges
    assert parse_time_range("8-20") is None
    assert parse_time_range("25:00-26:00") is None


def test_open_time_arithmetic_skips_nights_and_sundays() -> None:
    assert next_open(HOURS, at(3, 10)) == at(3, 10)
    assert next_open(HOURS, at(3, 21)) == at(4, 8)
    assert next_open(HOURS, at(7, 17)) == at(9, 8)  # Saturday after closing -> Monday
    assert add_open_time(HOURS, at(3, 19, 30), 3600) == at(4, 8, 30)
    assert add_open_time(HOURS, at(3, 10), 1800) == at(3, 10, 30)
    with pytest.raises(NoOpenTime):
        next_open(Hours("UTC", ()), at(3, 10))
    with pytest.raises(ValueError, match="bad callback window"):
        hours_from_windows(["weekdays 8-20"], "UTC")


def test_open_at_an_instant_in_the_hours_own_zone() -> None:
    assert is_open(HOURS, at(3, 8)) and not is_open(HOURS, at(3, 20)) and not is_open(HOURS, at(8, 10))
    assert is_open(HOURS, dt.datetime(2025, 6, 3, 6, tzinfo=dt.UTC))  # 08:00 in Berlin in June
    assert is_open(HOURS, dt.datetime(2025, 6, 3, 10))  # a naive time is the hours' local time
    assert is_open(None, at(8, 3))
    late = Hours("UTC", (OpenRange(0, dt.time(22), dt.time.max),))
    assert is_open(late, dt.datetime(2025, 6, 2, 23, 59, tzinfo=dt.UTC))


def test_importing_the_hours_does_not_load_the_flow_validator() -> None:
    heavy = ("yaml", "jsonschema", "ivr.flow.validate")
    code = f"import sys, ivr.flow.hours; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
