"""Two worker processes' views of the agents, agreeing through one store file (no sockets)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from ivr.handoff.agents import Agent, AgentEvent, AgentPool, AgentState, PoolConfig
from ivr.handoff.board import AgentBoard
from ivr.store.sqlite import SqliteStore
from ivr.store.thread import StoreThread

T0 = 1_750_000_000.0


def pool() -> AgentPool:
    agents = [
        Agent(name, name, f"sip:{name}@127.0.0.1", frozenset({"en"}), frozenset(), AgentState.AVAILABLE, T0)
        for name in ("anna", "bob")
    ]
    return AgentPool(agents, PoolConfig(wrap_up_timeout=30))


class Worker:
    """One process: its own pool, store connection and store thread, as in ``ivr serve --workers``."""

    def __init__(self, db: Path, name: str, run: str = "run-1") -> None:
        self.pool = pool()
        self.store = SqliteStore(db)
        self.thread = StoreThread()
        self.board = AgentBoard(self.pool, self.store, self.thread, owner=name, run=run)

    def close(self) -> None:
        self.thread.shutdown()
        self.store.close()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[tuple[Worker, Worker]]:
    one, two = Worker(tmp_path / "ivr.db", "w1"), Worker(tmp_path / "ivr.db", "w2")
    yield one, two
    one.close()
    two.close()


async def settle(worker: Worker) -> None:
    """Wait until the worker's queued publications are written (its store thread runs in order)."""
    await worker.thread.barrier()


def test_only_one_worker_gets_to_ring_an_agent(workers: tuple[Worker, Worker]) -> None:
    one, two = workers

    async def scenario() -> None:
        await one.board.join()
        await two.board.join()
        assert await one.board.claim("anna", T0 + 1)
        one.pool.apply("anna", AgentEvent.RING, T0 + 1)
        # The second worker still believes anna is free; the board says no, and now it knows.
        assert two.pool.pick("en", None).id == "anna"  # type: ignore[union-attr]
        assert not await two.board.claim("anna", T0 + 2)
        assert two.pool.get("anna").state is AgentState.RESERVED
        assert two.pool.pick("en", None).id == "bob"  # type: ignore[union-attr]
        assert await two.board.claim("bob", T0 + 2)

    asyncio.run(scenario())


def test_changes_reach_the_other_worker_and_wrap_up_ends_where_it_began(
    workers: tuple[Worker, Worker],
) -> None:
    one, two = workers

    async def scenario() -> None:
        await one.board.join()
        await two.board.join()
        assert await one.board.claim("anna", T0)
        for event, at in ((AgentEvent.RING, T0), (AgentEvent.ANSWERED, T0 + 5), (AgentEvent.HANGUP, T0 + 60)):
            one.pool.apply("anna", event, at)
        await settle(one)
        await two.board.sync()
        anna = two.pool.get("anna")
        assert (anna.state, anna.since, anna.elsewhere) == (AgentState.WRAP_UP, T0 + 60, True)
        assert two.pool.working("en", None) == 2 and two.pool.available("en", None) == 1
        # Only the worker that owns the wrap-up times it out; the other hears about it.
        assert two.pool.tick(T0 + 200) == [] and two.pool.get_timer() is None
        (change,) = one.pool.tick(T0 + 200)
        assert change.new is AgentState.AVAILABLE and change.handle_time == 195
        await settle(one)
        await two.board.sync()
        assert two.pool.get("anna").state is AgentState.AVAILABLE
        # An agent logs out through the API on the second worker: the first one follows.
        two.pool.apply("bob", AgentEvent.LOGOUT, T0 + 300)
        await settle(two)
        await one.board.sync()
        assert one.pool.get("bob").state is AgentState.OFFLINE

    asyncio.run(scenario())


def test_a_new_start_of_the_server_clears_what_a_dead_one_left(tmp_path: Path) -> None:
    dead = Worker(tmp_path / "ivr.db", "old", run="run-1")

    async def first_life() -> None:
        await dead.board.join()
        assert await dead.board.claim("anna", T0)  # killed while anna's phone rang

    asyncio.run(first_life())
    dead.close()
    fresh = Worker(tmp_path / "ivr.db", "new", run="run-2")

    async def second_life() -> None:
        await fresh.board.join()
        assert fresh.pool.get("anna").state is AgentState.AVAILABLE
        assert await fresh.board.claim("anna", T0 + 10)

    asyncio.run(second_life())
    assert [row[:2] for row in fresh.store.board_read()] == [("anna", "reserved"), ("bob", "available")]
    fresh.close()


def test_an_agent_nobody_joined_is_claimed_once(tmp_path: Path) -> None:
    with SqliteStore(tmp_path / "ivr.db") as store:
        assert store.board_claim("anna", "w1", "run", T0)
        assert not store.board_claim("anna", "w2", "run", T0)
        store.board_publish("anna", "available", T0 + 5, "w1")
        assert store.board_claim("anna", "w2", "run", T0 + 6)


def test_a_lost_write_is_repaired_from_the_pool_but_not_a_claim_in_flight(
    workers: tuple[Worker, Worker],
) -> None:
    one, _ = workers

    async def scenario() -> None:
        await one.board.join()
        one.store.board_publish("anna", "busy", T0, "w1")  # the board says busy; the pool never did
        await one.board.sync()
        await settle(one)
        assert dict((r[0], r[1]) for r in one.store.board_read())["anna"] == "available"
        # Claimed, and about to ring: the pool still says available, and that is no reason to undo it.
        assert await one.board.claim("bob", T0 + 1)
        await one.board.sync()
        await settle(one)
        assert dict((r[0], r[1]) for r in one.store.board_read())["bob"] == "reserved"

    asyncio.run(scenario())
