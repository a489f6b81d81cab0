"""Run parsed SOQL against the store: resolve names and types, filter, sort, render rows.

A query is compiled once into Python closures (one per field path and condition) and run over
the object's rows; the sorted result is what a query locator pages through.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from crmsync.sandbox.salesforce import aggregate, dates, soql, subqueries
from crmsync.sandbox.salesforce.ids import normalize_id
from crmsync.sandbox.salesforce.schema import FieldDef, ObjectDef
from crmsync.sandbox.salesforce.soql import SoqlError
from crmsync.sandbox.salesforce.store import Record, Store
from crmsync.sandbox.salesforce.values import (
    ID_TYPES,
    NUMBER_TYPES,
    STRING_TYPES,
    to_csv,
    to_json,
)

Getter = Callable[[Record], Any]
Predicate = Callable[[Record], bool]


@dataclass
class Column:
    """One resolved SELECT path: canonical names along the way, the leaf field, a getter."""

    names: tuple[str, ...]  # canonical spelling: ("Account", "Name")
    leaf: FieldDef
    get: Getter
    parents: tuple[Getter, ...]  # parent record getters for each relationship step
    #: The output key of the leaf when it differs from the field name (``toLabel(x) alias``).
    key: str | None = None

    @property
    def dotted(self) -> str:
        """``Account.Name`` (the Bulk CSV header)."""
        return ".".join(self.names)


class CompiledQuery:
    """A SOQL statement bound to the org schema, ready to run."""

    def __init__(
        self, text: str, store: Store, now: datetime, api_version: str,
        parsed: soql.Query | None = None,
    ) -> None:
        self.text = text
        self.parsed = parsed if parsed is not None else soql.parse(text)
        self.store = store
        self.now = now
        self.api_version = api_version
        obj = store.object(self.parsed.sobject)
        if obj is None:
            raise SoqlError(
                f"\n{text}\n\nsObject type '{self.parsed.sobject}' is not supported. If you are "
                "attempting to use a custom object, be sure to append the '__c' after the entity "
                "name. Please reference your WSDL or the describe call for the appropriate names.",
                "INVALID_TYPE",
            )
        self.obj = obj
        self.columns: list[Column] = []
        #: Aggregate calls of the select list, with their resolved field (None for COUNT()).
        self.aggregates: list[tuple[soql.Aggregate, Column | None]] = []
        #: Child relationship queries of the select list.
        self.children: list[subqueries.ChildQuery] = []
        #: What a row renders, in select order: columns and child queries.
        self.output: list[Column | subqueries.ChildQuery] = []
        seen: set[str] = set()
        for item in self.parsed.select:
            if isinstance(item, soql.Aggregate):
                column = None if item.path is None else self.resolve(item.path)
                self.aggregates.append((item, column))
            elif isinstance(item, soql.SubQuery):
                child = subqueries.ChildQuery(self, item)
                self.children.append(child)
                self.output.append(child)
            elif isinstance(item, soql.Fields):
                for path in subqueries.expand_fields(self, item):
                    column = self.resolve(path)
                    if column.dotted.casefold() not in seen:  # FIELDS() overlaps are fine
                        self._add_column(column, seen)
            else:
                column = self.resolve(item.path if isinstance(item, soql.Label) else item)
                if isinstance(item, soql.Label):
                    if column.leaf.type not in ("picklist", "multipicklist", "combobox"):
                        raise SoqlError(f"\n{text}\n\ntoLabel() needs a picklist field, not "
                                        f"{column.dotted}", "INVALID_FIELD")
                    # Picklist labels equal their values in the sandbox's (English) schema.
                    column = dataclasses.replace(column, key=item.alias)
                self._add_column(column, seen)
        self.group_by = [self.resolve(p) for p in self.parsed.group_by]
        #: Whether rows come back as ``AggregateResult`` (aggregates or GROUP BY).
        self.is_aggregate = bool(self.aggregates or self.group_by)
        grouped = {c.dotted.casefold() for c in self.group_by}
        if self.is_aggregate:
            loose = [c for c in self.columns if c.dotted.casefold() not in grouped]
            if loose:
                raise SoqlError(
                    f"Field must be grouped or aggregated: {loose[0].dotted}", "MALFORMED_QUERY"
                )
        self.predicate = self.compile(self.parsed.where) if self.parsed.where else None
        self.order = [(self.resolve(o.path), o) for o in self.parsed.order_by]
        if self.is_aggregate:
            aggregate.check(self)

    def _add_column(self, column: Column, seen: set[str]) -> None:
        key = column.dotted.casefold()
        if key in seen:
            raise SoqlError(
                f"\n{self.text}\n\nduplicate field selected: {column.names[-1]}", "INVALID_FIELD"
            )
        seen.add(key)
        self.columns.append(column)
        self.output.append(column)

    # -- name resolution ---------------------------------------------------------------------

    def resolve(self, path: soql.Path) -> Column:
        """Resolve a field path (with parent relationships) against the schema."""
        obj: ObjectDef | None = self.obj
        names: list[str] = []
        parents: list[Getter] = []
        step: Getter = _identity
        parts = list(path.parts)
        if len(parts) > 1 and parts[0].lower() == self.obj.name.lower():
            parts = parts[1:]  # "Contact.Email" FROM Contact is allowed
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if obj is None:  # polymorphic parent: resolve on the actual record's type
                return self._polymorphic(names, parents, step, parts[i:], path)
            if last:
                fdef = obj.field(part)
                if fdef is None:
                    raise self._no_column(part, obj)
                names.append(fdef.name)
                return Column(tuple(names), fdef, _leaf(step, fdef.name), tuple(parents))
            ref = obj.relationship(part)
            if ref is None:
                raise SoqlError(
                    f"\n{self.text}\n\nDidn't understand relationship '{part}' in field path. If "
                    "you are attempting to use a custom relationship, be sure to append the '__r' "
                    "after the custom relationship name.",
                    "INVALID_FIELD",
                )
            names.append(ref.relationship_name or part)
            step = _parent(step, ref.name, self.store)
            parents.append(step)
            obj = self.store.object(ref.reference_to[0]) if len(ref.reference_to) == 1 else None
        raise SoqlError(f"unexpected field path {path}")

    def _polymorphic(
        self, names: list[str], parents: list[Getter], step: Getter, rest: list[str],
        path: soql.Path,
    ) -> Column:
        if len(rest) != 1:
            raise SoqlError(f"Didn't understand relationship in field path {path}", "INVALID_FIELD")
        wanted = rest[0]
        store = self.store
        if wanted.lower() == "type":
            fdef = FieldDef("Type", "string", length=40, createable=False, updateable=False)

            def get_type(rec: Record) -> Any:
                parent = step(rec)
                return None if parent is None else store.object_for_id(parent["Id"])

            return Column((*names, "Type"), fdef, get_type, tuple(parents))
        # The field must exist on some target (Who.Name works for Contact and Lead alike).
        for obj in store.schema.values():
            fdef = obj.field(wanted)
            if fdef is not None and obj.name in ("Contact", "Lead", "Account", "Opportunity"):
                return Column((*names, fdef.name), fdef, _leaf(step, fdef.name), tuple(parents))
        raise self._no_column(wanted, None)

    def _no_column(self, name: str, obj: ObjectDef | None) -> SoqlError:
        entity = obj.name if obj else "Name"
        return SoqlError(
            f"\n{self.text}\n\nNo such column '{name}' on entity '{entity}'. If you are "
            "attempting to use a custom field, be sure to append the '__c' after the custom field "
            "name. Please reference your WSDL or the describe call for the appropriate names.",
            "INVALID_FIELD",
        )

    # -- WHERE -------------------------------------------------------------------------------

    def compile(self, node: Any) -> Predicate:
        """Compile a condition tree into a predicate over records."""
        if isinstance(node, soql.BoolOp):
            parts = [self.compile(item) for item in node.items]
            if node.op == "AND":
                return lambda rec: all(p(rec) for p in parts)
            return lambda rec: any(p(rec) for p in parts)
        if isinstance(node, soql.Not):
            inner = self.compile(node.item)
            return lambda rec: not inner(rec)
        return self._comparison(node)

    def _comparison(self, cmp: soql.Comparison) -> Predicate:
        column = self.resolve(cmp.path)
        get, ftype, name = column.get, column.leaf.type, column.leaf.name
        if isinstance(cmp.value, soql.SubQuery):
            return subqueries.semi_join(self, column, cmp.value, cmp.op == "NOT IN")
        if cmp.op in ("IN", "NOT IN"):
            assert isinstance(cmp.value, tuple)
            wanted = {_key(ftype, self._literal(ftype, name, lit, "IN")) for lit in cmp.value}
            negate = cmp.op == "NOT IN"
            return lambda rec: (_key(ftype, get(rec)) in wanted) != negate
        assert isinstance(cmp.value, soql.Literal)
        if cmp.op == "LIKE":
            if ftype not in STRING_TYPES and ftype not in ID_TYPES:
                raise SoqlError(
                    f"invalid operator on {ftype} field: LIKE ({name})",
                    "INVALID_QUERY_FILTER_OPERATOR",
                )
            pattern = _like(str(cmp.value.value))
            return lambda rec: (v := get(rec)) is not None and bool(pattern.match(str(v)))
        value = self._literal(ftype, name, cmp.value, cmp.op)
        op = cmp.op
        if isinstance(value, _Range):
            return _range_predicate(get, op, value)
        if value is None:
            if op == "=":
                return lambda rec: get(rec) is None
            if op == "!=":
                return lambda rec: get(rec) is not None
            return lambda rec: False
        target = _key(ftype, value)
        if op == "=":
            return lambda rec: _key(ftype, get(rec)) == target
        if op == "!=":
            return lambda rec: _key(ftype, get(rec)) != target
        if ftype == "boolean":
            raise SoqlError(
                f"invalid operator on boolean field: {op} ({name})", "INVALID_QUERY_FILTER_OPERATOR"
            )
        compare = _ORDERING[op]
        return lambda rec: (v := _key(ftype, get(rec))) is not None and compare(v, target)

    def _literal(self, ftype: str, name: str, lit: soql.Literal, op: str) -> Any:
        kind = lit.kind
        if kind == "null":
            return None
        ok = {
            "boolean": {"boolean"},
            "date": {"date", "relative"},
            "datetime": {"datetime", "relative"},
        }.get(ftype)
        if ok is None:
            ok = {"number"} if ftype in NUMBER_TYPES else {"string"}
        if kind not in ok:
            expected = {"datetime": "dateTime", "date": "date", "boolean": "boolean"}.get(
                ftype, "number" if ftype in NUMBER_TYPES else "string"
            )
            quoted = "should not be enclosed in quotes" if kind == "string" else (
                "should be enclosed in quotes" if expected == "string" else "is not valid"
            )
            raise SoqlError(
                f"\n{self.text}\n\nvalue of filter criterion for field '{name}' must be of type "
                f"{expected} and {quoted}",
                "INVALID_QUERY_FILTER_OPERATOR",
            )
        if kind == "relative":
            return _relative_range(lit.value, self.now, ftype)
        if ftype in ID_TYPES:
            normal = normalize_id(lit.value)
            if normal is None:
                raise SoqlError(f"invalid ID field: {lit.value}", "INVALID_QUERY_FILTER_OPERATOR")
            return normal
        return lit.value

    # -- running -----------------------------------------------------------------------------

    def run(self, include_deleted: bool = False) -> list[Record]:
        """Return matching rows, sorted, after OFFSET and LIMIT."""
        rows = self.matching(include_deleted)
        if self.is_aggregate:
            return rows  # ORDER BY, LIMIT and OFFSET apply to the groups (see .aggregate)
        start = self.parsed.offset or 0
        end = None if self.parsed.limit is None else start + self.parsed.limit
        return rows[start:end]

    def matching(self, include_deleted: bool = False) -> list[Record]:
        """Return every matching row, sorted (unsorted for aggregate queries)."""
        predicate = self.predicate
        rows = [
            rec
            for rec in self.store.rows(self.obj.name)
            if (include_deleted or not rec["IsDeleted"]) and (predicate is None or predicate(rec))
        ]
        if self.obj.name == "Task" and not include_deleted:
            # Closed tasks due more than 365 days ago are archived: only queryAll returns them.
            horizon = self.now.date() - timedelta(days=365)
            rows = [r for r in rows if not _archived(r, horizon)]
        if self.is_aggregate:
            return rows
        # Sort by the last key first; Python's sort is stable, so earlier keys win.
        for column, item in reversed(self.order):
            rows.sort(key=_sort_key(column, item), reverse=item.descending)
        return rows

    def render(self, rec: Record) -> dict[str, Any]:
        """Render one row as the REST API does: ``attributes`` then SELECT order."""
        out: dict[str, Any] = {"attributes": self._attributes(self.obj.name, rec["Id"])}
        for item in self.output:
            if isinstance(item, Column):
                self._place(out, rec, item, 0)
            else:
                out[item.name] = item.render(rec["Id"])
        return out

    def _place(self, out: dict[str, Any], rec: Record, column: Column, depth: int) -> None:
        if depth == len(column.names) - 1:
            out[column.key or column.names[depth]] = to_json(column.leaf.type, column.get(rec))
            return
        rel = column.names[depth]
        parent = column.parents[depth](rec)
        if parent is None:
            out.setdefault(rel, None)
            return
        nested = out.get(rel)
        if nested is None:
            obj_name = self.store.object_for_id(parent["Id"]) or ""
            nested = out[rel] = {"attributes": self._attributes(obj_name, parent["Id"])}
        # Deeper steps read from the original row through the column's own getters.
        self._place(nested, rec, column, depth + 1)

    def _attributes(self, obj_name: str, record_id: str) -> dict[str, str]:
        return {
            "type": obj_name,
            "url": f"/services/data/v{self.api_version}/sobjects/{obj_name}/{record_id}",
        }

    def aggregate_rows(self, rows: list[Record]) -> list[dict[str, Any]]:
        """``AggregateResult`` rows of an aggregate query over its matching rows."""
        return aggregate.result_rows(self, rows)

    def csv_header(self) -> list[str]:
        """Bulk CSV header: SELECT order, dotted names for parent fields."""
        return [c.dotted for c in self.columns]

    def csv_row(self, rec: Record) -> list[str]:
        """One Bulk CSV row of cells."""
        return [to_csv(c.leaf.type, c.get(rec)) for c in self.columns]


@dataclass(frozen=True)
class _Range:
    start: Any
    end: Any  # exclusive


def _relative_range(rel: soql.RelativeDate, now: datetime, ftype: str) -> _Range:
    start, end = dates.date_range(rel.name, rel.n, now.astimezone(UTC).date())
    if ftype == "datetime":
        return _Range(_midnight(start), _midnight(end))
    return _Range(start, end)


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def _range_predicate(get: Getter, op: str, rng: _Range) -> Predicate:
    start, end = rng.start, rng.end

    def inside(rec: Record) -> bool:
        v = get(rec)
        return v is not None and start <= v < end

    if op == "=":
        return inside
    if op == "!=":
        return lambda rec: not inside(rec)
    if op == "<":
        return lambda rec: (v := get(rec)) is not None and v < start
    if op == "<=":
        return lambda rec: (v := get(rec)) is not None and v < end
    if op == ">":
        return lambda rec: (v := get(rec)) is not None and v >= end
    return lambda rec: (v := get(rec)) is not None and v >= start


_ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _key(ftype: str, value: Any) -> Any:
    # Text comparisons and sorting in SOQL ignore case; ids do not.
    if value is not None and ftype in STRING_TYPES:
        return str(value).casefold()
    return value


def _sort_key(column: Column, item: soql.OrderItem) -> Callable[[Record], tuple[int, Any]]:
    get, ftype = column.get, column.leaf.type
    # Default: ASC NULLS FIRST, DESC NULLS LAST. With reverse=True the ranks flip, so rank the
    # nulls for the order they must have *after* reversing.
    nulls_last = item.nulls_last if item.nulls_last is not None else item.descending
    if item.descending:
        null_rank, value_rank = (0, 1) if nulls_last else (2, 1)
    else:
        null_rank, value_rank = (2, 1) if nulls_last else (0, 1)

    def key(rec: Record) -> tuple[int, Any]:
        v = get(rec)
        if v is None:
            return (null_rank, None)
        return (value_rank, _key(ftype, v))

    return key


def _like(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out) + r"\Z", re.IGNORECASE | re.DOTALL)


def _archived(task: Record, horizon: date) -> bool:
    due = task.get("ActivityDate")
    return bool(task.get("IsClosed")) and due is not None and due < horizon


def _identity(rec: Record) -> Record | None:
    return rec


def _leaf(step: Getter, name: str) -> Getter:
    if step is _identity:
        return lambda rec: rec.get(name)

    def get(rec: Record) -> Any:
        parent = step(rec)
        return None if parent is None else parent.get(name)

    return get


def _parent(step: Getter, ref_field: str, store: Store) -> Getter:
    def get(rec: Record) -> Record | None:
        current = step(rec)
        if current is None:
            return None
        ref = current.get(ref_field)
        return None if ref is None else store.find(ref)

    return get
