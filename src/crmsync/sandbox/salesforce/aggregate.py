"""Aggregate SOQL: ``GROUP BY`` and ``COUNT``/``COUNT_DISTINCT``/``MAX``/``MIN``/``SUM``/``AVG``.

Rows come back as the REST API shapes them: ``{"attributes": {"type": "AggregateResult"}, ...}``
with grouped fields under their own (leaf) names and each aggregate under its alias or
``expr0``, ``expr1``... (numbered over the unaliased aggregates, in select order). ``ORDER BY``,
``LIMIT`` and ``OFFSET`` apply to the groups; without ``ORDER BY`` groups come in ascending
order of their grouped values (nulls first). A query with aggregates and no ``GROUP BY`` gives
one row, even over no records.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmsync.sandbox.salesforce.soql import SoqlError
from crmsync.sandbox.salesforce.store import Record
from crmsync.sandbox.salesforce.values import NUMBER_TYPES, STRING_TYPES, to_json

if TYPE_CHECKING:
    from crmsync.sandbox.salesforce.query import CompiledQuery

_NOT_GROUPABLE = frozenset({"datetime", "textarea", "double", "currency", "percent"})


def check(query: CompiledQuery) -> None:
    """Refuse what Salesforce refuses: SUM/AVG of non-numbers, grouping by ungroupable fields,
    ordering by anything but grouped fields."""
    for item, column in query.aggregates:
        if column is None:
            continue
        ftype = column.leaf.type
        if item.func in ("SUM", "AVG") and ftype not in NUMBER_TYPES:
            raise SoqlError(
                f"\n{query.text}\n\nfield {column.dotted} does not support aggregate operator "
                f"{item.func}", "INVALID_FIELD")
    for column in query.group_by:
        if column.leaf.type in _NOT_GROUPABLE:
            raise SoqlError(
                f"\n{query.text}\n\nfield '{column.dotted}' can not be grouped in a query call",
                "MALFORMED_QUERY")
    grouped = {c.dotted.casefold() for c in query.group_by}
    for column, _ in query.order:
        if column.dotted.casefold() not in grouped:
            raise SoqlError(
                f"\n{query.text}\n\nOrdered field must be grouped or aggregated: {column.dotted}",
                "MALFORMED_QUERY")


def result_rows(query: CompiledQuery, rows: list[Record]) -> list[dict[str, Any]]:
    """The ``AggregateResult`` records of ``query`` over its matching ``rows``."""
    if query.parsed.count_only:
        return []
    groups: dict[tuple[Any, ...], list[Record]] = {}
    for rec in rows:
        groups.setdefault(tuple(c.get(rec) for c in query.group_by), []).append(rec)
    if not query.group_by:
        groups = {(): rows}
    keys = sorted(groups, key=lambda key: [_sortable(c.leaf.type, v)
                                           for c, v in zip(query.group_by, key, strict=True)])
    position = {c.dotted.casefold(): i for i, c in enumerate(query.group_by)}
    # The last ORDER BY key first: each stable sort keeps the earlier keys' order within ties.
    for column, item in reversed(query.order):
        i, ftype = position[column.dotted.casefold()], column.leaf.type
        nulls = [key for key in keys if key[i] is None]
        rest = sorted((key for key in keys if key[i] is not None),
                      key=lambda key, i=i, ftype=ftype: _sortable(ftype, key[i]),
                      reverse=item.descending)
        nulls_last = item.descending if item.nulls_last is None else item.nulls_last
        keys = rest + nulls if nulls_last else nulls + rest
    start = query.parsed.offset or 0
    end = None if query.parsed.limit is None else start + query.parsed.limit
    return [_row(query, key, groups[key]) for key in keys[start:end]]


def _row(query: CompiledQuery, key: tuple[Any, ...], members: list[Record]) -> dict[str, Any]:
    out: dict[str, Any] = {"attributes": {"type": "AggregateResult"}}
    values = {c.dotted.casefold(): v for c, v in zip(query.group_by, key, strict=True)}
    columns = iter(query.columns)
    aggregates = iter(query.aggregates)
    unnamed = 0
    for item in query.parsed.select:
        if hasattr(item, "func"):
            call, column = next(aggregates)
            name = call.alias
            if name is None:
                name, unnamed = f"expr{unnamed}", unnamed + 1
            out[name] = _compute(call.func, column, members)
        else:
            column = next(columns)
            out[column.names[-1]] = to_json(column.leaf.type, values[column.dotted.casefold()])
    return out


def _compute(func: str, column: Any, members: list[Record]) -> Any:
    if column is None:  # COUNT()
        return len(members)
    present = [v for v in (column.get(rec) for rec in members) if v is not None]
    if func == "COUNT":
        return len(present)
    if func == "COUNT_DISTINCT":
        return len({_sortable(column.leaf.type, v)[1] for v in present})
    if not present:
        return None
    if func == "SUM":
        return sum(present)
    if func == "AVG":
        return sum(present) / len(present)
    chosen = (max if func == "MAX" else min)(present, key=lambda v: _sortable(column.leaf.type, v))
    return to_json(column.leaf.type, chosen)


def _sortable(ftype: str, value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if ftype in STRING_TYPES:
        return (1, str(value).casefold())
    return (1, value)

