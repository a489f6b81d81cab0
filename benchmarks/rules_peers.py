"""The peers of ``rules_bench.py``: zen-engine (GoRules JDM) and json-logic-qubit.

The validated rule tree of ``rules/default.json`` is translated into one JDM expression node
(and the same ZEN expressions compiled once) and into one JSON-logic rule per output, with
crmsync's three-valued logic spelled out as explicit null checks (neither has it built in).
They get their natural input (dates as epoch seconds, prepared outside the timed loop) and
decide status, miss type, score and the collected signal lists; every record is checked to
agree with crmsync before anything is timed. Needs ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from crmsync.rules.tree import All, AnyOf, FactRef, Leaf, Not, Ref, Tree

#: The run's clock (the same as rules_bench.NOW).
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _epoch(value: datetime) -> float:
    return value.timestamp()


def peer_input(contact: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The same contact as JSON-friendly data: dates as epoch seconds, plus ``__now``."""
    data = {k: (_epoch(v) if isinstance(v, datetime) else v) for k, v in contact.items()}
    data["__now"] = _epoch(now)
    return data


class ZenTranslator:
    """Validated tree -> one JDM expression node (ZEN expression language)."""

    def __init__(self, tree: Tree, *, earlier: str = "$.") -> None:
        self.tree = tree
        self.local: dict[str, str] = {}
        self.earlier = earlier  # how an expression reads a key computed before it

    @staticmethod
    def lit(value: Any) -> str:
        if isinstance(value, datetime):
            return repr(value.timestamp())
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            # ZEN string literals take backslashes verbatim; pick the quote the text lacks.
            return f'"{value}"' if "'" in value else f"'{value}'"
        return repr(value)

    def ref(self, name: str) -> str:
        return self.local.get(name, name)

    def cond(self, node: Any) -> tuple[str, str]:
        if isinstance(node, All | AnyOf):
            parts = [self.cond(i) for i in node.items]
            t_join, f_join = (" and ", " or ") if isinstance(node, All) else (" or ", " and ")
            return ("(" + t_join.join(p[0] for p in parts) + ")",
                    "(" + f_join.join(p[1] for p in parts) + ")")
        if isinstance(node, Not):
            t, f = self.cond(node.item)
            return f, t
        if isinstance(node, Ref):
            return self.cond(self.tree.conditions[node.name])
        return self.leaf(node)

    def leaf(self, leaf: Leaf) -> tuple[str, str]:
        v, op, o = self.ref(leaf.name), leaf.op, leaf.operand
        nn = f"{v} != null"
        if leaf.kind == "list":
            if op == "contains":
                return f"({self.lit(o)} in {v})", f"(not ({self.lit(o)} in {v}))"
            return ((f"(len({v}) > 0)", f"(len({v}) == 0)") if op == "exists"
                    else (f"(len({v}) == 0)", f"(len({v}) > 0)"))
        if op == "exists":
            return f"({nn})", f"({v} == null)"
        if op == "missing":
            return f"({v} == null)", f"({nn})"
        cmp = {"is": ("==", "!="), "is_not": ("!=", "=="), "at_least": (">=", "<"),
               "at_most": ("<=", ">"), "more_than": (">", "<="), "less_than": ("<", ">=")}
        if op in cmp:
            other = self.ref(o.name) if isinstance(o, FactRef) else self.lit(o)
            guard = f"{nn} and {other} != null" if isinstance(o, FactRef) else nn
            return (f"({guard} and {v} {cmp[op][0]} {other})",
                    f"({guard} and {v} {cmp[op][1]} {other})")
        if op in ("in", "not_in"):
            items = "[" + ", ".join(self.lit(i) for i in sorted(o, key=str)) + "]"
            t, f = f"({nn} and {v} in {items})", f"({nn} and not ({v} in {items}))"
            return (t, f) if op == "in" else (f, t)
        if op == "between":
            inside = f"{v} >= {self.lit(o[0])} and {v} <= {self.lit(o[1])}"
            return f"({nn} and {inside})", f"({nn} and not ({inside}))"
        if op in ("within_days", "older_than_days"):
            limit = f"(__now - {o.total_seconds()})"
            t, f = f"({nn} and {v} >= {limit})", f"({nn} and {v} < {limit})"
            return (t, f) if op == "within_days" else (f, t)
        if op == "matches":
            hit = f"matches(lower({v}), {self.lit(o.pattern)})"
        elif op == "contains":
            hit = "(" + " or ".join(f"contains(lower({v}), {self.lit(n)})" for n in o) + ")"
        elif op in ("starts_with", "ends_with"):
            fn = "startsWith" if op == "starts_with" else "endsWith"
            hit = "(" + " or ".join(f"{fn}(lower(trim({v})), {self.lit(n)})" for n in o) + ")"
        else:
            hit = f"(lower(trim({v})) in [{', '.join(self.lit(n) for n in sorted(o))}])"
        return f"({nn} and {hit})", f"({nn} and not {hit})"

    def expressions(self) -> list[tuple[str, str]]:
        """``(key, expression)`` pairs, evaluated in order; later ones read earlier via ``$``."""
        out = []
        for derived in self.tree.derived.values():
            t, f = self.cond(derived.when)
            out.append((derived.name, f"{t} ? true : ({f} ? false : null)"))
            self.local[derived.name] = f"{self.earlier}{derived.name}"
        for decision in self.tree.decisions:
            if decision.hit == "first":
                expr = self.lit(decision.default)
                for rule in reversed(decision.rules):
                    t = self.cond(rule.when)[0] if rule.when else "true"
                    if isinstance(rule.then, FactRef):
                        src = self.ref(rule.then.name)
                        allowed = "[" + ", ".join(self.lit(s) for s in decision.closed_set) + "]"
                        t = f"({t} and {src} != null and lower(trim({src})) in {allowed})"
                        value = f"lower(trim({src}))"
                    else:
                        value = self.lit(rule.then)
                    expr = f"({t} ? {value} : {expr})"
            elif decision.hit == "sum":
                terms = [str(decision.default or 0)] + [
                    f"({self.cond(r.when)[0]} ? {r.add} : 0)" for r in decision.rules]
                total = " + ".join(terms)
                expr = f"max([{decision.minimum}, min([{decision.maximum}, {total}])])"
            else:
                items = ", ".join(f"({self.cond(r.when)[0]} ? {self.lit(r.then)} : null)"
                                  for r in decision.rules)
                expr = f"filter([{items}], # != null)"
            out.append((decision.output, expr))
            self.local[decision.output] = f"{self.earlier}{decision.output}"
        return out

    def graph(self) -> dict[str, Any]:
        """The JDM document."""
        position = {"x": 0, "y": 0}
        expressions = [{"id": f"e{i}", "key": key, "value": value}
                       for i, (key, value) in enumerate(self.expressions())]
        return {
            "nodes": [
                {"id": "in", "type": "inputNode", "name": "contact", "position": position},
                {"id": "rules", "type": "expressionNode", "name": "default rules",
                 "position": position, "content": {"expressions": expressions}},
                {"id": "out", "type": "outputNode", "name": "decision", "position": position},
            ],
            "edges": [{"id": "a", "sourceId": "in", "targetId": "rules", "type": "edge"},
                      {"id": "b", "sourceId": "rules", "targetId": "out", "type": "edge"}],
        }


class JsonLogicTranslator:
    """Validated tree -> one JSON-logic rule per derived fact and output, applied in order."""

    def __init__(self, tree: Tree) -> None:
        self.tree = tree

    @staticmethod
    def lit(value: Any) -> Any:
        return value.timestamp() if isinstance(value, datetime) else value

    def var(self, name: str) -> dict[str, Any]:
        return {"var": name}

    def cond(self, node: Any) -> tuple[Any, Any]:
        if isinstance(node, All | AnyOf):
            parts = [self.cond(i) for i in node.items]
            t_op, f_op = ("and", "or") if isinstance(node, All) else ("or", "and")
            return {t_op: [p[0] for p in parts]}, {f_op: [p[1] for p in parts]}
        if isinstance(node, Not):
            t, f = self.cond(node.item)
            return f, t
        if isinstance(node, Ref):
            return self.cond(self.tree.conditions[node.name])
        return self.leaf(node)

    def leaf(self, leaf: Leaf) -> tuple[Any, Any]:
        v, op, o = self.var(leaf.name), leaf.op, leaf.operand
        nn = {"!=": [v, None]}

        def guarded(expr: Any) -> Any:
            return {"and": [nn, expr]}

        if leaf.kind == "list":
            if op == "contains":
                return {"in": [o, v]}, {"!": {"in": [o, v]}}
            t, f = {"!!": [v]}, {"!": [v]}
            return (t, f) if op == "exists" else (f, t)
        if op == "exists":
            return nn, {"==": [v, None]}
        if op == "missing":
            return {"==": [v, None]}, nn
        cmp = {"is": ("===", "!=="), "is_not": ("!==", "==="), "at_least": (">=", "<"),
               "at_most": ("<=", ">"), "more_than": (">", "<="), "less_than": ("<", ">=")}
        if op in cmp:
            if isinstance(o, FactRef):
                other = self.var(o.name)
                both = {"and": [nn, {"!=": [other, None]}]}
                return ({"and": [both, {cmp[op][0]: [v, other]}]},
                        {"and": [both, {cmp[op][1]: [v, other]}]})
            return guarded({cmp[op][0]: [v, self.lit(o)]}), guarded({cmp[op][1]: [v, self.lit(o)]})
        if op in ("in", "not_in"):
            items = sorted(o, key=str)
            t, f = guarded({"in": [v, items]}), guarded({"!": {"in": [v, items]}})
            return (t, f) if op == "in" else (f, t)
        if op == "between":
            inside = {"<=": [self.lit(o[0]), v, self.lit(o[1])]}
            return guarded(inside), guarded({"!": inside})
        if op in ("within_days", "older_than_days"):
            limit = {"-": [{"var": "__now"}, o.total_seconds()]}
            t, f = guarded({">=": [v, limit]}), guarded({"<": [v, limit]})
            return (t, f) if op == "within_days" else (f, t)
        lower = {"method": [v, "lower"]}
        stripped = {"method": [{"method": [v, "strip"]}, "lower"]}
        if op == "matches":
            hit: Any = {"regex_search": [o.pattern, v]}
        elif op == "contains":
            hit = {"or": [{"in": [n, lower]} for n in o]}
        elif op in ("starts_with", "ends_with"):
            method = "startswith" if op == "starts_with" else "endswith"
            hit = {"or": [{"method": [stripped, method, [n]]} for n in o]}
        else:
            hit = {"in": [stripped, sorted(o)]}
        return guarded(hit), guarded({"!": hit})

    def rules(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = []
        for derived in self.tree.derived.values():
            t, f = self.cond(derived.when)
            out.append((derived.name, {"if": [t, True, f, False, None]}))
        for decision in self.tree.decisions:
            if decision.hit == "first":
                branches: list[Any] = []
                for rule in decision.rules:
                    t = self.cond(rule.when)[0] if rule.when else True
                    if isinstance(rule.then, FactRef):
                        src = self.var(rule.then.name)
                        normal = {"method": [{"method": [src, "strip"]}, "lower"]}
                        t = {"and": [t, {"!=": [src, None]},
                                     {"in": [normal, list(decision.closed_set)]}]}
                        branches += [t, normal]
                    else:
                        branches += [t, rule.then]
                out.append((decision.output, {"if": [*branches, decision.default]}))
            elif decision.hit == "sum":
                total = {"+": [decision.default or 0] + [
                    {"if": [self.cond(r.when)[0], r.add, 0]} for r in decision.rules]}
                out.append((decision.output,
                            {"max": [decision.minimum, {"min": [decision.maximum, total]}]}))
            else:
                out.append((decision.output, {"merge": [
                    {"if": [self.cond(r.when)[0], [r.then], []]} for r in decision.rules]}))
        return out


def peer_engines(rules: Any, contacts: list[dict[str, Any]], peer_count: int,
                  each: Callable[..., Callable[[], None]],
                  ) -> list[tuple[str, Callable[[], None], int, str]]:
    """zen-engine and json-logic on the same rules, checked to agree first."""
    import json_logic
    import zen

    peers_in = [peer_input(c, NOW) for c in contacts[:peer_count]]
    engine = zen.ZenEngine()
    zen_decision = engine.create_decision(json.dumps(ZenTranslator(rules.tree).graph()))
    compiled_zen = [(key, zen.compile_expression(expr))
                    for key, expr in ZenTranslator(rules.tree, earlier="").expressions()]

    def run_zen_expressions(data: dict[str, Any]) -> dict[str, Any]:
        context = dict(data)
        for key, expression in compiled_zen:
            context[key] = expression.evaluate(context)
        return context

    json_logic.add_operation(
        "regex_search", lambda pattern, s: re.search(pattern, s[:1000], re.I) is not None)
    logic = JsonLogicTranslator(rules.tree).rules()

    def run_logic(data: dict[str, Any]) -> dict[str, Any]:
        data = dict(data)
        for key, rule in logic:
            data[key] = json_logic.jsonLogic(rule, data)
        return data

    keys = ("status", "miss_type", "score", "buying_signals", "qualification")
    for contact, data in zip(contacts, peers_in, strict=False):
        mine = rules.evaluate(contact, now=NOW)
        ours = (mine.status, mine.miss_type, mine.score)
        zen_out = zen_decision.evaluate(data)["result"]
        logic_out = run_logic(data)
        for name, out in (("zen-engine", zen_out), ("json-logic", logic_out),
                          ("zen expressions", run_zen_expressions(data))):
            theirs = (out["status"], out["miss_type"], int(out["score"]))
            if theirs != ours:
                raise SystemExit(f"{name} disagrees on {contact['id']}: {theirs} != {ours}")
        assert all(k in zen_out for k in keys)

    return [
        ("zen-engine (GoRules JDM)", each(zen_decision.evaluate, peers_in), peer_count,
         "status, miss, score, lists"),
        ("zen-engine compiled expressions", each(run_zen_expressions, peers_in), peer_count,
         "same expressions, no JDM graph"),
        ("json-logic-qubit", each(run_logic, peers_in), peer_count,
         "status, miss, score, lists"),
    ]
