"""Shared pieces of rule-file validation: operator tables, wording helpers and the checker base.

The checker is split by concern (schema, conditions, decisions, embedded tests) into mixins
that all build on :class:`CheckerBase`, which holds the state of one validation pass and
reports diagnostics; :mod:`crmsync.rules.validate` assembles them.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from crmsync.coerce import coerce
from crmsync.errors import Diagnostic
from crmsync.model import MISS_TYPES, STATUSES
from crmsync.rules.jsonpos import SourceMap
from crmsync.rules.tree import Derived, Node, OutputSpec

#: When a test case gives no ``now``: a Monday morning, so business-day dues are easy to read.
DEFAULT_TEST_NOW = "2026-01-05T09:00:00Z"

#: Operators by the type of value they apply to.
OPERATORS_BY_KIND: Mapping[str, tuple[str, ...]] = {
    "str": ("is", "is_not", "in", "not_in", "contains", "starts_with", "ends_with", "text_is",
            "matches", "exists", "missing"),
    "int": ("is", "is_not", "in", "not_in", "at_least", "at_most", "more_than", "less_than",
            "between", "exists", "missing"),
    "bool": ("is", "is_not", "exists", "missing"),
    "datetime": ("at_least", "at_most", "more_than", "less_than", "between", "within_days",
                 "older_than_days", "exists", "missing"),
    "list": ("contains", "exists", "missing"),
}
OPERATORS_BY_KIND = {**OPERATORS_BY_KIND, "number": OPERATORS_BY_KIND["int"]}
ALL_OPERATORS: tuple[str, ...] = tuple(
    dict.fromkeys(op for ops in OPERATORS_BY_KIND.values() for op in ops)
)
_FACT_OPERAND_OPS = {"is", "is_not", "at_least", "at_most", "more_than", "less_than"}
_TEXT_OPS = {"contains", "starts_with", "ends_with", "text_is"}
_KIND_WORDS = {
    "str": "text", "int": "a whole number", "number": "a number", "bool": "yes/no",
    "datetime": "a date/time", "list": "a collected list",
}
#: The outputs every rule set has, with their types and closed value sets.
BUILTIN_OUTPUTS: Mapping[str, tuple[str, str, tuple[str, ...] | None]] = {
    "status": ("first", "str", STATUSES),
    "miss_type": ("first", "str", MISS_TYPES),
    "score": ("sum", "int", None),
}
_EXPECT_EXTRAS = ("tasks", "fired", "not_fired", "reason")



def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """Return a "did you mean 'x'?" hint for the closest candidate, if any is close."""
    matches = difflib.get_close_matches(str(word), list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None


def kind_word(kind: str) -> str:
    """Return how a type is named to people (``int`` -> "a whole number")."""
    return _KIND_WORDS.get(kind, kind)


def parse_datetime(text: Any) -> datetime | None:
    """Parse an ISO 8601 date or date-time from a rule file (naive means UTC)."""
    if not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class CheckerBase:
    """One validation pass over one document; collects diagnostics as it goes."""

    def __init__(self, doc: Any, smap: SourceMap, filename: str, facts: Mapping[str, str]):
        self.doc = doc
        self.smap = smap
        self.filename = filename
        self.facts = dict(facts)
        self.diagnostics: list[Diagnostic] = []
        self.self_checked: list[str] = []  # pointers whose subtree layer 2 checks
        self.lists: dict[str, list[Any]] = {}
        self.params: dict[str, Any] = {}
        self.params_used: set[str] = set()
        self.derived_raw: dict[str, Any] = {}
        self.derived: dict[str, Derived] = {}
        self.derived_kinds: dict[str, str] = {}
        self.outputs: dict[str, tuple[str, str, tuple[str, ...] | None]] = {}
        self.output_order: list[str] = []
        self.conditions_raw: dict[str, Any] = {}
        self.conditions: dict[str, Node] = {}
        self.condition_outputs: dict[str, set[str]] = {}
        self.facts_used: set[str] = set()
        self.declared_facts: dict[str, str] = {}  # the file's own "facts" declarations
        self.declared_outputs: dict[str, OutputSpec] = {}  # the file's "outputs" declarations
        self._resolving: list[str] = []

    # -- reporting ---------------------------------------------------------------------

    def error(self, pointer: str, message: str, hint: str | None = None, *, key: bool = False):
        line, col = self.smap.locate(pointer, key=key)
        self.diagnostics.append(Diagnostic(self.filename, line, col, pointer, message, hint))


_INVALID: Any = type("_Invalid", (), {"__repr__": lambda self: "<invalid>"})()


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _comparable(kind: str, other: str) -> bool:
    numeric = {"int", "number"}
    return kind == other or (kind in numeric and other in numeric)


def _literal_kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "str"
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    return "an object"



def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _literal_hint(raw: Any, kind: str) -> str | None:
    if kind in ("int", "number") and isinstance(raw, str):
        stripped = raw.replace(",", "").strip()
        if stripped.lstrip("-").replace(".", "", 1).isdigit():
            return f"write the number without quotes: {stripped}"
        return "compare it with a number, e.g. 50"
    if kind == "bool" and isinstance(raw, str) and raw.lower() in ("true", "false"):
        return f"write {raw.lower()} without quotes"
    if kind == "bool" and isinstance(raw, str | int | float):
        # What a value means comes from crmsync.coerce: "yes", "Y", 1, "checked"...
        meant = coerce(raw, "bool")
        if meant is not None:
            return f"write {str(meant).lower()} without quotes"
        return "compare it with true or false, without quotes"
    if kind == "str" and not isinstance(raw, str):
        return f"put the value in quotes: \"{raw}\""
    return None


