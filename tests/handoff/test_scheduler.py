"""The scheduler: serving order across live callers and callbacks, hours, retries, promises."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ivr.flow.hours import hours_from_windows
from ivr.handoff.agents import Agent, AgentPool, AgentState
from ivr.handoff.numbers import NumberPolicy
from ivr.handoff.queue import RemoteWaiter, VirtualQueue
from ivr.handoff.scheduler import RetryPolicy, Scheduler
from ivr.store.base import Booking, CallbackState
from ivr.store.sqlite import SqliteStore

HOURS = hours_from_windows(["mon-fri 08:00-20:00"], "Europe/Berlin")
MON_10 = dt.datetime(2025, 6, 2, 10, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()


def agent(agent_id: str, since: float, langs: str = "en") -> Agent:
    return Agent(
        agent_id,
        agent_id,
        f"sip:{agent_id}@h",
        frozenset(langs.split()),
        frozenset(),
        AgentState.AVAILABLE,
        since=since,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "ivr.db")
    yield s
    s.close()


def book(store: SqliteStore, number: str, entered: float, **kw: object) -> int:
    values: dict[str, object] = {
        "number": number,
        "language": "en",
        "queue_entered_at": entered,
        "window_start": entered,
        "promised_by": entered + 1800,
        "max_attempts": 2,
    }
    values.update(kw)
    return store.book(Booking(**values), entered)[0].id  # type: ignore[arg-type]


def test_free_agents_serve_the_line_in_order_callbacks_included(store: SqliteStore) -> None:
    sched = Scheduler(RetryPolicy(2, 600.0), HOURS)
    queue = VirtualQueue()
    queue.join("live-early", MON_10 - 300, "en", None)
    cb = book(store, "+4930111111", MON_10 - 200)
    queue.join("live-late", MON_10 - 100, "en", None)
    records = store.list_callbacks()
    sched.sync_queue(queue, records)
    pool = AgentPool([agent("x", MON_10 - 50), agent("y", MON_10 - 500)])
    plan = sched.plan(MON_10, queue, pool, {r.id: r for r in records})
    # y has been idle longest and takes the first in line; x the callback, which kept its place.
    assert [(s.agent, s.entry, s.kind) for s in plan] == [
        ("y", "live-early", "live"),
        ("x", f"callback:{cb}", "callback"),
    ]
    assert plan[1].version == records[0].version


def test_a_caller_on_hold_at_another_worker_keeps_the_agent_from_a_later_callback(store: SqliteStore) -> None:
    sched = Scheduler(RetryPolicy(2, 600.0), HOURS)
    queue = VirtualQueue()
    cb = book(store, "+4930111111", MON_10 - 200)
    queue.sync_remote([RemoteWaiter("held-elsewhere", MON_10 - 300, "en", None)])
    records = store.list_callbacks()
    sched.sync_queue(queue, records)
    pool = AgentPool([agent("x", MON_10 - 50)])
    plan = sched.plan(MON_10, queue, pool, {r.id: r for r in records})
    # The agent is planned for the caller who came first; their own worker connects them.
    assert [(s.agent, s.entry, s.kind) for s in plan] == [("x", "held-elsewhere", "remote")]
    assert f"callback:{cb}" in queue


def test_no_callbacks_outside_business_hours_or_to_numbers_no_longer_allowed(store: SqliteStore) -> None:
    cb = book(store, "+4930111111", MON_10 - 60)
    records = {r.id: r for r in store.list_callbacks()}
    queue = VirtualQueue()
    pool = AgentPool([agent("x", 0.0)])
    sched = Scheduler(RetryPolicy(), HOURS)
    sched.sync_queue(queue, records.values())
    assert sched.plan(MON_10 + 11 * 3600, queue, pool, records) == []  # 21:00
    assert [s.callback_id for s in sched.plan(MON_10, queue, pool, records)] == [cb]
    strict = Scheduler(RetryPolicy(), HOURS, NumberPolicy(allowed=(r"^\+4915",)))
    assert strict.plan(MON_10, queue, pool, records) == []


def test_customer_results_become_retries_within_hours_then_a_final_outcome(store: SqliteStore) -> None:
    sched = Scheduler(RetryPolicy(attempts=2, spacing=600.0), HOURS)
    cb = book(store, "+4930111111", MON_10)
    rec = store.get(cb)
    assert rec is not None
    rec = store.claim(cb, rec.version, "w", "x", MON_10, 60)
    rec = store.transition(cb, "agent_answered", MON_10 + 5, owner="w")
    d = sched.after_customer(rec, "machine", MON_10 + 30)
    assert d.event == "retry" and d.changes["next_attempt_at"] == MON_10 + 630
    rec = store.transition(cb, d.event, MON_10 + 30, owner="w", changes=d.changes)
    assert rec.state is CallbackState.PENDING and rec.last_outcome == "machine"
    # Near closing time the next attempt waits for the next opening.
    late = sched.after_customer(rec, "busy", MON_10 + 9.95 * 3600)
    assert late.changes["next_attempt_at"] == MON_10 + 22 * 3600
    rec = store.claim(cb, rec.version, "w", "x", MON_10 + 700, 60)
    rec = store.transition(cb, "agent_answered", MON_10 + 705, owner="w")
    d = sched.after_customer(rec, "no_answer", MON_10 + 730)
    assert d.event == "give_up"
    assert (
        store.transition(cb, d.event, MON_10 + 730, owner="w", changes=d.changes).state
        is CallbackState.FAILED
    )
    assert sched.after_customer(rec, "invalid_number", 0.0).event == "give_up"
    won = sched.after_customer(rec, "answered", MON_10 + 731)
    assert won.event == "customer_answered" and won.changes["connected_at"] == MON_10 + 731


def test_promise_tracking(store: SqliteStore) -> None:
    sched = Scheduler(RetryPolicy(), HOURS, at_risk_margin=120.0)
    cb = book(store, "+4930111111", MON_10, promised_by=MON_10 + 1500)
    rec = store.get(cb)
    assert rec is not None
    assert sched.promise_status(rec, MON_10, expected_wait=600.0) == "on_track"
    assert sched.promise_status(rec, MON_10 + 800, expected_wait=600.0) == "at_risk"
    assert sched.promise_status(rec, MON_10, expected_wait=None) == "at_risk"  # nobody to call
    assert sched.promise_status(rec, MON_10 + 1501, expected_wait=0.0) == "overdue"
    rec = store.claim(cb, rec.version, "w", "x", MON_10 + 1400, 60)
    rec = store.transition(cb, "agent_answered", MON_10 + 1410, owner="w")
    rec = store.transition(
        cb, "customer_answered", MON_10 + 1420, owner="w", changes={"connected_at": MON_10 + 1420}
    )
    assert sched.promise_status(rec, MON_10 + 5000, None) == "kept"
    late = book(store, "+4930222222", MON_10, promised_by=MON_10 + 100)
    lrec = store.get(late)
    assert lrec is not None
    lrec = store.claim(late, lrec.version, "w", "x", MON_10 + 200, 60)
    lrec = store.transition(late, "agent_answered", MON_10 + 201, owner="w")
    lrec = store.transition(
        late, "customer_answered", MON_10 + 210, owner="w", changes={"connected_at": MON_10 + 210}
    )
    stats = sched.promise_stats(store.list_callbacks(), MON_10 + 5000, None)
    assert (stats.kept, stats.late, stats.share_kept) == (1, 1, 0.5)
