"""Durable state: callbacks (with their audit log) and call detail records.

``base`` defines the interface, one protocol per concern (callbacks, call records, the agent board,
the live state of workers; ``Store`` is all of them), and the callback state machine; ``sqlite``
implements them on SQLite in WAL mode. A second backend (PostgreSQL, for several IVR nodes sharing
one store) would implement the same protocols; none exists yet.
"""

from ivr.store.base import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    AgentBoardStore,
    CallbackRecord,
    CallbackState,
    CallbackStore,
    CallRecord,
    CallRecordStore,
    LiveStateStore,
    StaleState,
    Store,
    StoreError,
)

__all__ = [
    "ACTIVE_STATES",
    "TERMINAL_STATES",
    "AgentBoardStore",
    "CallRecord",
    "CallRecordStore",
    "CallbackRecord",
    "CallbackState",
    "CallbackStore",
    "LiveStateStore",
    "StaleState",
    "Store",
    "StoreError",
]
