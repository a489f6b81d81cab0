"""In-memory record storage for the emulated org: tables, id sequences, unique indexes, undo.

Records are plain dicts keyed by the schema's field names. A write never mutates a stored dict:
it stores a new one. Query cursors keep references to the dicts they matched, so a page fetched
later shows the rows as they were when the query ran, as a real query locator does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from crmsync.sandbox.salesforce.ids import make_id
from crmsync.sandbox.salesforce.schema import FieldDef, ObjectDef

Record = dict[str, Any]


class Store:
    """Every record of the org, by object and id, with external-id/unique indexes."""

    def __init__(self, schema: dict[str, ObjectDef]) -> None:
        self.schema = schema
        self.tables: dict[str, dict[str, Record]] = {obj.name: {} for obj in schema.values()}
        self._by_prefix = {obj.key_prefix: obj.name for obj in schema.values()}
        self._sequences: dict[str, int] = {}
        self._indexes: dict[tuple[str, str], dict[str, set[str]]] = {}
        self._undo: list[tuple[str, str, Record | None]] | None = None
        self._marks: list[int] = []  # undo-log lengths at each open begin()
        for obj in schema.values():
            for fdef in obj.fields.values():
                if fdef.indexed:
                    self.add_index(obj.name, fdef)

    # -- schema ------------------------------------------------------------------------------

    def object(self, name: str) -> ObjectDef | None:
        """Return an object definition by name, any case."""
        return self.schema.get(name.lower())

    def object_for_id(self, record_id: str) -> str | None:
        """Return the object name an id's key prefix belongs to."""
        return self._by_prefix.get(record_id[:3])

    def add_index(self, obj_name: str, fdef: FieldDef) -> None:
        """Start indexing a field (a new external-id or unique field) over existing rows."""
        index: dict[str, set[str]] = {}
        for rec in self.tables.get(obj_name, {}).values():
            key = _index_key(rec.get(fdef.name))
            if key is not None:
                index.setdefault(key, set()).add(rec["Id"])
        self._indexes[(obj_name, fdef.name)] = index

    # -- ids ---------------------------------------------------------------------------------

    def new_id(self, obj_name: str) -> str:
        """Return the next unused id for an object type."""
        prefix = self.schema[obj_name.lower()].key_prefix
        number = self._sequences.get(prefix, 0) + 1
        self._sequences[prefix] = number
        return make_id(prefix, number)

    def sequences(self) -> dict[str, int]:
        """Return the id counters (for state files)."""
        return dict(self._sequences)

    def set_sequences(self, sequences: dict[str, int]) -> None:
        """Restore id counters."""
        self._sequences = dict(sequences)

    # -- reads -------------------------------------------------------------------------------

    def get(self, obj_name: str, record_id: str) -> Record | None:
        """Return a record (deleted ones included) or None."""
        return self.tables[obj_name].get(record_id)

    def find(self, record_id: str) -> Record | None:
        """Return a record of any type by id, or None."""
        obj = self.object_for_id(record_id)
        return None if obj is None else self.tables[obj].get(record_id)

    def rows(self, obj_name: str) -> Iterator[Record]:
        """Iterate over every record of a type in insertion order."""
        return iter(self.tables[obj_name].values())

    def lookup(self, obj_name: str, field_name: str, value: Any) -> set[str]:
        """Return ids whose indexed field equals ``value`` (case-insensitive)."""
        key = _index_key(value)
        index = self._indexes.get((obj_name, field_name))
        if index is None or key is None:
            return set()
        return set(index.get(key, ()))

    # -- writes ------------------------------------------------------------------------------

    def put(self, obj_name: str, record: Record) -> None:
        """Insert or replace a record, keeping indexes and the undo log up to date."""
        table = self.tables[obj_name]
        old = table.get(record["Id"])
        if self._undo is not None:
            self._undo.append((obj_name, record["Id"], old))
        self._reindex(obj_name, old, record)
        table[record["Id"]] = record

    def remove(self, obj_name: str, record_id: str) -> None:
        """Erase a record for good (hard delete)."""
        old = self.tables[obj_name].pop(record_id, None)
        if old is None:
            return
        if self._undo is not None:
            self._undo.append((obj_name, record_id, old))
        self._reindex(obj_name, old, None)

    def begin(self) -> None:
        """Start recording writes so they can be rolled back; nests (``/composite`` with
        ``allOrNone`` around a collection call that has its own)."""
        if self._undo is None:
            self._undo = []
        self._marks.append(len(self._undo))

    def commit(self) -> None:
        """Keep every write since the matching :meth:`begin`."""
        if self._marks:
            self._marks.pop()
        if not self._marks:
            self._undo = None

    def rollback(self) -> None:
        """Undo every write since the matching :meth:`begin`."""
        mark = self._marks.pop() if self._marks else 0
        undo = self._undo or []
        for obj_name, record_id, old in reversed(undo[mark:]):
            table = self.tables[obj_name]
            current = table.get(record_id)
            self._reindex(obj_name, current, old)
            if old is None:
                table.pop(record_id, None)
            else:
                table[record_id] = old
        del undo[mark:]
        if not self._marks:
            self._undo = None

    def _reindex(self, obj_name: str, old: Record | None, new: Record | None) -> None:
        for (indexed_obj, field_name), index in self._indexes.items():
            if indexed_obj != obj_name:
                continue
            old_key = None if old is None else _index_key(old.get(field_name))
            new_key = None if new is None else _index_key(new.get(field_name))
            if old_key == new_key and (old is None) == (new is None):
                continue
            if old is not None and old_key is not None:
                ids = index.get(old_key)
                if ids is not None:
                    ids.discard(old["Id"])
                    if not ids:
                        del index[old_key]
            if new is not None and new_key is not None:
                index.setdefault(new_key, set()).add(new["Id"])


def _index_key(value: Any) -> str | None:
    # External ids and unique text fields match case-insensitively unless declared
    # case-sensitive, which crmsync never does.
    if value is None or value == "":
        return None
    return str(value).casefold()
