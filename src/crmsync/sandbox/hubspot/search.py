"""CRM search: filterGroups, operators, one sort key, offset paging and the 10,000 cap (§3.5).

A query is compiled once into predicates and a sort key; the matching, sorted id list is cached
per (query, store version), so paging through a large result costs one filter-and-sort, not one
per page. Any write changes the version and drops stale results.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections import OrderedDict
from collections.abc import Callable
from operator import itemgetter
from typing import Any

from crmsync.sandbox.hubspot.errors import fail
from crmsync.sandbox.hubspot.properties import PropertyDef, PropertyRegistry, parse_instant
from crmsync.sandbox.hubspot.schema import OBJECT_TYPES, ObjectType
from crmsync.sandbox.hubspot.store import Associations, ObjectStore, Record

#: Names an ``associations.<type>`` filter may use for the linked object type.
TYPE_ALIASES = {
    **{t.singular: t.name for t in OBJECT_TYPES.values()},
    **{t.name: t.name for t in OBJECT_TYPES.values()},
}

MAX_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 6, 18
MAX_LIMIT, RESULT_CAP = 200, 10_000
OPERATORS = frozenset(
    {"EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY",
     "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}
)
SEARCHABLE = ("firstname", "lastname", "email", "company", "name", "domain", "dealname",
              "hs_task_subject")
_TOKEN = re.compile(r"[^\w@.*-]+")

Value = float | int | str
Predicate = Callable[[Record], bool]


class Searcher:
    """Runs search requests against one object type's store, caching results per version."""

    def __init__(
        self,
        obj: ObjectType,
        store: ObjectStore,
        registry: PropertyRegistry,
        associations: Associations | None = None,
    ) -> None:
        self.obj = obj
        self.store = store
        self.registry = registry
        self.associations = associations or Associations()
        self._cache: OrderedDict[str, list[Record]] = OrderedDict()
        #: How many times a query was filtered and sorted from scratch (cache misses).
        self.evaluations = 0

    def search(
        self, body: Any, *, visible_before_ms: int | None
    ) -> tuple[int, list[Record], int | None]:
        """Return (total matches, this page's records, next offset or None).

        Args:
            body: The ``PublicObjectSearchRequest`` JSON.
            visible_before_ms: With an index lag, records changed at or after this instant are
                not yet searchable; None when search is immediately consistent.
        """
        if body is None:
            body = {}
        if not isinstance(body, dict):
            fail(400, "Invalid input JSON on line 1")
        limit = _int(body.get("limit", 10), "limit")
        offset = _int(body.get("after") or 0, "after")
        if limit < 0 or limit > MAX_LIMIT:
            fail(400, f"limit must be between 0 and {MAX_LIMIT}; got {limit}")
        if offset + limit > RESULT_CAP:
            fail(
                400,
                f"Search results are limited to {RESULT_CAP} records: after ({offset}) + limit "
                f"({limit}) is over that; narrow the filter instead of paging further.",
            )
        groups = body.get("filterGroups") or []
        sorts = body.get("sorts") or []
        query = body.get("query") or ""
        key = json.dumps([groups, sorts, query, visible_before_ms, self.store.version,
                          self.associations.version],
                         sort_keys=True, default=str)
        matches = self._cache.get(key)
        if matches is None:
            self.evaluations += 1
            predicate = self._compile_groups(groups, str(query))
            matches = [
                r
                for r in self.store.records.values()
                if not r.archived
                and (visible_before_ms is None or r.updated_ms < visible_before_ms)
                and predicate(r)
            ]
            matches = self._sorted(matches, sorts)
            self._cache[key] = matches
            while len(self._cache) > 8:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        page = matches[offset : offset + limit]
        following = offset + limit if offset + limit < len(matches) else None
        return len(matches), page, following

    # -- compilation ----------------------------------------------------------------------

    def _compile_groups(self, groups: Any, query: str) -> Predicate:
        if not isinstance(groups, list):
            fail(400, "filterGroups must be a list")
        if len(groups) > MAX_GROUPS:
            fail(400, f"Too many filter groups ({len(groups)}); the maximum is {MAX_GROUPS}")
        compiled: list[list[Predicate]] = []
        total = 0
        for group in groups:
            filters = group.get("filters", []) if isinstance(group, dict) else None
            if not isinstance(filters, list):
                fail(400, "each filter group needs a 'filters' list")
            if len(filters) > MAX_FILTERS_PER_GROUP:
                fail(
                    400,
                    f"Too many filters in a group ({len(filters)}); the maximum is "
                    f"{MAX_FILTERS_PER_GROUP}",
                )
            total += len(filters)
            compiled.append([self._compile_filter(f) for f in filters])
        if total > MAX_FILTERS:
            fail(400, f"Too many filters ({total}); the maximum is {MAX_FILTERS}")
        words = [w for w in query.lower().split() if w]
        if len(query) > 3000:
            fail(400, "query is limited to 3000 characters")

        # Filters run once per stored record per search: one closure per group and no
        # generator per record (a sync's window search filters every contact, every page).
        alternatives = [_all_of(group) for group in compiled]
        if not alternatives:
            where = _all_of([])
        elif len(alternatives) == 1:
            where = alternatives[0]
        else:
            def where(record: Record) -> bool:
                return any(alternative(record) for alternative in alternatives)
        if not words:
            return where

        def matches(record: Record) -> bool:
            return self._text_match(record, words) and where(record)

        return matches

    def _association_filter(self, name: str, op: str, raw: dict[str, Any]) -> Predicate:
        """``associations.contact EQ 51``: records linked to that one (HubSpot pseudo-property)."""
        target = TYPE_ALIASES.get(name.split(".", 1)[1].lower())
        if target is None:
            fail(400, f"Unknown association filter {name!r}")
        if op not in ("EQ", "IN"):
            fail(400, f"{name} supports EQ and IN only")
        wanted = [str(v) for v in raw.get("values") or [raw.get("value")]]

        def linked(record: Record) -> bool:
            return any(
                (target, other) in self.associations.edges.get((self.obj.name, record.id), {})
                for other in wanted
            )

        return linked

    def _text_match(self, record: Record, words: list[str]) -> bool:
        text = " ".join(
            (record.properties.get(p) or "") for p in SEARCHABLE if p in record.properties
        ).lower()
        return all(word in text for word in words)

    def _compile_filter(self, raw: Any) -> Predicate:
        if not isinstance(raw, dict):
            fail(400, "each filter must be an object")
        name, op = raw.get("propertyName"), raw.get("operator")
        if op not in OPERATORS:
            fail(400, f"Invalid operator {op!r}; expected one of {sorted(OPERATORS)}")
        if str(name).startswith("associations."):
            return self._association_filter(str(name), op, raw)
        prop = self.registry.get(str(name))
        if prop is None:
            fail(400, f"Property {name!r} does not exist on {self.obj.name}",
                 errors=[{"message": f"Property {name!r} does not exist",
                          "code": "PROPERTY_DOESNT_EXIST",
                          "context": {"propertyName": [str(name)]}}])
        get = self._getter(prop)
        if op == "HAS_PROPERTY":
            return lambda r: get(r) is not None
        if op == "NOT_HAS_PROPERTY":
            return lambda r: get(r) is None
        if op in ("IN", "NOT_IN"):
            values = raw.get("values")
            if not isinstance(values, list) or not values:
                fail(400, f"{op} needs a non-empty 'values' list")
            wanted = {self._filter_value(prop, v) for v in values}
            if op == "IN":
                return lambda r: get(r) in wanted
            return lambda r: get(r) not in wanted
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            pattern = str(raw.get("value", "")).lower()

            def contains(record: Record) -> bool:
                text = (
                    record.id if prop.name == "hs_object_id" else record.properties.get(prop.name)
                )
                if text is None:
                    return False
                tokens = [t for t in _TOKEN.split(text.lower()) if t] + [text.lower()]
                return any(fnmatch.fnmatchcase(t, pattern) for t in tokens)

            if op == "CONTAINS_TOKEN":
                return contains
            return lambda r: not contains(r)
        if "value" not in raw:
            fail(400, f"{op} needs a 'value'")
        value = self._filter_value(prop, raw["value"])
        if op == "EQ":
            return lambda r: get(r) == value
        if op == "NEQ":
            return lambda r: get(r) != value
        if op == "BETWEEN":
            if "highValue" not in raw:
                fail(400, "BETWEEN needs 'value' and 'highValue'")
            high = self._filter_value(prop, raw["highValue"])
            return lambda r: (v := get(r)) is not None and _le(value, v) and _le(v, high)
        compare = {
            "LT": lambda a, b: a < b, "LTE": lambda a, b: a <= b,
            "GT": lambda a, b: a > b, "GTE": lambda a, b: a >= b,
        }[op]

        def ordered(record: Record) -> bool:
            v = get(record)
            if v is None or type(v) is not type(value):
                return False
            return bool(compare(v, value))

        return ordered

    def _getter(self, prop: PropertyDef) -> Callable[[Record], Value | None]:
        """Return a fast typed reader for one property (system timestamps skip parsing)."""
        if prop.name == "hs_object_id":
            return lambda r: float(r.id)
        if prop.name == self.obj.modified:
            return lambda r: r.updated_ms
        if prop.name == self.obj.created:
            return lambda r: r.created_ms
        name = prop.name

        def read(record: Record) -> Value | None:
            raw = record.properties.get(name)
            if raw is None:
                return None
            try:
                return self._typed(prop, raw)
            except _BadValue:
                return None

        return read

    def _filter_value(self, prop: PropertyDef, raw: Any) -> Value:
        try:
            return self._typed(prop, raw)
        except _BadValue as error:
            fail(400, str(error))

    def _typed(self, prop: PropertyDef, raw: Any) -> Value:
        """Turn a stored or filter value into something comparable for ``prop``'s type."""
        text = str(raw).lower() if isinstance(raw, bool) else str(raw)
        if prop.type == "number":
            try:
                return float(text)
            except ValueError:
                raise _BadValue(prop.name, text) from None
        if prop.type in ("datetime", "date"):
            try:
                return parse_instant(text)
            except ValueError:
                raise _BadValue(prop.name, text) from None
        return text.lower()  # string EQ is case-insensitive

    def _sorted(self, records: list[Record], sorts: Any) -> list[Record]:
        if not isinstance(sorts, list):
            fail(400, "sorts must be a list")
        if not sorts:
            return sorted(records, key=lambda r: int(r.id))
        if len(sorts) > 1:
            fail(400, "Only one sort is supported")
        sort = sorts[0]
        if isinstance(sort, str):  # bare property name, ascending (the spec types sorts as strings)
            name = sort.lstrip("-")
            direction = "DESCENDING" if sort.startswith("-") else "ASCENDING"
        elif isinstance(sort, dict):
            name, direction = sort.get("propertyName"), sort.get("direction", "ASCENDING")
        else:
            fail(400, "a sort is a property name or {propertyName, direction}")
        if direction not in ("ASCENDING", "DESCENDING"):
            fail(400, f"Invalid sort direction {direction!r}")
        prop = self.registry.get(str(name))
        if prop is None:
            fail(400, f"Cannot sort on unknown property {name!r}")
        get = self._getter(prop)
        keyed = [(get(r), int(r.id), r) for r in records]
        present = [k for k in keyed if k[0] is not None]
        missing = [k for k in keyed if k[0] is None]
        present.sort(key=itemgetter(0, 1), reverse=direction == "DESCENDING")
        missing.sort(key=itemgetter(1))
        return [k[2] for k in present + missing]


def _all_of(predicates: list[Predicate]) -> Predicate:
    """One predicate for the AND of ``predicates`` (an empty AND matches everything)."""
    if not predicates:
        return lambda record: True
    if len(predicates) == 1:
        return predicates[0]
    if len(predicates) == 2:
        first, second = predicates
        return lambda record: first(record) and second(record)
    return lambda record: all(p(record) for p in predicates)


class _BadValue(ValueError):
    def __init__(self, name: str, text: str) -> None:
        super().__init__(f"{text!r} is not a valid value for {name}")


def _le(a: Value, b: Value) -> bool:
    return type(a) is type(b) and a <= b  # type: ignore[operator]


def _int(raw: Any, name: str) -> int:
    try:
        return int(str(raw))
    except ValueError:
        fail(400, f"{name} must be an integer; got {raw!r}")
