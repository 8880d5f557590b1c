"""Reading the kernel's view of a thread: the parsers on plain text, and one real sample."""

from __future__ import annotations

import os
import threading

from ivr.ops.thread_clock import (
    ThreadSample,
    TimeSpent,
    parse_schedstat,
    parse_state,
    parse_steal,
    sample,
    spent_between,
)


def test_schedstat_gives_seconds_on_a_cpu_and_waiting_for_one() -> None:
    assert parse_schedstat("1500000000 250000000 42\n") == (1.5, 0.25)


def test_the_state_letter_is_found_after_a_command_name_with_spaces_and_brackets() -> None:
    assert parse_state("123 (py (thread) x) S 1 2 3") == "S"
    assert parse_state("7 (python) R 1 7 7 0") == "R"


def test_steal_is_read_from_the_all_cpus_line() -> None:
    text = "cpu  10 0 5 100 1 0 2 250 0 0\ncpu0 5 0 2 50 0 0 1 125 0 0\n"
    assert parse_steal(text) == 250 / os.sysconf("SC_CLK_TCK")
    assert parse_steal("intr 1 2 3\n") == 0.0


def test_what_is_left_of_a_stretch_is_asleep() -> None:
    before = ThreadSample(on_cpu=1.0, runnable=0.5, steal=3.0, state="S", waiting_in="futex_wait")
    after = ThreadSample(on_cpu=1.02, runnable=0.53, steal=3.01, state="R", waiting_in="-")
    spent = spent_between(before, after, seconds=0.2)
    assert round(spent.on_cpu, 3) == 0.02 and round(spent.runnable, 3) == 0.03
    assert round(spent.asleep, 3) == 0.15
    assert spent.as_ms() == {"on_cpu_ms": 20, "waiting_for_cpu_ms": 30, "asleep_ms": 150, "machine_steal_ms": 10}
    assert TimeSpent(seconds=0.1, on_cpu=0.2, runnable=0.0, steal=0.0).asleep == 0.0


def test_a_real_thread_can_be_sampled_here() -> None:
    now = sample(threading.get_native_id())
    assert now is not None and now.state == "R" and now.on_cpu > 0
