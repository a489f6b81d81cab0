"""The state store: run ledger, cursors, write journal, task registry, rejected records, leases
and every contact's current decision.

One SQLAlchemy Core schema serves SQLite (the default, a file in WAL mode) and PostgreSQL (the
shared store of sharded workers). Tables are created on open; a ``schema_version`` row makes
future migrations possible and refuses a store written by a newer crmsync.

Crash safety rests on ordering, not on the CRM: every write is journaled ``pending`` before the
CRM call and settled ``applied``/``rejected`` after, and every task create is recorded as an
``intent`` before the call, so a run killed at any point leaves evidence the next run settles.
All timestamps are timezone-aware UTC; naive datetimes are refused.

Each part lives in its own module (``ledger``, ``cursors``, ``journal``, ``tasks``, ``leases``,
``rejections``, ``contacts``, ``shards``, ``shadow``; ``pages`` for the per-page calls of a sync
run), as a mixin of :class:`StateStore`. Rows are written through ``bulk`` (one compiled
executemany per table).
"""

from crmsync.state.errors import StateError, StoreCorrupt, StoreLost, StoreUnavailable, shown_url
from crmsync.state.records import (
    ContactRow,
    ContactState,
    JournalEntry,
    PageContext,
    PendingWrite,
    RunRecord,
    StreamStamp,
    TaskRecord,
    stored_category,
)
from crmsync.state.schema import REDECIDE_AFTER_UPGRADE, SCHEMA_VERSION
from crmsync.state.shadow import RUN_PART, ShadowRecord
from crmsync.state.shards import ShardRecord
from crmsync.state.store import StateStore

__all__ = [
    "ContactRow",
    "ContactState",
    "JournalEntry",
    "PageContext",
    "PendingWrite",
    "REDECIDE_AFTER_UPGRADE",
    "RunRecord",
    "RUN_PART",
    "SCHEMA_VERSION",
    "ShadowRecord",
    "ShardRecord",
    "StateError",
    "StateStore",
    "StoreCorrupt",
    "StoreLost",
    "StoreUnavailable",
    "StreamStamp",
    "TaskRecord",
    "shown_url",
    "stored_category",
]
