"""Durable state: callbacks (with their audit log) and call detail records.

``base`` defines the interface and the callback state machine; ``sqlite`` implements it on SQLite
in WAL mode. PostgreSQL can implement the same protocol when several IVR nodes share one store.
"""

from ivr.store.base import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    CallbackRecord,
    CallbackState,
    CallRecord,
    StaleState,
    Store,
    StoreError,
)

__all__ = [
    "ACTIVE_STATES",
    "TERMINAL_STATES",
    "CallRecord",
    "CallbackRecord",
    "CallbackState",
    "StaleState",
    "Store",
    "StoreError",
]
