"""Layer 2 of rule-file validation, conditions: derived facts, named conditions, comparisons."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from crmsync.rules.jsonpos import escape_pointer_token
from crmsync.rules.regexes import UnsafeRegexError, compile_safe
from crmsync.rules.tree import All, AnyOf, Derived, FactRef, Leaf, Node, Not, Ref
from crmsync.rules.validate_base import (
    _FACT_OPERAND_OPS,
    _INVALID,
    _TEXT_OPS,
    ALL_OPERATORS,
    OPERATORS_BY_KIND,
    CheckerBase,
    _comparable,
    _dict,
    _json_type,
    _literal_hint,
    _show,
    did_you_mean,
    kind_word,
    parse_datetime,
)


class ConditionChecks(CheckerBase):
    """Checks of derived facts, named conditions and condition trees."""

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
        value = self._with_params(raw[op], op_ptr)
        if value is _INVALID:
            return None
        operand = self._operand(op, value, kind, name, op_ptr)
        if operand is _INVALID:
            return None
        text = f"{name} {op.replace('_', ' ')} {_show(value)}"
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
                self.error(pointer, f"unsupported or invalid regex: {error}", error.hint)
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
        is_number = isinstance(raw, int | float) and not isinstance(raw, bool)
        if ((kind == "str" and isinstance(raw, str))
                or (kind in ("int", "number") and is_number)
                or (kind == "bool" and isinstance(raw, bool))):
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
