"""The agent board: one view of the agents for every worker process, kept in the store.

Each worker process runs its own ``AgentPool`` (the state machine) for the calls it handles. The
board makes the workers agree on two things:

- An agent is claimed on the board (one atomic update from available to reserved) before their
  phone rings, so two workers never ring the same agent, whatever their pools believe.
- Every state change a worker makes is published to the board, and each worker adopts the others'
  changes once per dial round (about a second), so wait estimates and the choice of agent see the
  whole contact centre, not one worker's share of it.

A single process uses the board the same way; it costs one small commit per agent state change.
Publishing is fire-and-forget on the store's own thread, in order (that thread runs one job at a
time); a failed write is logged and the next sync or claim corrects the picture.
"""

from __future__ import annotations

from ivr.handoff.agents import AgentPool, AgentState, Change
from ivr.store.base import AgentBoardStore, BoardRow
from ivr.store.thread import StoreThread


class AgentBoard:
    def __init__(
        self, pool: AgentPool, store: AgentBoardStore, thread: StoreThread, owner: str, run: str
    ) -> None:
        self.pool = pool
        self.store = store
        self.thread = thread  # the store's, shared with the handoff service
        self.owner = owner  # this process
        self.run = run  # this start of the server: shared by its workers
        self._seen: dict[str, int] = {}  # agent -> board version last adopted
        self._claimed: set[str] = set()  # claimed here, not rung yet: the board is ahead of the pool
        pool.on_change = self.publish

    async def join(self) -> None:
        rows = [(a.id, a.state.value, a.since) for a in self.pool]
        await self.thread.run(self.store.board_join, self.run, self.owner, rows)
        await self.sync()

    async def claim(self, agent_id: str, now: float) -> bool:
        """True when this process may ring the agent; else the pool learns who has them."""
        if await self.thread.run(self.store.board_claim, agent_id, self.owner, self.run, now):
            self._claimed.add(agent_id)
            return True
        await self.sync()
        return False

    def publish(self, change: Change) -> None:
        self.release(change.agent)

    def release(self, agent_id: str) -> None:
        """Put this process's state of the agent on the board (after a change, or an unused claim)."""
        self._claimed.discard(agent_id)
        agent = self.pool.get(agent_id)
        self.thread.post(
            "agent board not updated",
            self.store.board_publish, agent.id, agent.state.value, agent.since, self.owner,
        )  # fmt: skip

    async def sync(self) -> None:
        """Adopt what other processes changed since the last sync."""
        rows: list[BoardRow] = await self.thread.run(self.store.board_read)
        known = {a.id for a in self.pool}
        for agent_id, state, since, owner, version in rows:
            if agent_id not in known or agent_id in self._claimed:
                continue
            if owner == self.owner:
                if state != self.pool.get(agent_id).state.value:
                    self.release(agent_id)  # a write of ours was lost: the pool is the truth
                continue
            if self._seen.get(agent_id) == version:
                continue
            self._seen[agent_id] = version
            self.pool.adopt(agent_id, AgentState(state), since)
