"""Exactly-once under kill -9: the store and scheduler in a worker process, killed at random points.

The worker is the real dialing loop minus SIP: it claims callbacks, "rings" agents and "dials"
customers by appending lines to a side journal (the outside world: an append of one short line with
``os.write`` either happened or not when the process dies), and commits every state change through
the store. The rule under test (``ivr.store.base``): an attempt is committed before it is dialed,
dialed at most once, and a crash consumes at most the attempt in flight.

Run as ``python -m tests.handoff.test_crash worker DB JOURNAL SEED`` by the tests below.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from ivr.handoff.agents import Agent, AgentPool, AgentState
from ivr.handoff.queue import VirtualQueue
from ivr.handoff.scheduler import CustomerResult, RetryPolicy, Scheduler
from ivr.store.base import ACTIVE_STATES, TERMINAL_STATES, Booking, CallbackState, StaleState
from ivr.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[2]
LEASE = 0.4  # seconds; a dead worker's callbacks are recovered this long after it died
ATTEMPTS = 3


def customer_result(seed: int, callback_id: int, attempt: int) -> CustomerResult:
    """What the customer does on this attempt: fixed per (seed, callback, attempt)."""
    roll = random.Random(f"{seed}:{callback_id}:{attempt}").random()
    if roll < 0.45:
        return "answered"
    if roll < 0.7:
        return "no_answer"
    if roll < 0.85:
        return "busy"
    return "machine"


def worker(db: str, journal: str, seed: int) -> int:
    store = SqliteStore(db)
    owner = f"worker-{os.getpid()}"
    fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def log(line: str) -> None:
        os.write(fd, f"{line} {owner}\n".encode())

    pool = AgentPool(
        Agent(
            f"a{i}", f"Agent {i}", f"sip:a{i}@127.0.0.1", frozenset({"en"}), frozenset(), AgentState.AVAILABLE
        )
        for i in range(2)
    )
    queue = VirtualQueue()
    scheduler = Scheduler(RetryPolicy(attempts=ATTEMPTS, spacing=0.01))
    agent_roll = random.Random(f"{seed}:{os.getpid()}")
    print("ready", flush=True)
    while True:
        now = time.time()
        store.recover(now, retry_spacing=0.01)
        active = store.list_callbacks(ACTIVE_STATES)
        if not active:
            return 0
        scheduler.sync_queue(queue, active)
        serves = scheduler.plan(now, queue, pool, {r.id: r for r in active})
        if not serves:
            time.sleep(0.01)  # others are in flight or not yet due
            continue
        for serve in serves:
            assert serve.callback_id is not None and serve.version is not None
            try:
                rec = store.claim(serve.callback_id, serve.version, owner, serve.agent, time.time(), LEASE)
                log(f"ring {rec.id}")
                time.sleep(0.01)  # the agent's phone rings
                if agent_roll.random() < 0.1:
                    d = scheduler.after_agent_missed(rec, time.time(), "no answer")
                    store.transition(rec.id, d.event, time.time(), owner=owner, changes=d.changes)
                    continue
                rec = store.transition(rec.id, "agent_answered", time.time(), owner=owner)
                # Committed: attempt rec.attempts is ours to dial, once.
                log(f"dial {rec.id} {rec.attempts}")
                time.sleep(0.01)  # the customer's phone rings
                result = customer_result(seed, rec.id, rec.attempts)
                d = scheduler.after_customer(rec, result, time.time())
                store.transition(
                    rec.id, d.event, time.time(), owner=owner, changes=d.changes, detail=d.detail
                )
            except StaleState:
                continue  # another worker got there first: drop our legs


def _book_all(db: Path, count: int) -> list[int]:
    store = SqliteStore(db)
    now = time.time()
    ids = []
    for i in range(count):
        booking = Booking(f"+4930{1000000 + i}", "en", now + i * 0.001, now, now + 3600, ATTEMPTS)
        rec, created = store.book(booking, now)
        assert created
        ids.append(rec.id)
    store.close()
    return ids


def _spawn(db: Path, journal: Path, seed: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.handoff.test_crash", "worker", str(db), str(journal), str(seed)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _reap(proc: subprocess.Popen[str]) -> int:
    code = proc.wait(timeout=60)
    assert proc.stdout is not None
    proc.stdout.close()
    return code


def _check(db: Path, journal: Path, ids: list[int], seed: int) -> collections.Counter[str]:
    store = SqliteStore(db)
    dials = collections.Counter()
    for line in journal.read_text().splitlines():
        kind, *rest = line.split()
        if kind == "dial":
            dials[f"{rest[0]}:{rest[1]}"] += 1
    twice = [k for k, n in dials.items() if n > 1]
    assert not twice, f"attempts dialed twice: {twice}"
    events: collections.Counter[str] = collections.Counter()
    for cb in ids:
        rec = store.get(cb)
        assert rec is not None, f"callback {cb} lost"
        assert rec.state in TERMINAL_STATES, f"callback {cb} left {rec.state.value}"
        history = store.events(cb)
        events.update(e.event for e in history)
        finals = [e for e in history if e.new in TERMINAL_STATES]
        assert len(finals) == 1, f"callback {cb} completed {len(finals)} times"
        dialed = sorted(int(k.split(":")[1]) for k in dials if k.split(":")[0] == str(cb))
        # Every dialed attempt was counted first; none beyond the counter or the policy.
        assert all(1 <= n <= rec.attempts <= ATTEMPTS for n in dialed), (cb, dialed, rec.attempts)
        if rec.state is CallbackState.CONNECTED:
            # Connected only after its last attempt was dialed, and the customer did answer then.
            assert rec.attempts in dialed
            assert customer_result(seed, cb, rec.attempts) == "answered"
            assert rec.connected_at is not None
        else:
            # Failed: every attempt used, none of the completed ones answered.
            assert rec.attempts == ATTEMPTS
            assert rec.last_outcome is not None
    store.close()
    return events


def test_kill_minus_nine_at_random_points_never_dials_an_attempt_twice(tmp_path: Path) -> None:
    seed = 20240605
    rng = random.Random(seed)
    db, journal = tmp_path / "ivr.db", tmp_path / "journal.txt"
    ids = _book_all(db, 50)
    kills = 0
    for _ in range(30):
        proc = _spawn(db, journal, seed)
        time.sleep(rng.uniform(0.0, 0.12))
        if proc.poll() is not None:
            _reap(proc)
            break  # finished before the kill
        proc.send_signal(signal.SIGKILL)
        _reap(proc)
        kills += 1
    final = _spawn(db, journal, seed)
    assert _reap(final) == 0
    events = _check(db, journal, ids, seed)
    assert kills >= 20
    # The kills did land mid-dial: recovery resolved callbacks whose owner died.
    assert events["lease_expired"] + events["lease_expired_final"] >= 1, events
    assert events["customer_answered"] >= 1 and events["retry"] >= 1


def test_two_workers_at_once_share_the_work_without_double_dialing(tmp_path: Path) -> None:
    seed = 7
    db, journal = tmp_path / "ivr.db", tmp_path / "journal.txt"
    ids = _book_all(db, 60)
    workers = [_spawn(db, journal, seed) for _ in range(2)]
    assert [_reap(w) for w in workers] == [0, 0]
    _check(db, journal, ids, seed)
    owners = {line.split()[-1] for line in journal.read_text().splitlines() if line.startswith("dial")}
    assert len(owners) == 2, "both workers should have dialed"


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "worker":
    sys.exit(worker(sys.argv[2], sys.argv[3], int(sys.argv[4])))
