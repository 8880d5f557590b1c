"""The SQLite store: durability settings, the callback state machine, recovery, CDRs."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.store.base import ACTIVE_STATES, Booking, CallbackState, CallRecord, StaleState, StoreError
from ivr.store.sqlite import MIGRATIONS, SqliteStore

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_750_000_000.0


def booking(number: str = "+4930123456", entered: float = T0, **kw: object) -> Booking:
    values: dict[str, object] = {
        "number": number,
        "language": "en",
        "queue_entered_at": entered,
        "window_start": entered,
        "promised_by": entered + 1500,
        "max_attempts": 3,
    }
    values.update(kw)
    return Booking(**values)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "var" / "ivr.db")
    yield s
    s.close()


def test_wal_full_sync_and_schema_version(store: SqliteStore, tmp_path: Path) -> None:
    assert store.pragma("journal_mode") == "wal"
    assert store.pragma("synchronous") == 2  # FULL
    assert store.pragma("busy_timeout") == 5000
    assert store.pragma("user_version") == len(MIGRATIONS)
    # Opening again does not migrate twice, and the WAL setting is persistent in the file.
    again = SqliteStore(tmp_path / "var" / "ivr.db")
    assert again.pragma("user_version") == len(MIGRATIONS)
    raw = sqlite3.connect(tmp_path / "var" / "ivr.db")
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()
    again.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    raw = sqlite3.connect(tmp_path / "ivr.db")
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(StoreError, match="newer"):
        SqliteStore(tmp_path / "ivr.db")


def test_book_is_committed_and_visible_to_another_connection(store: SqliteStore) -> None:
    rec, created = store.book(booking(context={"intent": "outage", "postcode": "10115"}), T0)
    assert created and rec.state is CallbackState.PENDING and rec.attempts == 0
    other = SqliteStore(store.path)
    seen = other.get(rec.id)
    assert seen is not None and seen.context == {"intent": "outage", "postcode": "10115"}
    assert [e.event for e in other.events(rec.id)] == ["book"]
    other.close()


def test_one_pending_callback_per_number_keeps_the_earlier_place(store: SqliteStore) -> None:
    first, _ = store.book(booking(entered=T0, promise_text="within 25 minutes"), T0)
    second, created = store.book(booking(entered=T0 + 300, promise_text="tomorrow morning"), T0 + 300)
    assert not created and second.id == first.id
    assert second.queue_entered_at == T0 and second.promise_text == "tomorrow morning"
    assert second.version == first.version + 1
    assert len(store.list_callbacks(ACTIVE_STATES)) == 1
    # The partial unique index holds even against a writer that skips book().
    with pytest.raises(sqlite3.IntegrityError):
        store._db.execute(
            "INSERT INTO callbacks (number, language, created_at, queue_entered_at, window_start, "
            "promised_by, "
            "state, max_attempts, next_attempt_at) VALUES ('+4930123456','en',0,0,0,0,'pending',3,0)"
        )
    # Once finished, the number may book again.
    store.cancel(first.id, T0 + 400)
    third, created = store.book(booking(entered=T0 + 500), T0 + 500)
    assert created and third.id != first.id


def test_booking_while_dialing_leaves_the_call_in_progress_alone(store: SqliteStore) -> None:
    rec, _ = store.book(booking(), T0)
    store.claim(rec.id, rec.version, "w1", "anna", T0 + 1, lease=60)
    again, created = store.book(booking(entered=T0 + 5), T0 + 5)
    assert not created and again.state is CallbackState.DIALING_AGENT and again.owner == "w1"


def test_due_is_in_virtual_hold_order_and_respects_windows(store: SqliteStore) -> None:
    late, _ = store.book(booking("+4930000003", entered=T0 + 30), T0 + 30)
    early, _ = store.book(booking("+4930000001", entered=T0), T0 + 40)
    later_window, _ = store.book(booking("+4930000002", entered=T0 + 10, window_start=T0 + 3600), T0 + 50)
    assert [r.id for r in store.due(T0 + 60)] == [early.id, late.id]
    assert [r.id for r in store.due(T0 + 3600)] == [early.id, later_window.id, late.id]


def test_happy_path_counts_the_attempt_before_the_customer_is_dialed(store: SqliteStore) -> None:
    rec, _ = store.book(booking(), T0)
    rec = store.claim(rec.id, rec.version, "w1", "anna", T0 + 1, lease=30)
    assert (rec.state, rec.owner, rec.lease_until, rec.agent) == (
        CallbackState.DIALING_AGENT,
        "w1",
        T0 + 31,
        "anna",
    )
    rec = store.transition(rec.id, "agent_answered", T0 + 5, owner="w1")
    assert rec.state is CallbackState.DIALING_CUSTOMER and rec.attempts == 1
    rec = store.transition(
        rec.id, "customer_answered", T0 + 15, owner="w1", changes={"connected_at": T0 + 15}
    )
    assert rec.state is CallbackState.CONNECTED and rec.owner is None and rec.lease_until is None
    assert [(e.old, e.new) for e in store.events(rec.id)][1:] == [
        (CallbackState.PENDING, CallbackState.DIALING_AGENT),
        (CallbackState.DIALING_AGENT, CallbackState.DIALING_CUSTOMER),
        (CallbackState.DIALING_CUSTOMER, CallbackState.CONNECTED),
    ]


def test_compare_and_set_refuses_stale_versions_wrong_owners_and_expired_leases(store: SqliteStore) -> None:
    rec, _ = store.book(booking(), T0)
    claimed = store.claim(rec.id, rec.version, "w1", "anna", T0, lease=10)
    with pytest.raises(StaleState):
        store.claim(rec.id, rec.version, "w2", "bob", T0, lease=10)  # second claim of the same version
    with pytest.raises(StaleState, match="lease"):
        store.transition(rec.id, "agent_answered", T0 + 1, owner="w2")
    with pytest.raises(StaleState, match="lease"):
        store.transition(rec.id, "agent_answered", T0 + 11, owner="w1")  # lease ran out
    with pytest.raises(StaleState, match="cannot customer_answered"):
        store.transition(rec.id, "customer_answered", T0 + 1, owner="w1")  # not in the table
    renewed = store.renew(rec.id, "w1", T0 + 9, lease=10)
    assert renewed.lease_until == T0 + 19 and renewed.version == claimed.version
    assert store.transition(rec.id, "agent_answered", T0 + 12, owner="w1").attempts == 1
    with pytest.raises(StaleState):
        store.renew(rec.id, "w2", T0 + 13, lease=10)


def test_recovery_of_a_dead_owner(store: SqliteStore) -> None:
    a, _ = store.book(booking("+4930000001"), T0)
    b, _ = store.book(booking("+4930000002"), T0)
    c, _ = store.book(booking("+4930000003", max_attempts=1), T0)
    live, _ = store.book(booking("+4930000004"), T0)
    store.claim(a.id, a.version, "dead", "anna", T0, lease=10)
    for r in (b, c):
        store.claim(r.id, r.version, "dead", "anna", T0, lease=10)
        store.transition(r.id, "agent_answered", T0 + 1, owner="dead")
    store.claim(live.id, live.version, "alive", "bob", T0, lease=100)
    assert store.recover(T0 + 5) == []  # leases still valid: nobody is touched
    resolved = {r.id: r for r in store.recover(T0 + 20, retry_spacing=600)}
    assert set(resolved) == {a.id, b.id, c.id}
    # Agent leg only: the customer was never dialed, so no attempt is used and it goes at once.
    assert resolved[a.id].state is CallbackState.PENDING and resolved[a.id].attempts == 0
    assert resolved[a.id].next_attempt_at == T0 + 20
    # Customer leg in flight: the attempt counts, the next one after the spacing.
    assert resolved[b.id].state is CallbackState.PENDING and resolved[b.id].attempts == 1
    assert resolved[b.id].next_attempt_at == T0 + 620 and resolved[b.id].last_outcome == "interrupted"
    # That was the last attempt: failed, not dialed again.
    assert resolved[c.id].state is CallbackState.FAILED
    assert store.get(live.id).state is CallbackState.DIALING_AGENT  # type: ignore[union-attr]
    # The dead owner, should it come back, is fenced off.
    with pytest.raises(StaleState):
        store.transition(b.id, "customer_answered", T0 + 21, owner="dead")


def test_a_callback_keeps_its_flows_retry_spacing(store: SqliteStore) -> None:
    own, _ = store.book(booking("+4930000001", retry_spacing=120.0), T0)
    default, _ = store.book(booking("+4930000002"), T0)
    assert (own.retry_spacing, default.retry_spacing) == (120.0, None)
    for r in (own, default):
        store.claim(r.id, r.version, "dead", "anna", T0, lease=10)
        store.transition(r.id, "agent_answered", T0 + 1, owner="dead")
    resolved = {r.id: r for r in store.recover(T0 + 20, retry_spacing=600)}
    assert resolved[own.id].next_attempt_at == T0 + 140  # the flow's 2 minutes
    assert resolved[default.id].next_attempt_at == T0 + 620  # the server's default
    # Booking again from the same number takes the new flow's spacing.
    again, created = store.book(booking("+4930000002", retry_spacing=60.0), T0 + 30)
    assert not created and again.retry_spacing == 60.0


def test_a_store_from_before_retry_spacing_is_migrated_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    raw = sqlite3.connect(path)
    raw.executescript(MIGRATIONS[0])
    raw.execute("PRAGMA user_version = 1")
    raw.execute(
        "INSERT INTO callbacks (number, language, created_at, queue_entered_at, window_start, promised_by, "
        "state, max_attempts, next_attempt_at) VALUES ('+4930111', 'en', 1, 1, 1, 2, 'pending', 3, 1)"
    )
    raw.commit()
    raw.close()
    upgraded = SqliteStore(path)
    try:
        (old,) = upgraded.list_callbacks(ACTIVE_STATES)
        assert old.number == "+4930111" and old.retry_spacing is None
        assert upgraded.pragma("user_version") == len(MIGRATIONS)
    finally:
        upgraded.close()


def test_recovery_in_verify_mode_waits_for_an_operator(store: SqliteStore) -> None:
    rec, _ = store.book(booking(), T0)
    store.claim(rec.id, rec.version, "dead", "anna", T0, lease=10)
    store.transition(rec.id, "agent_answered", T0 + 1, owner="dead")
    (out,) = store.recover(T0 + 30, unknown_leg="verify")
    assert out.state is CallbackState.VERIFY and out.attempts == 1
    assert store.due(T0 + 10_000) == []
    again, created = store.book(booking(entered=T0 + 40), T0 + 40)  # still the one active callback
    assert not created and again.id == rec.id
    retried = store.operator_retry(rec.id, T0 + 50)
    assert retried.state is CallbackState.PENDING and retried.max_attempts == 3 and retried.attempts == 1
    assert [r.id for r in store.due(T0 + 50)] == [rec.id]


def test_operator_retry_of_a_failed_callback_grants_a_new_attempt_number(store: SqliteStore) -> None:
    rec, _ = store.book(booking(max_attempts=1), T0)
    store.claim(rec.id, rec.version, "w", "anna", T0, lease=10)
    store.transition(rec.id, "agent_answered", T0 + 1, owner="w")
    failed = store.transition(rec.id, "give_up", T0 + 2, owner="w", changes={"last_outcome": "no_answer"})
    assert failed.state is CallbackState.FAILED
    retried = store.operator_retry(rec.id, T0 + 100)
    assert retried.state is CallbackState.PENDING and (retried.attempts, retried.max_attempts) == (1, 2)
    with pytest.raises(StaleState):
        store.cancel(store.claim(rec.id, retried.version, "w", "anna", T0 + 101, 10).id, T0 + 102)


def test_disk_full_is_a_store_error_and_nothing_half_written(store: SqliteStore) -> None:
    store.book(booking("+4930000000"), T0)
    pages = store.pragma("page_count")
    store._db.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(StoreError, match="full"):
        for i in range(1, 500):
            store.book(booking(f"+4930{i:07d}", context={"pad": "x" * 2000}), T0)
    count = len(store.list_callbacks())
    # Every callback that is there has its audit row: the failed transaction left nothing behind.
    assert all(store.events(r.id) for r in store.list_callbacks())
    assert count >= 1


def test_call_records_round_trip_by_time_range(store: SqliteStore) -> None:
    rec = CallRecord(
        "c1",
        T0,
        T0 + 90,
        "sip:+4930123@x",
        "sip:support@ivr",
        "support",
        "3",
        ["greeting", "main_menu"],
        [{"step": "main_menu", "keys": "1"}],
        "callback:4",
        "callback_booked",
        300.0,
        None,
    )
    store.record_call(rec)
    store.record_call(CallRecord("c2", T0 + 7200, None, "a", "b"))
    assert store.calls(T0 - 1, T0 + 3600) == [rec]
    assert [c.call_id for c in store.calls(T0, T0 + 10_000)] == ["c1", "c2"]


def test_two_processes_booking_the_same_numbers_at_once(tmp_path: Path) -> None:
    db = tmp_path / "ivr.db"
    SqliteStore(db).close()
    script = textwrap.dedent(
        f"""
        import sys
        from ivr.store.base import Booking
        from ivr.store.sqlite import SqliteStore
        s = SqliteStore({str(db)!r})
        for i in range(150):
            s.book(Booking(f"+4930{{i:07d}}", "en", {T0} + i, {T0}, {T0} + 999, 3), {T0})
        print("ok")
        """
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert outs == ["ok", "ok"] and [p.returncode for p in procs] == [0, 0]
    store = SqliteStore(db)
    records = store.list_callbacks()
    assert len(records) == 150 and len({r.number for r in records}) == 150
    events = sum(len(store.events(r.id)) for r in records)
    assert events == 300  # each number: one "book" and one "rebook"
    store.close()


def test_live_calls_are_read_per_run_and_only_while_fresh(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "ivr.db") as store:
        store.live_publish("old-worker", "run-1", 100.0, '[{"call_id": "a"}]')
        store.live_publish("w1", "run-2", 200.0, '[{"call_id": "b"}]')  # a new start drops run-1
        store.live_publish("w2", "run-2", 150.0, "[]")
        assert store.live_read("run-1", 0.0) == []
        assert store.live_read("run-2", 0.0) == [("w1", '[{"call_id": "b"}]'), ("w2", "[]")]
        assert store.live_read("run-2", 160.0) == [("w1", '[{"call_id": "b"}]')]  # w2 went quiet
        store.live_publish("w1", "run-2", 201.0, "[]")  # replaced, not added
        assert store.live_read("run-2", 160.0) == [("w1", "[]")]


def test_worker_processes_opening_a_new_store_at_once_all_get_it(tmp_path: Path) -> None:
    """Several workers start together on a file that does not exist yet: none may fail with
    "database is locked" (switching to WAL takes a lock SQLite does not wait for)."""
    db = tmp_path / "fresh.db"
    start = time.time() + 1.0  # every process opens at the same instant
    code = (
        "import sys, time; from ivr.store.sqlite import SqliteStore\n"
        f"time.sleep(max(0.0, {start} - time.time()))\n"
        f"SqliteStore({str(db)!r}).close(); print('opened')\n"
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    results = [worker.communicate(timeout=60) for worker in workers]
    assert [out.strip() for out, _ in results] == ["opened"] * 6, [err for _, err in results if err]
    with SqliteStore(db) as store:
        assert store.pragma("user_version") == len(MIGRATIONS)
