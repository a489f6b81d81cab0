"""Records and associations held in memory, with ids in ascending order for list paging.

One :class:`ObjectStore` per object type. Ids are numeric strings drawn from one counter shared
by all types (so an id names one record anywhere), which keeps every store's id list sorted by
appending. ``version`` changes on every write, so search results can be cached per version.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Record:
    """One CRM object: wire-ready property strings plus its system timestamps (epoch ms)."""

    id: str
    properties: dict[str, str | None]
    created_ms: int
    updated_ms: int
    archived: bool = False
    archived_ms: int | None = None
    #: Recorded changes per property, oldest first, as ``[epoch ms, value]`` (``None``: the
    #: record keeps no history of its own and shows its current values, stamped at the last
    #: change). A property absent here was set at creation and never changed since.
    history: dict[str, list[list[Any]]] | None = None
    #: History was not kept for this record before its recorded changes (an import).
    history_missing: bool = False

    def to_json(self) -> dict[str, Any]:
        """Return every stored field (persistence and the admin records view)."""
        return {
            "id": self.id,
            "properties": dict(self.properties),
            "created_ms": self.created_ms,
            "updated_ms": self.updated_ms,
            "archived": self.archived,
            "archived_ms": self.archived_ms,
            "history": self.history,
            "history_missing": self.history_missing,
        }

    def history_of(self, name: str, current: str | None) -> list[list[Any]]:
        """Return one property's ``[ms, value]`` entries, oldest first (``current``: its value)."""
        if self.history is None:
            return [[self.updated_ms, current]] if current is not None else []
        if name in self.history:
            return self.history[name]
        if self.history_missing or current is None:
            return []
        return [[self.created_ms, current]]

    def record_change(self, name: str, old: str | None, new: str | None, now_ms: int) -> None:
        """Append a change to the history (when the record keeps one)."""
        if self.history is None or old == new:
            return
        entries = self.history.setdefault(name, [])
        if not entries and old is not None and not self.history_missing:
            entries.append([self.created_ms, old])
        entries.append([now_ms, new])


class ObjectStore:
    """All records of one object type, plus a unique-value index (e.g. contacts by email)."""

    def __init__(self, name: str, unique: tuple[str, ...] = ()) -> None:
        self.name = name
        self.records: dict[str, Record] = {}
        self._ids: list[int] = []  # ascending; ids only grow, so appends keep it sorted
        self._unique: dict[str, dict[str, str]] = {p: {} for p in unique}
        self.version = 0

    def __len__(self) -> int:
        return len(self.records)

    def add(self, record: Record) -> None:
        """Insert a new record."""
        self.records[record.id] = record
        number = int(record.id)
        if self._ids and number < self._ids[-1]:
            bisect.insort(self._ids, number)
        else:
            self._ids.append(number)
        self._index(record, None)
        self.version += 1

    def get(self, record_id: str, *, archived: bool = False) -> Record | None:
        """Return a record by id, only when its archived flag matches."""
        record = self.records.get(record_id)
        return record if record is not None and record.archived == archived else None

    def find_unique(self, prop: str, value: str) -> Record | None:
        """Return the live record whose unique property ``prop`` equals ``value``."""
        if prop == "hs_object_id":
            return self.get(value)
        record_id = self._unique.get(prop, {}).get(value.lower())
        return self.get(record_id) if record_id is not None else None

    def is_indexed(self, prop: str) -> bool:
        """Return whether ``prop`` has a unique-value index."""
        return prop == "hs_object_id" or prop in self._unique

    def write(self, record: Record, values: dict[str, str | None], now_ms: int) -> None:
        """Apply property values and bump the change timestamp."""
        old = dict(record.properties)
        for name, value in values.items():
            if value is None:  # cleared ("" on the wire) reads back as null
                record.properties.pop(name, None)
            else:
                record.properties[name] = value
        record.updated_ms = max(now_ms, record.updated_ms)
        for name in values:
            record.record_change(name, old.get(name), record.properties.get(name),
                                 record.updated_ms)
        self._index(record, old)
        self.version += 1

    def archive(self, record: Record, now_ms: int) -> None:
        """Archive (soft-delete) a record."""
        record.archived = True
        record.archived_ms = now_ms
        for prop, index in self._unique.items():
            value = record.properties.get(prop)
            if value and index.get(value.lower()) == record.id:
                del index[value.lower()]
        self.version += 1

    def ids_after(self, after: int | None) -> Iterator[Record]:
        """Yield records in ascending id order, starting after id ``after``."""
        start = 0 if after is None else bisect.bisect_right(self._ids, after)
        for number in self._ids[start:]:
            yield self.records[str(number)]

    def _index(self, record: Record, old: dict[str, str | None] | None) -> None:
        for prop, index in self._unique.items():
            before = (old or {}).get(prop)
            after = record.properties.get(prop)
            if before and before != after and index.get(before.lower()) == record.id:
                del index[before.lower()]
            if after and not record.archived:
                index[after.lower()] = record.id


@dataclass
class Associations:
    """Directed association edges; each link is stored in both directions with its own type id.

    ``edges[(from_type, from_id)][(to_type, to_id)]`` is the set of association type ids.
    """

    edges: dict[tuple[str, str], dict[tuple[str, str], set[int]]] = field(default_factory=dict)
    #: Changes on every link or unlink, so cached searches that filter on links go stale.
    version: int = 0

    def link(self, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int,
             inverse_id: int) -> None:
        """Associate two records (both directions)."""
        self.edges.setdefault((from_type, from_id), {}).setdefault((to_type, to_id), set()).add(
            type_id
        )
        self.edges.setdefault((to_type, to_id), {}).setdefault((from_type, from_id), set()).add(
            inverse_id
        )
        self.version += 1

    def unlink(self, from_type: str, from_id: str, to_type: str, to_id: str) -> None:
        """Remove every association between two records."""
        self.edges.get((from_type, from_id), {}).pop((to_type, to_id), None)
        self.edges.get((to_type, to_id), {}).pop((from_type, from_id), None)
        self.version += 1

    def move(self, type_name: str, old_id: str, new_id: str) -> None:
        """Re-point every link of record ``old_id`` to ``new_id`` (a merge), keeping type ids.

        A link between the two records themselves is dropped rather than becoming a self-link.
        """
        links = self.edges.pop((type_name, old_id), {})
        mine = self.edges.setdefault((type_name, new_id), {})
        for (to_type, to_id), types in links.items():
            back = self.edges.get((to_type, to_id), {}).pop((type_name, old_id), set())
            if (to_type, to_id) == (type_name, new_id):
                continue
            mine.setdefault((to_type, to_id), set()).update(types)
            self.edges.setdefault((to_type, to_id), {}).setdefault(
                (type_name, new_id), set()).update(back)
        self.version += 1

    def of(self, from_type: str, from_id: str, to_type: str) -> list[tuple[str, set[int]]]:
        """Return ``(to_id, type ids)`` for one record's links to ``to_type``, by id."""
        links = self.edges.get((from_type, from_id), {})
        found = [(tid, types) for (ttype, tid), types in links.items() if ttype == to_type]
        return sorted(found, key=lambda item: int(item[0]))

    def to_json(self) -> list[list[Any]]:
        """Return every directed edge as ``[from_type, from_id, to_type, to_id, [type ids]]``."""
        return [
            [ft, fid, tt, tid, sorted(types)]
            for (ft, fid), links in self.edges.items()
            for (tt, tid), types in links.items()
        ]

    @classmethod
    def from_json(cls, rows: list[list[Any]]) -> Associations:
        """Rebuild from :meth:`to_json` output."""
        assoc = cls()
        for ft, fid, tt, tid, types in rows:
            assoc.edges.setdefault((ft, fid), {})[(tt, tid)] = set(types)
        return assoc
