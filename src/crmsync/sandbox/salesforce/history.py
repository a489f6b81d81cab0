"""``ContactHistory`` rows: one per change of a tracked Contact field, as Salesforce keeps them.

Seeding writes the seed's recorded changes (:mod:`crmsync.sandbox.history`); every later update
of a tracked field through the API (or a sandbox "user edit") adds its own row, so a client
reading history sees what it changed too. Rows are read-only to clients.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crmsync.sandbox.salesforce.schema import TRACKED_CONTACT_FIELDS
from crmsync.sandbox.salesforce.store import Record, Store

_DATA_TYPES = {"boolean": "Boolean", "double": "Double", "int": "Double", "currency": "Currency",
               "datetime": "DateTime", "date": "Date"}


def history_row(store: Store, contact_id: str, field: str, old: Any, new: Any, at: datetime,
                user_id: str) -> None:
    """Store one ``ContactHistory`` row (``field`` ``created`` marks the record's creation)."""
    fdef = store.schema["contact"].field(field)
    data_type = _DATA_TYPES.get(fdef.type, "Text") if fdef is not None else "Text"
    record: Record = {
        "Id": store.new_id("ContactHistory"), "IsDeleted": False, "ContactId": contact_id,
        "CreatedById": user_id, "CreatedDate": at, "Field": field, "DataType": data_type,
        "OldValue": old, "NewValue": new,
        # Not a field of ContactHistory (queries cannot select it): the emulator's own
        # "newest row" bookkeeping reads it from every table.
        "SystemModstamp": at,
    }
    store.put("ContactHistory", record)


def track_update(store: Store, before: Record, after: Record, at: datetime,
                 user_id: str) -> None:
    """Add a row for each tracked Contact field an update changed."""
    for field in TRACKED_CONTACT_FIELDS:
        if before.get(field) != after.get(field):
            history_row(store, str(after["Id"]), field, before.get(field), after.get(field), at,
                        user_id)
