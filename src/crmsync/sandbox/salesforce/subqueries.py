"""Nested SOQL: child relationship queries, semi-/anti-joins, ``FIELDS()``.

* ``SELECT Id, (SELECT Id FROM Contacts ORDER BY LastName LIMIT 5) FROM Account``: each parent
  row carries ``"Contacts": {"totalSize", "done": true, "records": [...]}``, or ``null`` when it
  has no children; the child query's WHERE, ORDER BY and LIMIT apply per parent.
* ``... WHERE Id IN (SELECT WhoId FROM Task WHERE ...)`` (``NOT IN`` for an anti-join): the inner
  query selects one id or reference field; the outer field must be an id or a reference.
* ``FIELDS(STANDARD)`` expands to the object's standard fields, ``FIELDS(CUSTOM)`` to its custom
  ones and ``FIELDS(ALL)`` to both; the last two need ``LIMIT`` 200 or less, as on the real API.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from crmsync.sandbox.salesforce import soql
from crmsync.sandbox.salesforce.describe import child_relationships
from crmsync.sandbox.salesforce.soql import SoqlError
from crmsync.sandbox.salesforce.store import Record
from crmsync.sandbox.salesforce.values import ID_TYPES

if TYPE_CHECKING:
    from crmsync.sandbox.salesforce.query import Column, CompiledQuery


def expand_fields(query: CompiledQuery, item: soql.Fields) -> list[soql.Path]:
    """The field paths ``FIELDS(STANDARD|CUSTOM|ALL)`` stands for on the query's object."""
    if item.which != "STANDARD" and (query.parsed.limit is None or query.parsed.limit > 200):
        raise SoqlError(
            f"\n{query.text}\n\nThe SOQL FIELDS function must have a LIMIT of at most 200",
            "MALFORMED_QUERY")
    wanted = {"STANDARD": (False,), "CUSTOM": (True,), "ALL": (False, True)}[item.which]
    return [soql.Path((f.name,)) for f in query.obj.fields.values() if f.custom in wanted]


class ChildQuery:
    """A child relationship query, run once for all parents and split by parent id."""

    def __init__(self, parent: CompiledQuery, sub: soql.SubQuery) -> None:
        from crmsync.sandbox.salesforce.query import CompiledQuery

        name = sub.query.sobject
        objects = list(parent.store.schema.values())
        found = [rel for rel in child_relationships(parent.obj, objects)
                 if (rel["relationshipName"] or "").lower() == name.lower()]
        if not found:
            raise SoqlError(
                f"\n{parent.text}\n\nDidn't understand relationship '{name}' in FROM part of "
                "query call. If you are attempting to use a custom relationship, be sure to "
                "append the '__r' after the custom relationship name.", "INVALID_TYPE")
        #: The relationship name as the schema spells it (the output key).
        self.name = str(found[0]["relationshipName"])
        self.fields = [str(rel["field"]) for rel in found]  # Task.WhoId and Task.WhatId...
        inner = dataclasses.replace(sub.query, sobject=str(found[0]["childSObject"]))
        self.query = CompiledQuery(parent.text, parent.store, parent.now, parent.api_version,
                                   parsed=inner)
        if self.query.is_aggregate or self.query.children:
            raise SoqlError(f"\n{parent.text}\n\nnested query in a child relationship query "
                            "must select fields only", "MALFORMED_QUERY")
        self._by_parent: dict[str, list[Record]] | None = None

    def render(self, parent_id: str) -> dict[str, Any] | None:
        """The nested result for one parent row (None when it has no matching children)."""
        if self._by_parent is None:
            self._by_parent = {}
            for rec in self.query.matching(include_deleted=False):
                for field in self.fields:
                    if rec.get(field):
                        self._by_parent.setdefault(rec[field], []).append(rec)
        rows = self._by_parent.get(parent_id, [])
        start = self.query.parsed.offset or 0
        end = None if self.query.parsed.limit is None else start + self.query.parsed.limit
        rows = rows[start:end]
        if not rows:
            return None
        return {"totalSize": len(rows), "done": True,
                "records": [self.query.render(rec) for rec in rows]}


def semi_join(
    outer: CompiledQuery, column: Column, sub: soql.SubQuery, negate: bool
) -> Callable[[Record], bool]:
    """The predicate of ``column [NOT] IN (SELECT field FROM ...)``."""
    from crmsync.sandbox.salesforce.query import CompiledQuery

    if column.leaf.type not in ID_TYPES:
        raise SoqlError(f"\n{outer.text}\n\nsemi join sub-selects are only allowed on id fields "
                        f"(not {column.dotted})", "MALFORMED_QUERY")
    inner = CompiledQuery(outer.text, outer.store, outer.now, outer.api_version,
                          parsed=sub.query)
    if (len(inner.columns) != 1 or inner.is_aggregate or inner.children
            or inner.columns[0].leaf.type not in ID_TYPES):
        raise SoqlError(f"\n{outer.text}\n\nsemi join sub-select must select exactly one id "
                        "field", "MALFORMED_QUERY")
    pick = inner.columns[0].get
    ids = {value for value in (pick(rec) for rec in inner.run()) if value}
    get = column.get
    if negate:
        return lambda rec: get(rec) not in ids
    return lambda rec: get(rec) in ids
