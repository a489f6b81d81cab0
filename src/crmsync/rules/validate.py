"""Check a parsed rule file and turn it into a validated :class:`~crmsync.rules.tree.Tree`.

Two layers, all problems collected before anything is raised:

1. the JSON Schema (shipped as ``ruleset.schema.json``) for the file's overall shape, with its
   messages rewritten for people (unknown keys get a "did you mean");
2. semantic checks the schema cannot express: unknown facts and outputs, operator/type
   mismatches, outputs read before they are decided, duplicate ids, rules that can never
   fire, unsafe regexes, template placeholders that name nothing, cycles between named
   conditions.

Conditions are checked only by layer 2 (a failed ``oneOf`` says nothing useful), so schema
errors inside a condition are dropped in favour of the semantic message for the same spot.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

import jsonschema

from crmsync.errors import Diagnostic
from crmsync.model import MISS_TYPES, STATUSES
from crmsync.rules.jsonpos import SourceMap, escape_pointer_token, to_pointer
from crmsync.rules.regexes import UnsafeRegexError, compile_safe
from crmsync.rules.templates import TemplateSyntaxError, parse_template
from crmsync.rules.tree import (
    All,
    AnyOf,
    Decision,
    Derived,
    FactRef,
    Leaf,
    Node,
    Not,
    Ref,
    Rule,
    TaskRule,
    Template,
    TestCase,
    Tree,
)

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


@cache
def ruleset_schema() -> dict[str, Any]:
    """Return the rule-file JSON Schema (2020-12) shipped with the package."""
    text = resources.files("crmsync.rules").joinpath("ruleset.schema.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


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


class _Checker:
    """One validation pass over one document; collects diagnostics as it goes."""

    def __init__(self, doc: Any, smap: SourceMap, filename: str, facts: Mapping[str, str]):
        self.doc = doc
        self.smap = smap
        self.filename = filename
        self.facts = dict(facts)
        self.diagnostics: list[Diagnostic] = []
        self.self_checked: list[str] = []  # pointers whose subtree layer 2 checks
        self.lists: dict[str, list[Any]] = {}
        self.derived_raw: dict[str, Any] = {}
        self.derived: dict[str, Derived] = {}
        self.derived_kinds: dict[str, str] = {}
        self.outputs: dict[str, tuple[str, str, tuple[str, ...] | None]] = {}
        self.output_order: list[str] = []
        self.conditions_raw: dict[str, Any] = {}
        self.conditions: dict[str, Node] = {}
        self.condition_outputs: dict[str, set[str]] = {}
        self.facts_used: set[str] = set()
        self._resolving: list[str] = []

    # -- reporting ---------------------------------------------------------------------

    def error(self, pointer: str, message: str, hint: str | None = None, *, key: bool = False):
        line, col = self.smap.locate(pointer, key=key)
        self.diagnostics.append(Diagnostic(self.filename, line, col, pointer, message, hint))

    # -- driver ------------------------------------------------------------------------

    def run(self) -> Tree | None:
        doc = self.doc
        if not isinstance(doc, dict):
            self.error("", "a rule file is one JSON object ({ ... })")
            return None
        self._mark_condition_subtrees(doc)
        self._schema_errors(doc)
        self._lists(doc.get("lists"))
        self._declare_outputs(doc.get("decisions"))
        self._derived(doc.get("derived"))
        self._named_conditions(doc.get("conditions"))
        decisions = self._decisions(doc.get("decisions"))
        reason = self._reason(doc.get("reason"), decisions)
        tasks = self._tasks(doc.get("tasks"))
        self._unique_ids(decisions, tasks)
        tests = self._tests(doc.get("tests"), tasks)
        if self.diagnostics:
            return None
        version = doc.get("version")
        return Tree(
            version=version if isinstance(version, str) else "",
            conditions=self.conditions,
            derived=self.derived,
            decisions=tuple(decisions),
            tasks=tuple(tasks),
            reason=reason,
            tests=tuple(tests),
            facts=self.facts,
            facts_used=frozenset(self.facts_used),
            description=str(doc.get("description", "")),
        )

    # -- layer 1: the schema -------------------------------------------------------------

    def _mark_condition_subtrees(self, doc: dict[str, Any]) -> None:
        for name in _dict(doc.get("conditions")):
            self.self_checked.append(f"/conditions/{escape_pointer_token(name)}")
        for name in _dict(doc.get("derived")):
            self.self_checked.append(f"/derived/{escape_pointer_token(name)}")
        for d_index, decision in enumerate(_list(doc.get("decisions"))):
            for r_index, rule in enumerate(_list(_dict(decision).get("rules"))):
                if isinstance(rule, dict):
                    self.self_checked.append(f"/decisions/{d_index}/rules/{r_index}/when")
                    self.self_checked.append(f"/decisions/{d_index}/rules/{r_index}/then")
            self.self_checked.append(f"/decisions/{d_index}/default")
        for t_index, _task in enumerate(_list(doc.get("tasks"))):
            self.self_checked.append(f"/tasks/{t_index}/when")

    def _is_self_checked(self, pointer: str) -> bool:
        return any(pointer == p or pointer.startswith(p + "/") for p in self.self_checked)

    def _schema_errors(self, doc: dict[str, Any]) -> None:
        validator = jsonschema.Draft202012Validator(ruleset_schema())
        for err in validator.iter_errors(doc):
            pointer = to_pointer(err.absolute_path)
            if self._is_self_checked(pointer):
                continue
            self._schema_error(err, pointer)

    def _schema_error(self, err: jsonschema.ValidationError, pointer: str) -> None:
        kind = err.validator
        if kind == "additionalProperties" and isinstance(err.instance, dict):
            allowed = list(err.schema.get("properties", {}))  # type: ignore[union-attr]
            for extra in sorted(set(err.instance) - set(allowed)):
                child = f"{pointer}/{escape_pointer_token(extra)}"
                self.error(child, f"unknown key '{extra}'",
                           did_you_mean(extra, allowed) or f"expected one of: {', '.join(allowed)}",
                           key=True)
        elif kind == "required":
            missing = str(err.message).split("'")[1] if "'" in err.message else err.message
            self.error(pointer, f"missing required key '{missing}'")
        elif kind == "enum":
            options = [str(o) for o in err.validator_value]  # type: ignore[union-attr]
            self.error(pointer, f"{json.dumps(err.instance)} is not one of: {', '.join(options)}",
                       did_you_mean(str(err.instance), options))
        elif kind == "type":
            self.error(pointer, f"expected {_schema_type_words(err.validator_value)}, "
                                f"got {_json_type(err.instance)}")
        elif kind == "pattern" and isinstance(err.instance, str):
            self.error(pointer, f"'{err.instance}' is not a valid name: use lower-case letters, "
                                "digits and underscores, starting with a letter (at most 64)")
        else:
            message = err.message if len(err.message) <= 160 else err.message[:157] + "..."
            self.error(pointer, message)

    # -- lists, outputs, derived facts, named conditions ---------------------------------

    def _lists(self, raw: Any) -> None:
        for name, items in _dict(raw).items():
            if isinstance(items, list):
                self.lists[name] = items

    def _declare_outputs(self, raw: Any) -> None:
        for index, decision in enumerate(_list(raw)):
            if not isinstance(decision, dict):
                continue
            output, hit = decision.get("output"), decision.get("hit")
            pointer = f"/decisions/{index}"
            if not isinstance(output, str) or hit not in ("first", "sum", "collect"):
                continue
            if output in self.outputs:
                self.error(f"{pointer}/output", f"output '{output}' is decided twice")
                continue
            if output in self.facts:
                self.error(f"{pointer}/output", f"output '{output}' has the name of a fact; "
                                                "give it another name")
                continue
            if output in BUILTIN_OUTPUTS:
                want_hit, kind, closed = BUILTIN_OUTPUTS[output]
                if hit != want_hit:
                    self.error(f"{pointer}/hit", f"'{output}' must use hit policy '{want_hit}'")
            elif hit == "sum":
                kind, closed = "int", None
            elif hit == "collect":
                kind, closed = "list", None
            else:
                kind, closed = _literal_kind(decision.get("default")) or "str", None
            self.outputs[output] = (hit, kind, closed)
            self.output_order.append(output)
        if isinstance(raw, list) and "status" not in self.outputs and not any(
            isinstance(d, dict) and d.get("output") == "status" for d in raw
        ):
            self.error("/decisions", "no decision for 'status'; every rule set decides the "
                                     "status (lead, prospect, opportunity or disqualified)")

    def _derived(self, raw: Any) -> None:
        self.derived_raw = dict(_dict(raw))
        for name in self.derived_raw:
            if name in self.facts:
                self.error(f"/derived/{escape_pointer_token(name)}",
                           f"derived fact '{name}' has the name of a fact; give it another name",
                           key=True)
        for name in self.derived_raw:
            if name not in self.facts:
                self._resolve_derived(name)

    def _resolve_derived(self, name: str) -> str | None:
        """Validate derived fact ``name`` (once) and return its type."""
        if name in self.derived_kinds:
            return self.derived_kinds[name]
        pointer = f"/derived/{escape_pointer_token(name)}"
        if name in self._resolving:
            cycle = " -> ".join([*self._resolving[self._resolving.index(name):], name])
            self.error(pointer, f"derived facts depend on each other in a cycle: {cycle}")
            return None
        raw = self.derived_raw[name]
        self._resolving.append(name)
        try:
            if not isinstance(raw, dict) or len(set(raw) - {"note"}) != 1 or not (
                "when" in raw or "first_of" in raw
            ):
                keys = [k for k in _dict(raw) if k != "note"]
                hint = did_you_mean(keys[0], ["when", "first_of"]) if keys else None
                self.error(pointer, "a derived fact is {\"when\": condition} (yes/no) or "
                                    "{\"first_of\": [facts]}", hint)
                return None
            if "when" in raw:
                node = self._condition(raw["when"], f"{pointer}/when", outputs=None)
                kind = "bool"
                derived = Derived(name, pointer, kind, when=node)
            else:
                names = raw["first_of"]
                if not isinstance(names, list) or not names:
                    self.error(f"{pointer}/first_of", "expected a list of fact names")
                    return None
                kinds = set()
                for i, fact in enumerate(names):
                    fact_kind = self._fact_kind(fact, f"{pointer}/first_of/{i}")
                    if fact_kind:
                        kinds.add("number" if fact_kind == "int" else fact_kind)
                if len(kinds) > 1:
                    self.error(f"{pointer}/first_of", "first_of mixes facts of different types: "
                                                      + ", ".join(sorted(kinds)))
                    return None
                kind = kinds.pop() if kinds else "str"
                if kind == "number" and all(self._kind_of(n) == "int" for n in names):
                    kind = "int"
                derived = Derived(name, pointer, kind, first_of=tuple(names))
            self.derived[name] = derived
            self.derived_kinds[name] = kind
            return kind
        finally:
            self._resolving.pop()

    def _kind_of(self, name: Any) -> str | None:
        if not isinstance(name, str):
            return None
        if name in self.facts:
            return self.facts[name]
        return self.derived_kinds.get(name)

    def _fact_kind(self, name: Any, pointer: str) -> str | None:
        """Resolve a fact or derived fact name, reporting unknown ones; return its type."""
        if not isinstance(name, str):
            self.error(pointer, "expected a fact name (text)")
            return None
        if name in self.facts:
            self.facts_used.add(name)
            return self.facts[name]
        if name in self.derived_raw:
            return self._resolve_derived(name)
        hint = did_you_mean(name, [*self.facts, *self.derived_raw])
        if name in self.outputs:
            hint = f"'{name}' is an output: write {{\"output\": \"{name}\", ...}}"
        self.error(pointer, f"unknown fact '{name}'", hint)
        return None

    def _named_conditions(self, raw: Any) -> None:
        self.conditions_raw = dict(_dict(raw))
        for name in self.conditions_raw:
            self._resolve_condition(name)

    def _resolve_condition(self, name: str) -> bool:
        """Validate named condition ``name`` once; return whether it is usable."""
        if name in self.conditions:
            return True
        pointer = f"/conditions/{escape_pointer_token(name)}"
        if name in self._resolving:
            cycle = " -> ".join([*self._resolving[self._resolving.index(name):], name])
            self.error(pointer, f"named conditions refer to each other in a cycle: {cycle}")
            return False
        self._resolving.append(name)
        reads: set[str] = set()
        try:
            node = self._condition(self.conditions_raw[name], pointer,
                                   outputs=set(self.outputs), reads=reads)
        finally:
            self._resolving.pop()
        if node is None:
            return False
        self.conditions[name] = node
        self.condition_outputs[name] = reads
        return True

    # -- conditions ----------------------------------------------------------------------

    def _condition(
        self, raw: Any, pointer: str, *, outputs: set[str] | None, reads: set[str] | None = None
    ) -> Node | None:
        """Check one condition tree.

        Args:
            raw: The JSON value.
            pointer: Where it is.
            outputs: Outputs it may read (decided earlier); ``None`` when none may be read.
            reads: Collects the outputs it reads (for named conditions).
        """
        if not isinstance(raw, dict):
            self.error(pointer, f"expected a condition object, got {_json_type(raw)}",
                       "write {\"fact\": name, operator: value}, {\"all\": [...]}, "
                       "{\"any\": [...]}, {\"not\": {...}} or {\"condition\": name}")
            return None
        keys = [k for k in raw if k != "note"]
        for combinator in ("all", "any"):
            if combinator in raw:
                if len(keys) != 1:
                    self._extra_keys(raw, pointer, combinator)
                items = raw[combinator]
                if not isinstance(items, list) or not items:
                    self.error(f"{pointer}/{combinator}", f"'{combinator}' takes a non-empty "
                                                          "list of conditions")
                    return None
                nodes = [self._condition(item, f"{pointer}/{combinator}/{i}", outputs=outputs,
                                         reads=reads) for i, item in enumerate(items)]
                if any(n is None for n in nodes):
                    return None
                cls = All if combinator == "all" else AnyOf
                return cls(pointer, tuple(nodes))  # type: ignore[arg-type]
        if "not" in raw:
            if len(keys) != 1:
                self._extra_keys(raw, pointer, "not")
            inner = self._condition(raw["not"], f"{pointer}/not", outputs=outputs, reads=reads)
            return Not(pointer, inner) if inner is not None else None
        if "condition" in raw:
            if len(keys) != 1:
                self._extra_keys(raw, pointer, "condition")
            return self._ref(raw["condition"], f"{pointer}/condition", outputs, reads)
        return self._leaf(raw, keys, pointer, outputs, reads)

    def _extra_keys(self, raw: dict[str, Any], pointer: str, main: str) -> None:
        for key in raw:
            if key not in (main, "note"):
                self.error(f"{pointer}/{escape_pointer_token(key)}",
                           f"unexpected key '{key}' next to '{main}'",
                           "put each comparison in its own object inside 'all' or 'any'", key=True)

    def _ref(self, name: Any, pointer: str, outputs: set[str] | None,
             reads: set[str] | None) -> Node | None:
        if not isinstance(name, str) or name not in self.conditions_raw:
            hint = did_you_mean(str(name), self.conditions_raw)
            if isinstance(name, str) and name in self.derived_raw:
                hint = f"'{name}' is a derived fact: write {{\"fact\": \"{name}\", \"is\": true}}"
            self.error(pointer, f"unknown named condition {json.dumps(name)}", hint)
            return None
        if not self._resolve_condition(name):
            return None
        needed = self.condition_outputs.get(name, set())
        if reads is not None:
            reads |= needed
        allowed = outputs if outputs is not None else set()
        for output in sorted(needed - allowed):
            where = "a derived fact" if outputs is None else "this point"
            self.error(pointer, f"condition '{name}' reads output '{output}', which is not yet "
                                f"decided at {where}",
                       "move the decision of that output earlier in 'decisions'")
        return Ref(pointer[: -len("/condition")], name)

    def _leaf(self, raw: dict[str, Any], keys: list[str], pointer: str,
              outputs: set[str] | None, reads: set[str] | None) -> Leaf | None:
        subjects = [k for k in keys if k in ("fact", "output")]
        ops = [k for k in keys if k not in ("fact", "output")]
        if not subjects:
            known = ["all", "any", "not", "condition", "fact", "output"]
            hint = did_you_mean(keys[0], known) if keys else None
            self.error(pointer, "a comparison needs \"fact\" (or \"output\") and one operator",
                       hint or "for example {\"fact\": \"employees\", \"at_least\": 50}")
            return None
        if len(subjects) > 1:
            self.error(pointer, "a comparison names either a fact or an output, not both")
            return None
        unknown = [op for op in ops if op not in ALL_OPERATORS]
        for op in unknown:
            self.error(f"{pointer}/{escape_pointer_token(op)}", f"unknown operator '{op}'",
                       did_you_mean(op, ALL_OPERATORS) or
                       f"operators: {', '.join(ALL_OPERATORS)}", key=True)
        if unknown:
            return None
        if not ops:
            self.error(pointer, "the comparison has no operator",
                       f"add one of: {', '.join(ALL_OPERATORS)}")
            return None
        if len(ops) > 1:
            self.error(f"{pointer}/{escape_pointer_token(ops[1])}",
                       f"one operator per comparison (found {', '.join(ops)})",
                       "combine several comparisons with {\"all\": [...]}", key=True)
            return None
        source, op = subjects[0], ops[0]
        name = raw[source]
        subject_ptr = f"{pointer}/{source}"
        if source == "fact":
            kind = self._fact_kind(name, subject_ptr)
        else:
            kind = self._output_kind(name, subject_ptr, outputs, reads)
        if kind is None:
            return None
        allowed = OPERATORS_BY_KIND[kind]
        op_ptr = f"{pointer}/{escape_pointer_token(op)}"
        if op not in allowed:
            self.error(op_ptr, f"'{op}' does not apply to '{name}', which is {kind_word(kind)}",
                       f"operators for {kind_word(kind)}: {', '.join(allowed)}", key=True)
            return None
        operand = self._operand(op, raw[op], kind, name, op_ptr)
        if operand is _INVALID:
            return None
        text = f"{name} {op.replace('_', ' ')} {_show(raw[op])}"
        if op in ("exists", "missing"):
            text = f"{name} {op}"
        return Leaf(pointer, source, name, kind, op, operand, text)

    def _output_kind(self, name: Any, pointer: str, outputs: set[str] | None,
                     reads: set[str] | None) -> str | None:
        if not isinstance(name, str) or name not in self.outputs:
            hint = did_you_mean(str(name), self.outputs)
            if isinstance(name, str) and (name in self.facts or name in self.derived_raw):
                hint = f"'{name}' is a fact: write {{\"fact\": \"{name}\", ...}}"
            self.error(pointer, f"unknown output {json.dumps(name)}", hint)
            return None
        if outputs is None:
            self.error(pointer, "a derived fact cannot read an output (derived facts are "
                                "computed before any decision)")
            return None
        if name not in outputs:
            self.error(pointer, f"output '{name}' is not decided yet at this point",
                       "a decision can read only outputs decided above it in 'decisions'")
            return None
        if reads is not None:
            reads.add(name)
        return self.outputs[name][1]

    def _operand(self, op: str, raw: Any, kind: str, name: str, pointer: str) -> Any:
        if op in ("exists", "missing"):
            if raw is not True:
                self.error(pointer, f"'{op}' takes true", f"write \"{op}\": true")
                return _INVALID
            return None
        if op in ("within_days", "older_than_days"):
            if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
                self.error(pointer, f"'{op}' takes a number of days (0 or more)")
                return _INVALID
            return timedelta(days=raw)
        if op == "matches":
            if not isinstance(raw, str):
                self.error(pointer, "'matches' takes a regular expression (text)")
                return _INVALID
            try:
                return compile_safe(raw)
            except UnsafeRegexError as error:
                self.error(pointer, f"unsafe or invalid regex: {error}")
                return _INVALID
        if kind == "list":
            if not isinstance(raw, str | int | float) or isinstance(raw, bool):
                self.error(pointer, "expected the text (or number) of one collected item")
                return _INVALID
            return raw
        if op in _TEXT_OPS:
            values = raw if isinstance(raw, list) else [raw]
            if not values or not all(isinstance(v, str) and v.strip() for v in values):
                self.error(pointer, f"'{op}' takes text or a list of texts (not empty)")
                return _INVALID
            return tuple(dict.fromkeys(v.strip().casefold() for v in values))
        if isinstance(raw, dict) and set(raw) == {"fact"} and op in _FACT_OPERAND_OPS:
            other = self._fact_kind(raw["fact"], f"{pointer}/fact")
            if other is None:
                return _INVALID
            if not _comparable(kind, other):
                self.error(pointer, f"cannot compare '{name}' ({kind_word(kind)}) with "
                                    f"'{raw['fact']}' ({kind_word(other)})")
                return _INVALID
            return FactRef(raw["fact"])
        if op in ("in", "not_in"):
            if isinstance(raw, dict) and set(raw) == {"list"}:
                list_name = raw["list"]
                if not isinstance(list_name, str) or list_name not in self.lists:
                    self.error(f"{pointer}/list", f"unknown list {json.dumps(list_name)}",
                               did_you_mean(str(list_name), self.lists))
                    return _INVALID
                values, base = self.lists[list_name], f"/lists/{escape_pointer_token(list_name)}"
            elif isinstance(raw, list):
                values, base = raw, pointer
            else:
                self.error(pointer, f"'{op}' takes a list of values or {{\"list\": name}}")
                return _INVALID
            if not values:
                self.error(pointer, f"'{op}' needs at least one value")
                return _INVALID
            checked = [self._literal(v, kind, name, f"{base}/{i}") for i, v in enumerate(values)]
            if any(v is _INVALID for v in checked):
                return _INVALID
            return frozenset(checked)
        if op == "between":
            if not isinstance(raw, list) or len(raw) != 2:
                self.error(pointer, "'between' takes [low, high]")
                return _INVALID
            low = self._literal(raw[0], kind, name, f"{pointer}/0")
            high = self._literal(raw[1], kind, name, f"{pointer}/1")
            if low is _INVALID or high is _INVALID:
                return _INVALID
            if low > high:
                self.error(pointer, f"'between' range is empty: {raw[0]} is above {raw[1]}",
                           "write [low, high]")
                return _INVALID
            return (low, high)
        return self._literal(raw, kind, name, pointer)

    def _literal(self, raw: Any, kind: str, name: str, pointer: str) -> Any:
        """Check a literal against a subject's type; return it normalised or ``_INVALID``."""
        ok: Any = _INVALID
        if kind == "str" and isinstance(raw, str):
            ok = raw
        elif kind in ("int", "number") and isinstance(raw, int | float) and not isinstance(
            raw, bool
        ):
            ok = raw
        elif kind == "bool" and isinstance(raw, bool):
            ok = raw
        elif kind == "datetime":
            ok = parse_datetime(raw) or _INVALID
            if ok is _INVALID and isinstance(raw, str):
                self.error(pointer, f"'{raw}' is not an ISO 8601 date (like 2026-01-31 or "
                                    "2026-01-31T09:00:00Z)",
                           "for dates relative to the run, use within_days or older_than_days")
                return _INVALID
        if ok is _INVALID:
            self.error(pointer, f"'{name}' is {kind_word(kind)}; it cannot be compared with "
                                f"{_json_type(raw)} {_show(raw)}",
                       _literal_hint(raw, kind))
        return ok

    # -- decisions, reason, tasks --------------------------------------------------------

    def _decisions(self, raw: Any) -> list[Decision]:
        decided: set[str] = set()
        result = []
        for index, item in enumerate(_list(raw)):
            output = _dict(item).get("output")
            if not isinstance(output, str) or output not in self.outputs:
                continue
            decision = self._decision(item, f"/decisions/{index}", output, set(decided))
            decided.add(output)
            if decision is not None:
                result.append(decision)
        return result

    def _decision(self, raw: dict[str, Any], pointer: str, output: str,
                  available: set[str]) -> Decision | None:
        hit, kind, closed = self.outputs[output]
        default: Any = None
        if hit == "first":
            if "default" not in raw:
                self.error(pointer, f"a 'first' decision needs a \"default\" (the value of "
                                    f"'{output}' when no rule fires)")
            else:
                default = self._output_value(raw["default"], output, kind, closed,
                                             f"{pointer}/default", allow_fact=False)
        elif hit == "sum":
            default = raw.get("default", 0)
            if isinstance(default, bool) or not isinstance(default, int):
                self.error(f"{pointer}/default", "a 'sum' default is a whole number")
                default = 0
        elif "default" in raw:
            self.error(f"{pointer}/default", "a 'collect' decision starts empty; remove "
                                             "\"default\"", key=True)
        for bound in ("min", "max"):
            if bound in raw and hit != "sum":
                self.error(f"{pointer}/{bound}", f"'{bound}' applies only to 'sum' decisions",
                           key=True)
        minimum, maximum = raw.get("min"), raw.get("max")
        if isinstance(minimum, int) and isinstance(maximum, int) and minimum > maximum:
            self.error(f"{pointer}/min", f"min {minimum} is above max {maximum}")
        template_names = self._template_names(available)
        default_because = self._template(raw.get("default_because", ""),
                                         f"{pointer}/default_because", template_names)
        rules: list[Rule] = []
        catch_all: str | None = None
        seen_conditions: dict[str, str] = {}
        for r_index, rule_raw in enumerate(_list(raw.get("rules"))):
            r_ptr = f"{pointer}/rules/{r_index}"
            if not isinstance(rule_raw, dict) or not isinstance(rule_raw.get("id"), str):
                continue
            rule_id = rule_raw["id"]
            if catch_all is not None and hit == "first":
                self.error(f"{r_ptr}/id", f"rule '{rule_id}' can never fire: rule '{catch_all}' "
                                          "above it has no condition, so it always decides",
                           "move this rule above it, or delete it")
            when_raw = rule_raw.get("when")
            if hit == "first" and when_raw is not None:
                fingerprint = json.dumps(when_raw, sort_keys=True)
                if fingerprint in seen_conditions:
                    self.error(f"{r_ptr}/when", f"rule '{rule_id}' can never fire: rule "
                                                f"'{seen_conditions[fingerprint]}' above it has "
                                                "the same condition")
                seen_conditions.setdefault(fingerprint, rule_id)
            when = None
            if when_raw is not None:
                when = self._condition(when_raw, f"{r_ptr}/when", outputs=available)
            then: Any = None
            add = 0
            if hit == "first":
                if "add" in rule_raw:
                    self.error(f"{r_ptr}/add", "'add' belongs in a 'sum' decision; use \"then\"",
                               key=True)
                if "then" not in rule_raw:
                    self.error(r_ptr, f"missing \"then\": the value of '{output}' this rule sets")
                else:
                    then = self._output_value(rule_raw["then"], output, kind, closed,
                                              f"{r_ptr}/then", allow_fact=True)
                if when_raw is None and not isinstance(then, FactRef):
                    catch_all = rule_id
            elif hit == "sum":
                if "then" in rule_raw:
                    self.error(f"{r_ptr}/then", "a 'sum' rule adds points: use \"add\"", key=True)
                if "add" not in rule_raw:
                    self.error(r_ptr, "missing \"add\": the points this rule adds")
                add = rule_raw.get("add", 0) if isinstance(rule_raw.get("add"), int) else 0
            else:
                if "add" in rule_raw:
                    self.error(f"{r_ptr}/add", "'add' belongs in a 'sum' decision", key=True)
                then = rule_raw.get("then", rule_id)
                if isinstance(then, bool) or not isinstance(then, str | int | float):
                    self.error(f"{r_ptr}/then", "a collected value is text or a number")
                    then = rule_id
            because = self._template(rule_raw.get("because", ""), f"{r_ptr}/because",
                                     template_names)
            rules.append(Rule(rule_id, r_ptr, when, then, add, because))
        return Decision(output, hit, kind, pointer, tuple(rules), default, default_because,
                        minimum if isinstance(minimum, int) else None,
                        maximum if isinstance(maximum, int) else None, closed)

    def _output_value(self, raw: Any, output: str, kind: str, closed: tuple[str, ...] | None,
                      pointer: str, *, allow_fact: bool) -> Any:
        if allow_fact and isinstance(raw, dict) and set(raw) == {"fact"}:
            fact_kind = self._fact_kind(raw["fact"], f"{pointer}/fact")
            if fact_kind is not None and not _comparable(kind, fact_kind):
                self.error(pointer, f"'{output}' is {kind_word(kind)}; fact '{raw['fact']}' is "
                                    f"{kind_word(fact_kind)}")
            return FactRef(raw["fact"]) if fact_kind else None
        if closed is not None:
            if raw not in closed:
                self.error(pointer, f"{json.dumps(raw)} is not a valid {output}; expected one "
                                    f"of: {', '.join(closed)}",
                           did_you_mean(str(raw), closed))
                return closed[0]
            return raw
        value = self._literal(raw, kind, output, pointer)
        return None if value is _INVALID else value

    def _template_names(self, outputs: Iterable[str]) -> set[str]:
        return {*self.facts, *self.derived_raw, *outputs}

    def _template(self, raw: Any, pointer: str, names: set[str]) -> Template:
        if not isinstance(raw, str):
            return Template(())
        try:
            template = parse_template(raw)
        except TemplateSyntaxError as error:
            self.error(pointer, f"bad placeholder: {error}")
            return Template(())
        for name in template.names:
            if name not in names:
                hint = did_you_mean(name, names)
                if name in self.outputs:
                    hint = f"output '{name}' is decided later; only earlier outputs can be used"
                self.error(pointer, f"placeholder {{{name}}} names no fact or output", hint)
            elif name in self.facts:
                self.facts_used.add(name)
            elif name in self.derived_raw:
                self._resolve_derived(name)
        return template

    def _reason(self, raw: Any, decisions: list[Decision]) -> tuple[str, ...]:
        if raw is None:
            return ("status", *(d.output for d in decisions if d.hit == "collect"))
        result = []
        for index, name in enumerate(_list(raw)):
            if not isinstance(name, str) or name not in self.outputs:
                self.error(f"/reason/{index}", f"unknown output {json.dumps(name)}",
                           did_you_mean(str(name), self.outputs))
            else:
                result.append(name)
        return tuple(result)

    def _tasks(self, raw: Any) -> list[TaskRule]:
        result = []
        every_output = set(self.outputs)
        names = self._template_names(every_output)
        for index, item in enumerate(_list(raw)):
            pointer = f"/tasks/{index}"
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            when = None
            if "when" in item:
                when = self._condition(item["when"], f"{pointer}/when", outputs=every_output)
            due = item.get("due_in_business_days", 0)
            result.append(TaskRule(
                id=item["id"],
                pointer=pointer,
                purpose=str(item.get("purpose", "")),
                when=when,
                subject=self._template(item.get("subject", ""), f"{pointer}/subject", names),
                body=self._template(item.get("body", ""), f"{pointer}/body", names),
                due_in_business_days=due if isinstance(due, int) else 0,
                priority=str(item.get("priority", "normal")),
                approach=str(item.get("approach", "consultative")),
                close_when_obsolete=bool(item.get("close_when_obsolete", False)),
                because=self._template(item.get("because", ""), f"{pointer}/because", names),
            ))
        return result

    def _unique_ids(self, decisions: list[Decision], tasks: list[TaskRule]) -> None:
        seen: dict[str, str] = {}
        for rule_id, pointer in [(r.id, r.pointer) for d in decisions for r in d.rules] + [
            (t.id, t.pointer) for t in tasks
        ]:
            if rule_id in seen:
                line, col = self.smap.locate(seen[rule_id] + "/id")
                self.error(f"{pointer}/id", f"duplicate rule id '{rule_id}' (first used at "
                                            f"line {line})")
            else:
                seen[rule_id] = pointer

    # -- embedded tests ------------------------------------------------------------------

    def _tests(self, raw: Any, tasks: list[TaskRule]) -> list[TestCase]:
        rule_ids = {r.id for d in self._all_decisions() for r in d} | {t.id for t in tasks}
        purposes = {t.purpose for t in tasks}
        result = []
        names_seen: set[str] = set()
        for index, item in enumerate(_list(raw)):
            pointer = f"/tests/{index}"
            if not isinstance(item, dict):
                continue
            name = str(item.get("name", f"test {index}"))
            if name in names_seen:
                self.error(f"{pointer}/name", f"duplicate test name '{name}'")
            names_seen.add(name)
            now = parse_datetime(item.get("now", DEFAULT_TEST_NOW))
            if now is None:
                self.error(f"{pointer}/now", "'now' is an ISO 8601 date-time like "
                                             "2026-01-05T09:00:00Z")
            facts = _dict(item.get("facts"))
            for fact in facts:
                if fact not in self.facts:
                    hint = did_you_mean(fact, self.facts)
                    if fact in self.derived_raw:
                        hint = "derived facts are computed; give the facts they derive from"
                    self.error(f"{pointer}/facts/{escape_pointer_token(fact)}",
                               f"unknown fact '{fact}'", hint, key=True)
            expect = _dict(item.get("expect"))
            if isinstance(item.get("expect"), dict) and not expect:
                self.error(f"{pointer}/expect", "the test expects nothing; add at least the "
                                                "expected status")
            for key, value in expect.items():
                k_ptr = f"{pointer}/expect/{escape_pointer_token(key)}"
                if key in ("fired", "not_fired"):
                    for i, rule_id in enumerate(_list(value)):
                        if not isinstance(rule_id, str) or rule_id not in rule_ids:
                            self.error(f"{k_ptr}/{i}", f"unknown rule id {json.dumps(rule_id)}",
                                       did_you_mean(str(rule_id), rule_ids))
                elif key == "tasks":
                    for i, purpose in enumerate(_list(value)):
                        if not isinstance(purpose, str) or purpose not in purposes:
                            self.error(f"{k_ptr}/{i}", f"no task has purpose "
                                                       f"{json.dumps(purpose)}",
                                       did_you_mean(str(purpose), purposes))
                elif key == "reason":
                    continue
                elif key not in self.outputs:
                    self.error(k_ptr, f"unknown output '{key}'",
                               did_you_mean(key, [*self.outputs, *_EXPECT_EXTRAS]), key=True)
                elif self.outputs[key][2] is not None and value not in self.outputs[key][2]:
                    closed = self.outputs[key][2] or ()
                    self.error(k_ptr, f"{json.dumps(value)} is not a valid {key}",
                               did_you_mean(str(value), closed))
            result.append(TestCase(name, pointer, now, dict(facts), dict(expect)))
        return result

    def _all_decisions(self) -> list[list[Rule]]:
        rules: list[list[Rule]] = []
        for item in _list(_dict(self.doc).get("decisions")):
            rules.append([Rule(r["id"], "", None) for r in _list(_dict(item).get("rules"))
                          if isinstance(r, dict) and isinstance(r.get("id"), str)])
        return rules


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


def _schema_type_words(types: Any) -> str:
    words = {"string": "text", "integer": "a whole number", "number": "a number",
             "boolean": "true/false", "array": "a list", "object": "an object", "null": "null"}
    if isinstance(types, list):
        return " or ".join(words.get(t, t) for t in types)
    return words.get(types, str(types))


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
    if kind == "str" and not isinstance(raw, str):
        return f"put the value in quotes: \"{raw}\""
    return None


def check_document(
    doc: Any, smap: SourceMap, filename: str, facts: Mapping[str, str]
) -> tuple[Tree | None, list[Diagnostic]]:
    """Validate a parsed rule file.

    Args:
        doc: The parsed JSON value.
        smap: Its source map, for locating problems.
        filename: How to name the file in diagnostics.
        facts: Known facts (name -> type): canonical plus a field map's custom facts.

    Returns:
        The validated tree (``None`` when there are problems) and every problem found,
        sorted by position.
    """
    checker = _Checker(doc, smap, filename, facts)
    try:
        tree = checker.run()
    except RecursionError:
        checker.error("", "the rule file nests too deeply to check")
        tree = None
    unique = {(d.line, d.col, d.pointer, d.message): d for d in checker.diagnostics}
    diagnostics = [unique[key] for key in sorted(unique)]
    return (tree if not diagnostics else None), diagnostics
