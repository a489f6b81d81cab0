"""How a stream's cursor moves over the pages of a run, and which records it already covers."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from crmsync.model import Contact, Cursor


def advance(cursor: Cursor, contacts: Iterable[Contact], *, cap: datetime) -> Cursor:
    """Move a cursor past a page of contacts, never beyond the run's start ``cap``.

    ``ids_at_value`` keeps the ids processed within the cursor's last second, so the next read
    (which starts at that second) skips them unless they changed again.
    """
    stamped = [c for c in contacts if c.modified_at is not None]
    if not stamped:
        return cursor
    top = min(max(c.modified_at for c in stamped), cap)  # type: ignore[type-var]
    if cursor.value is not None and top < cursor.value:
        return cursor
    floor = top.replace(microsecond=0)
    ids = frozenset(c.id for c in stamped if floor <= c.modified_at <= top)  # type: ignore[operator]
    if cursor.value is not None and cursor.value.replace(microsecond=0) == floor:
        ids |= cursor.ids_at_value
    return Cursor(cursor.stream, top, ids)


def already_processed(contact: Contact, cursor: Cursor) -> bool:
    """Whether an incremental read met a record the previous run processed in this state."""
    return (
        cursor.value is not None
        and contact.id in cursor.ids_at_value
        and contact.modified_at is not None
        and contact.modified_at <= cursor.value
    )
