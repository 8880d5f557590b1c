"""The store on SQLite: WAL mode, synchronous=FULL, one short IMMEDIATE transaction per change.

Why these settings: WAL lets the supervisor page and ``ivr callbacks list`` read while the IVR
writes; ``synchronous=FULL`` makes a commit survive power loss, not just a crash of the process (a
callback promise is worth an fsync); ``busy_timeout`` lets two worker processes share the file
without "database is locked" errors on every contention; ``BEGIN IMMEDIATE`` takes the write lock
before reading, so the read-check-write of a compare-and-set cannot interleave with another
process. The state machine and the exactly-once rule are described in ``ivr.store.base``.

The schema is versioned with ``PRAGMA user_version``; ``MIGRATIONS[i]`` brings version i to i+1.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ivr.store.base import (
    ACTIVE_STATES,
    TRANSITIONS,
    Booking,
    CallbackEvent,
    CallbackRecord,
    CallbackState,
    CallRecord,
    StaleState,
    StoreError,
    UnknownLeg,
    spacing_of,
)

_ACTIVE_SQL = ", ".join(f"'{s.value}'" for s in sorted(ACTIVE_STATES, key=lambda s: s.value))

MIGRATIONS: tuple[str, ...] = (
    f"""
    CREATE TABLE callbacks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        number TEXT NOT NULL,
        language TEXT NOT NULL,
        skill TEXT,
        context TEXT NOT NULL DEFAULT '{{}}',
        flow TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        queue_entered_at REAL NOT NULL,
        window_start REAL NOT NULL,
        promised_by REAL NOT NULL,
        promise_text TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        next_attempt_at REAL NOT NULL,
        last_outcome TEXT,
        agent TEXT,
        connected_at REAL,
        owner TEXT,
        lease_until REAL,
        version INTEGER NOT NULL DEFAULT 1
    );
    -- One active callback per number: a second booking updates the first (see book()).
    CREATE UNIQUE INDEX callbacks_one_active ON callbacks(number) WHERE state IN ({_ACTIVE_SQL});
    CREATE INDEX callbacks_due ON callbacks(state, next_attempt_at);
    CREATE TABLE callback_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        callback_id INTEGER NOT NULL REFERENCES callbacks(id),
        at REAL NOT NULL,
        old_state TEXT,
        new_state TEXT NOT NULL,
        event TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        owner TEXT
    );
    CREATE INDEX callback_events_by_callback ON callback_events(callback_id, id);
    CREATE TABLE call_records (
        call_id TEXT PRIMARY KEY,
        started_at REAL NOT NULL,
        ended_at REAL,
        caller TEXT NOT NULL,
        called TEXT NOT NULL,
        flow TEXT NOT NULL DEFAULT '',
        flow_version TEXT NOT NULL DEFAULT '',
        path TEXT NOT NULL DEFAULT '[]',
        inputs TEXT NOT NULL DEFAULT '[]',
        handoff TEXT,
        outcome TEXT NOT NULL DEFAULT '',
        announced_wait REAL,
        actual_wait REAL
    );
    CREATE INDEX call_records_started ON call_records(started_at);
    """,
    # Retry spacing per flow: a callback keeps the spacing of the flow that booked it, even when
    # the server's default changes before it is served.
    """
    ALTER TABLE callbacks ADD COLUMN retry_spacing REAL;
    """,
    # The agent board: every worker process's view of who is free, and the one place where an
    # agent is claimed before their phone rings, so two workers never ring the same agent.
    """
    CREATE TABLE agent_board (
        agent TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        since REAL NOT NULL,
        owner TEXT NOT NULL,
        run TEXT NOT NULL,
        version INTEGER NOT NULL DEFAULT 1
    );
    """,
    # With several workers each one publishes the calls it carries, about once a second, so the
    # API (served by worker 0) lists every call and finds any call's context for a screen-pop.
    """
    CREATE TABLE live_calls (
        owner TEXT PRIMARY KEY,
        run TEXT NOT NULL,
        updated_at REAL NOT NULL,
        calls TEXT NOT NULL
    );
    """,
)

# Columns a transition may set besides state/owner/lease/version.
_SETTABLE = frozenset(
    {
        "next_attempt_at",
        "last_outcome",
        "agent",
        "connected_at",
        "window_start",
        "promised_by",
        "attempts",
        "promise_text",
        "max_attempts",
    }
)
# Events a dialing owner sends: only the lease holder may send them, and only while the lease holds.
_OWNER_EVENTS = frozenset({"agent_answered", "agent_missed", "customer_answered", "retry", "give_up"})
_RECOVERY_EVENTS = frozenset({"lease_expired", "lease_expired_final", "lease_expired_verify"})
_DIALING = frozenset({CallbackState.DIALING_AGENT, CallbackState.DIALING_CUSTOMER})


class SqliteStore:
    def __init__(self, path: str | Path, busy_timeout_ms: int = 5000) -> None:
        self.path = str(path)
        # Worker processes open a new store at the same moment. Switching a fresh file to WAL
        # needs an exclusive lock that SQLite does not wait for (no busy handler there), so the
        # loser gets "database is locked" at once: try again for as long as the busy timeout.
        deadline = time.monotonic() + busy_timeout_ms / 1000
        while True:
            try:
                self._open(busy_timeout_ms)
                return
            except StoreError as error:
                self._close_quietly()
                locked = isinstance(error.__cause__, sqlite3.OperationalError) and "locked" in str(error)
                if not locked or time.monotonic() >= deadline:
                    raise
            time.sleep(0.05)

    def _open(self, busy_timeout_ms: int) -> None:
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves.
            # check_same_thread=False: a server opens the store at start-up and then uses it from
            # one dedicated thread only (never two at once), off its event loop.
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout_ms / 1000, isolation_level=None, check_same_thread=False
            )
            self._db.row_factory = sqlite3.Row
            self._db.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if self.path != ":memory:" and str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: cannot switch to WAL mode (got {mode})")
            self._db.execute("PRAGMA synchronous = FULL")
            self._db.execute("PRAGMA foreign_keys = ON")
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open the store: {exc}") from exc

    def _close_quietly(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            db.close()

    # -- plumbing ----------------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._tx() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                raise StoreError(f"{self.path}: schema version {version} is newer than this program")
            for index in range(version, len(MIGRATIONS)):
                for statement in MIGRATIONS[index].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {index + 1}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot start a transaction: {exc}") from exc
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException as exc:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the failed COMMIT may already have rolled back
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"{self.path}: {exc}") from exc
            raise

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc

    # -- the agent board (see ivr.handoff.board) ------------------------------------------------

    def board_join(self, run: str, owner: str, agents: Sequence[tuple[str, str, float]]) -> None:
        """Start this run's board: rows of earlier runs go; agents are added as (id, state, since).

        Workers of one run join with the same ``run``: the first one's rows stand, so a worker
        starting late does not undo what another has already claimed.
        """
        with self._tx() as db:
            db.execute("DELETE FROM agent_board WHERE run != ?", (run,))
            db.executemany(
                "INSERT OR IGNORE INTO agent_board (agent, state, since, owner, run) VALUES (?,?,?,?,?)",
                [(agent, state, since, owner, run) for agent, state, since in agents],
            )

    def board_claim(self, agent: str, owner: str, run: str, now: float) -> bool:
        """Reserve an available agent for ``owner``; False when someone else was first.

        An agent not on the board yet (nobody joined) is taken to be available.
        """
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO agent_board (agent, state, since, owner, run) "
                "VALUES (?, 'available', ?, ?, ?)",
                (agent, now, owner, run),
            )
            cur = db.execute(
                "UPDATE agent_board SET state='reserved', since=?, owner=?, version=version+1 "
                "WHERE agent=? AND state='available'",
                (now, owner, agent),
            )
            return cur.rowcount == 1

    def board_publish(self, agent: str, state: str, since: float, owner: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE agent_board SET state=?, since=?, owner=?, version=version+1 WHERE agent=?",
                (state, since, owner, agent),
            )

    def board_read(self) -> list[tuple[str, str, float, str, int]]:
        """(agent, state, since, owner, version) for every agent on the board."""
        rows = self._read("SELECT agent, state, since, owner, version FROM agent_board ORDER BY agent")
        return [(str(r[0]), str(r[1]), float(r[2]), str(r[3]), int(r[4])) for r in rows]

    # -- calls in progress on other workers (see ivr.ops.live_view) --------------------------------

    def live_publish(self, owner: str, run: str, now: float, calls: str) -> None:
        """Replace ``owner``'s list of calls in progress (JSON); rows of earlier runs go."""
        with self._tx() as db:
            db.execute("DELETE FROM live_calls WHERE run != ?", (run,))
            db.execute(
                "INSERT OR REPLACE INTO live_calls (owner, run, updated_at, calls) VALUES (?,?,?,?)",
                (owner, run, now, calls),
            )

    def live_read(self, run: str, fresh_after: float) -> list[tuple[str, str]]:
        """(owner, calls JSON) of this run's workers that published after ``fresh_after``."""
        rows = self._read(
            "SELECT owner, calls FROM live_calls WHERE run = ? AND updated_at > ? ORDER BY owner",
            (run, fresh_after),
        )
        return [(str(r[0]), str(r[1])) for r in rows]

    def pragma(self, name: str) -> Any:
        return self._read(f"PRAGMA {name}")[0][0]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- callbacks --------------------------------------------------------------------------------

    def book(self, booking: Booking, now: float) -> tuple[CallbackRecord, bool]:
        with self._tx() as db:
            row = db.execute(
                f"SELECT * FROM callbacks WHERE number = ? AND state IN ({_ACTIVE_SQL})", (booking.number,)
            ).fetchone()
            if row is not None:
                old = _record(row)
                if old.state is not CallbackState.PENDING:
                    # Being dialed (or waiting for an operator): the call in progress serves this
                    # request too; changing it under the dialer would help nobody.
                    return old, False
                # The second request updates the first and keeps the earlier place in line.
                entered = min(old.queue_entered_at, booking.queue_entered_at)
                db.execute(
                    "UPDATE callbacks SET language=?, skill=?, context=?, flow=?, queue_entered_at=?, "
                    "window_start=?, promised_by=?, promise_text=?, max_attempts=?, next_attempt_at=?, "
                    "retry_spacing=?, version=version+1 WHERE id=?",
                    (
                        booking.language,
                        booking.skill,
                        json.dumps(dict(booking.context)),
                        booking.flow,
                        entered,
                        booking.window_start,
                        booking.promised_by,
                        booking.promise_text,
                        booking.max_attempts,
                        booking.window_start,
                        booking.retry_spacing,
                        old.id,
                    ),
                )
                self._event(
                    db, old.id, now, old.state, CallbackState.PENDING, "rebook", booking.promise_text, None
                )
                return _record(db.execute("SELECT * FROM callbacks WHERE id=?", (old.id,)).fetchone()), False
            cur = db.execute(
                "INSERT INTO callbacks (number, language, skill, context, flow, created_at, "
                "queue_entered_at, window_start, promised_by, promise_text, state, max_attempts, "
                "next_attempt_at, retry_spacing) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    booking.number,
                    booking.language,
                    booking.skill,
                    json.dumps(dict(booking.context)),
                    booking.flow,
                    now,
                    booking.queue_entered_at,
                    booking.window_start,
                    booking.promised_by,
                    booking.promise_text,
                    CallbackState.PENDING.value,
                    booking.max_attempts,
                    booking.window_start,
                    booking.retry_spacing,
                ),
            )
            new_id = int(cur.lastrowid or 0)
            self._event(db, new_id, now, None, CallbackState.PENDING, "book", booking.promise_text, None)
            return _record(db.execute("SELECT * FROM callbacks WHERE id=?", (new_id,)).fetchone()), True

    def get(self, callback_id: int) -> CallbackRecord | None:
        rows = self._read("SELECT * FROM callbacks WHERE id=?", (callback_id,))
        return _record(rows[0]) if rows else None

    def list_callbacks(
        self, states: frozenset[CallbackState] | None = None, limit: int = 1000
    ) -> list[CallbackRecord]:
        if states:
            marks = ", ".join("?" for _ in states)
            rows = self._read(
                f"SELECT * FROM callbacks WHERE state IN ({marks}) ORDER BY queue_entered_at, id LIMIT ?",
                (*(s.value for s in states), limit),
            )
        else:
            rows = self._read("SELECT * FROM callbacks ORDER BY queue_entered_at, id LIMIT ?", (limit,))
        return [_record(r) for r in rows]

    def due(self, now: float, limit: int = 100) -> list[CallbackRecord]:
        rows = self._read(
            "SELECT * FROM callbacks WHERE state='pending' AND next_attempt_at <= ? AND window_start <= ? "
            "ORDER BY queue_entered_at, id LIMIT ?",
            (now, now, limit),
        )
        return [_record(r) for r in rows]

    def transition(
        self,
        callback_id: int,
        event: str,
        now: float,
        *,
        expect_version: int | None = None,
        owner: str | None = None,
        lease_until: float | None = None,
        detail: str = "",
        changes: Mapping[str, Any] | None = None,
    ) -> CallbackRecord:
        extra = dict(changes or {})
        bad = set(extra) - _SETTABLE
        if bad:
            raise ValueError(f"cannot set {sorted(bad)} in a transition")
        with self._tx() as db:
            row = db.execute("SELECT * FROM callbacks WHERE id=?", (callback_id,)).fetchone()
            if row is None:
                raise StaleState(f"callback {callback_id} does not exist")
            old = _record(row)
            new = TRANSITIONS.get((old.state, event))
            if new is None:
                raise StaleState(f"callback {callback_id}: cannot {event} while {old.state.value}")
            if expect_version is not None and old.version != expect_version:
                raise StaleState(f"callback {callback_id}: changed meanwhile (version {old.version})")
            if event in _OWNER_EVENTS and (old.owner != owner or (old.lease_until or 0.0) < now):
                # Fencing: a worker whose lease ran out may have been recovered by another.
                raise StaleState(f"callback {callback_id}: lease not held by {owner}")
            if event in _RECOVERY_EVENTS and (old.lease_until or 0.0) >= now:
                raise StaleState(f"callback {callback_id}: lease still valid")
            if event == "agent_answered":
                # Write ahead: the attempt is counted before the customer is dialed.
                extra["attempts"] = old.attempts + 1
            if new in _DIALING:
                held_by, lease = (owner, lease_until) if event == "claim" else (old.owner, old.lease_until)
            else:
                held_by, lease = None, None
            if event == "claim" and (owner is None or lease_until is None):
                raise ValueError("claim needs an owner and a lease")
            sets = ", ".join(f"{k}=?" for k in extra)
            db.execute(
                f"UPDATE callbacks SET state=?, owner=?, lease_until=?, version=version+1"
                f"{', ' + sets if sets else ''} WHERE id=? AND version=?",
                (new.value, held_by, lease, *extra.values(), callback_id, old.version),
            )
            self._event(db, callback_id, now, old.state, new, event, detail, owner)
            return _record(db.execute("SELECT * FROM callbacks WHERE id=?", (callback_id,)).fetchone())

    def claim(
        self, callback_id: int, version: int, owner: str, agent: str, now: float, lease: float
    ) -> CallbackRecord:
        return self.transition(
            callback_id,
            "claim",
            now,
            expect_version=version,
            owner=owner,
            lease_until=now + lease,
            detail=f"agent {agent}",
            changes={"agent": agent},
        )

    def renew(self, callback_id: int, owner: str, now: float, lease: float) -> CallbackRecord:
        with self._tx() as db:
            cur = db.execute(
                "UPDATE callbacks SET lease_until=? "
                "WHERE id=? AND owner=? AND lease_until >= ? AND state IN (?, ?)",
                (now + lease, callback_id, owner, now, *(s.value for s in _DIALING)),
            )
            if cur.rowcount != 1:
                raise StaleState(f"callback {callback_id}: lease not held by {owner}")
            return _record(db.execute("SELECT * FROM callbacks WHERE id=?", (callback_id,)).fetchone())

    def recover(
        self, now: float, unknown_leg: UnknownLeg = "retry", retry_spacing: float = 600.0
    ) -> list[CallbackRecord]:
        """Resolve callbacks whose dialing owner's lease ran out (see the rule in ivr.store.base)."""
        rows = self._read(
            "SELECT * FROM callbacks WHERE state IN (?, ?) AND lease_until < ? ORDER BY id",
            (*(s.value for s in _DIALING), now),
        )
        resolved = []
        for row in rows:
            rec = _record(row)
            try:
                if rec.state is CallbackState.DIALING_AGENT:
                    out = self.transition(
                        rec.id,
                        "lease_expired",
                        now,
                        expect_version=rec.version,
                        detail="owner lost before the customer was dialed; no attempt used",
                        changes={"next_attempt_at": now, "agent": None},
                    )
                elif unknown_leg == "verify":
                    out = self.transition(
                        rec.id,
                        "lease_expired_verify",
                        now,
                        expect_version=rec.version,
                        detail=f"owner lost during attempt {rec.attempts}; customer leg unknown",
                        changes={"last_outcome": "interrupted"},
                    )
                elif rec.attempts >= rec.max_attempts:
                    out = self.transition(
                        rec.id,
                        "lease_expired_final",
                        now,
                        expect_version=rec.version,
                        detail=f"owner lost during the last attempt ({rec.attempts})",
                        changes={"last_outcome": "interrupted"},
                    )
                else:
                    out = self.transition(
                        rec.id,
                        "lease_expired",
                        now,
                        expect_version=rec.version,
                        detail=f"owner lost during attempt {rec.attempts}; it counts",
                        changes={
                            "last_outcome": "interrupted",
                            "next_attempt_at": now + spacing_of(rec, retry_spacing),
                        },
                    )
            except StaleState:
                continue  # another worker recovered it first
            resolved.append(out)
        return resolved

    def cancel(self, callback_id: int, now: float, detail: str = "operator") -> CallbackRecord:
        return self.transition(
            callback_id, "cancel", now, detail=detail, changes={"last_outcome": "cancelled"}
        )

    def _existing(self, callback_id: int) -> CallbackRecord:
        rec = self.get(callback_id)
        if rec is None:
            raise StaleState(f"callback {callback_id} does not exist")
        return rec

    def operator_retry(self, callback_id: int, now: float, detail: str = "operator") -> CallbackRecord:
        rec = self._existing(callback_id)
        # A retry grants at least one more attempt, now. Attempt numbers only ever grow, so a
        # retried callback never re-uses the number of an attempt that may have been dialed.
        return self.transition(
            callback_id,
            "operator_retry",
            now,
            expect_version=rec.version,
            detail=detail,
            changes={
                "next_attempt_at": now,
                "window_start": min(rec.window_start, now),
                "max_attempts": max(rec.max_attempts, rec.attempts + 1),
            },
        )

    def reschedule(
        self, callback_id: int, window_start: float, promised_by: float, now: float, detail: str = "operator"
    ) -> CallbackRecord:
        """Move a pending callback to a new window (and promise); only while nobody dials it."""
        if promised_by <= window_start:
            raise StoreError(f"callback {callback_id}: the promise must end after the window starts")
        rec = self._existing(callback_id)
        return self.transition(
            callback_id,
            "reschedule",
            now,
            expect_version=rec.version,
            detail=detail,
            changes={
                "window_start": window_start,
                "promised_by": promised_by,
                "next_attempt_at": window_start,
            },
        )

    def events(self, callback_id: int) -> list[CallbackEvent]:
        rows = self._read("SELECT * FROM callback_events WHERE callback_id=? ORDER BY id", (callback_id,))
        return [
            CallbackEvent(
                int(r["callback_id"]),
                float(r["at"]),
                CallbackState(r["old_state"]) if r["old_state"] else None,
                CallbackState(r["new_state"]),
                str(r["event"]),
                str(r["detail"]),
            )
            for r in rows
        ]

    @staticmethod
    def _event(
        db: sqlite3.Connection,
        callback_id: int,
        now: float,
        old: CallbackState | None,
        new: CallbackState,
        event: str,
        detail: str,
        owner: str | None,
    ) -> None:
        db.execute(
            "INSERT INTO callback_events (callback_id, at, old_state, new_state, event, detail, owner) "
            "VALUES (?,?,?,?,?,?,?)",
            (callback_id, now, old.value if old else None, new.value, event, detail, owner),
        )

    # -- call detail records ----------------------------------------------------------------------

    def record_call(self, record: CallRecord) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO call_records (call_id, started_at, ended_at, caller, called, flow, "
                "flow_version, path, inputs, handoff, outcome, announced_wait, actual_wait) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    record.call_id,
                    record.started_at,
                    record.ended_at,
                    record.caller,
                    record.called,
                    record.flow,
                    record.flow_version,
                    json.dumps(list(record.path)),
                    json.dumps([dict(i) for i in record.inputs]),
                    record.handoff,
                    record.outcome,
                    record.announced_wait,
                    record.actual_wait,
                ),
            )

    def calls(self, start: float, end: float) -> list[CallRecord]:
        rows = self._read(
            "SELECT * FROM call_records WHERE started_at >= ? AND started_at < ? "
            "ORDER BY started_at, call_id",
            (start, end),
        )
        return [
            CallRecord(
                call_id=r["call_id"],
                started_at=r["started_at"],
                ended_at=r["ended_at"],
                caller=r["caller"],
                called=r["called"],
                flow=r["flow"],
                flow_version=r["flow_version"],
                path=json.loads(r["path"]),
                inputs=json.loads(r["inputs"]),
                handoff=r["handoff"],
                outcome=r["outcome"],
                announced_wait=r["announced_wait"],
                actual_wait=r["actual_wait"],
            )
            for r in rows
        ]


def _record(row: sqlite3.Row) -> CallbackRecord:
    return CallbackRecord(
        id=int(row["id"]),
        number=str(row["number"]),
        language=str(row["language"]),
        context=json.loads(row["context"]),
        created_at=float(row["created_at"]),
        queue_entered_at=float(row["queue_entered_at"]),
        window_start=float(row["window_start"]),
        promised_by=float(row["promised_by"]),
        state=CallbackState(row["state"]),
        attempts=int(row["attempts"]),
        max_attempts=int(row["max_attempts"]),
        next_attempt_at=float(row["next_attempt_at"]),
        last_outcome=row["last_outcome"],
        agent=row["agent"],
        connected_at=row["connected_at"],
        owner=row["owner"],
        lease_until=row["lease_until"],
        version=int(row["version"]),
        skill=row["skill"],
        promise_text=str(row["promise_text"]),
        flow=str(row["flow"]),
        retry_spacing=row["retry_spacing"],
    )
