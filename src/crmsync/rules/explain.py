"""Evaluate a rule tree step by step, recording why each rule fired or missed.

This is a plain interpreter over the validated tree, written independently of the code
generator: it serves ``--explain`` (where a full trace matters more than speed) and, in the
tests, as a second implementation the compiled evaluator must always agree with.

The trace is a tuple of JSON-ready dicts, one per derived fact, rule, decision and task:
``{"rule": id, "output": ..., "outcome": "fired" | "missed" | "unknown" | "not reached",
"checks": [{"at": pointer, "test": text, "value": seen, "result": true|false|null}]}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from crmsync.model import Decision as DecisionRecord
from crmsync.model import TaskSpec
from crmsync.rules.compile import compose_reason, extra_values, normalise_closed
from crmsync.rules.facts import coerce
from crmsync.rules.regexes import MAX_SUBJECT
from crmsync.rules.templates import render
from crmsync.rules.tree import All, AnyOf, FactRef, Leaf, Node, Not, Ref, Tree

Tri = bool | None


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class Interpreter:
    """Evaluates one contact against a tree, recording checks when asked."""

    def __init__(self, tree: Tree, now: datetime, thresholds: Mapping[timedelta, datetime],
                 dues: Mapping[int, Any]) -> None:
        self.tree = tree
        self.now = now
        self.thresholds = thresholds
        self.dues = dues
        self.values: dict[str, Any] = {}
        self.checks: list[dict[str, Any]] | None = None
        self.trace: list[dict[str, Any]] | None = None
        self.memo: dict[str, Tri] = {}

    # -- conditions ----------------------------------------------------------------------

    def truth(self, node: Node) -> Tri:
        """Kleene three-valued result of ``node``; every leaf is visited (full trace)."""
        if isinstance(node, All):
            results = [self.truth(item) for item in node.items]
            if False in results:
                return False
            return None if None in results else True
        if isinstance(node, AnyOf):
            results = [self.truth(item) for item in node.items]
            if True in results:
                return True
            return None if None in results else False
        if isinstance(node, Not):
            inner = self.truth(node.item)
            return None if inner is None else not inner
        if isinstance(node, Ref):
            result = self.condition(node.name)
            if self.checks is not None:
                self.checks.append({"at": node.pointer, "test": f"condition {node.name}",
                                    "result": result})
            return result
        value = self.values.get(node.name)
        result = self.leaf(node, value)
        if self.checks is not None:
            self.checks.append({"at": node.pointer, "test": node.text,
                                "value": _jsonable(value), "result": result})
        return result

    def condition(self, name: str) -> Tri:
        """A named condition's result, evaluated once per contact (it is pure).

        Its own checks go to the trace once, as a ``{"condition": name, ...}`` entry, and each
        use shows up in a rule's checks as ``condition <name>``.
        """
        if name in self.memo:
            return self.memo[name]
        outer, self.checks = self.checks, ([] if self.trace is not None else None)
        result = self.truth(self.tree.conditions[name])
        if self.trace is not None:
            self.trace.append({"condition": name, "result": result, "checks": self.checks})
        self.checks = outer
        self.memo[name] = result
        return result

    def prepare(self, node: Node | None) -> None:
        """Evaluate the named conditions ``node`` uses, in first-use order, before the rules.

        Named conditions are pure, so when they are evaluated does not change any result; doing
        it per decision (not at first use) gives them one place in the trace even when the
        rule that uses them is never reached.
        """
        if isinstance(node, All | AnyOf):
            for item in node.items:
                self.prepare(item)
        elif isinstance(node, Not):
            self.prepare(node.item)
        elif isinstance(node, Ref):
            self.condition(node.name)

    def leaf(self, leaf: Leaf, value: Any) -> Tri:
        op, operand = leaf.op, leaf.operand
        if leaf.kind == "list" and op in ("exists", "missing"):
            return bool(value) == (op == "exists")
        if op == "exists":
            return value is not None
        if op == "missing":
            return value is None
        if value is None:
            return None
        if leaf.kind == "list":
            return operand in value
        if isinstance(operand, FactRef):
            operand = self.values.get(operand.name)
            if operand is None:
                return None
        if op == "is":
            return bool(value == operand)
        if op == "is_not":
            return bool(value != operand)
        if op == "at_least":
            return bool(value >= operand)
        if op == "at_most":
            return bool(value <= operand)
        if op == "more_than":
            return bool(value > operand)
        if op == "less_than":
            return bool(value < operand)
        if op == "in":
            return value in operand
        if op == "not_in":
            return value not in operand
        if op == "between":
            return bool(operand[0] <= value <= operand[1])
        if op == "within_days":
            return bool(value >= self.thresholds[operand])
        if op == "older_than_days":
            return bool(value < self.thresholds[operand])
        if op == "matches":
            return operand.search(value[:MAX_SUBJECT]) is not None
        if op == "contains":
            folded = value.casefold()
            return any(needle in folded for needle in operand)
        text = value.strip().casefold()
        if op == "starts_with":
            return any(text.startswith(needle) for needle in operand)
        if op == "ends_with":
            return any(text.endswith(needle) for needle in operand)
        return text in operand  # text_is

    def checked(self, node: Node | None) -> tuple[Tri, list[dict[str, Any]]]:
        """Evaluate ``node`` (``None`` = always) and return the result and its checks."""
        if node is None:
            return True, []
        self.checks = [] if self.trace is not None else None
        result = self.truth(node)
        checks, self.checks = self.checks or [], None
        return result, checks

    # -- the whole evaluation -------------------------------------------------------------

    def run(self, facts: Mapping[str, Any], contact_id: str, *, version: str,
            content_hash: str, explain: bool) -> DecisionRecord:
        """Decide one contact; with ``explain`` the decision carries the full trace."""
        tree = self.tree
        self.trace: list[dict[str, Any]] | None = [] if explain else None
        values = self.values
        for name in tree.facts_used:
            values[name] = coerce(facts.get(name), tree.facts[name])
        for derived in tree.derived.values():
            if derived.when is not None:
                value, checks = self.checked(derived.when)
            else:
                value = next((values[f] for f in derived.first_of if values.get(f) is not None),
                             None)
                checks = []
            values[derived.name] = value
            self.record({"derived": derived.name, "value": _jsonable(value), "checks": checks})
        fired: list[str] = []
        reason_parts: dict[str, str] = {}
        for decision in tree.decisions:
            becauses: list[str] = []
            winner: str | None = None
            for rule in decision.rules:
                self.prepare(rule.when)
            if decision.hit == "first":
                result: Any = decision.default
                for rule in decision.rules:
                    if winner is not None:
                        self.record({"rule": rule.id, "output": decision.output,
                                     "outcome": "not reached",
                                     "note": f"rule '{winner}' above it decided"})
                        continue
                    truth, checks = self.checked(rule.when)
                    entry = {"rule": rule.id, "output": decision.output,
                             "outcome": _outcome(truth), "checks": checks}
                    if truth:
                        value = rule.then
                        if isinstance(value, FactRef):
                            raw = values.get(value.name)
                            value = (normalise_closed(raw) if decision.closed_set is not None
                                     else raw)
                            if value is None or (decision.closed_set is not None
                                                 and value not in decision.closed_set):
                                entry["outcome"] = "missed"
                                entry["note"] = (f"fact '{rule.then.name}' holds no valid "
                                                 f"{decision.output}: {raw!r}")
                                self.record(entry)
                                continue
                        result, winner = value, rule.id
                        fired.append(rule.id)
                        becauses.append(render(rule.because, values))
                        entry["because"] = becauses[-1]
                    self.record(entry)
                if winner is None:
                    becauses.append(render(decision.default_because, values))
            else:
                result = int(decision.default or 0) if decision.hit == "sum" else []
                for rule in decision.rules:
                    truth, checks = self.checked(rule.when)
                    entry = {"rule": rule.id, "output": decision.output,
                             "outcome": _outcome(truth), "checks": checks}
                    if truth:
                        if decision.hit == "sum":
                            result += rule.add
                            entry["add"] = rule.add
                        else:
                            result.append(rule.then)
                        fired.append(rule.id)
                        becauses.append(render(rule.because, values))
                        entry["because"] = becauses[-1]
                    self.record(entry)
                if decision.minimum is not None and result < decision.minimum:
                    result = decision.minimum
                if decision.maximum is not None and result > decision.maximum:
                    result = decision.maximum
            values[decision.output] = result
            reason_parts[decision.output] = (becauses[0] if decision.hit == "first" and becauses
                                             else " + ".join(becauses))
            self.record({"output": decision.output, "value": _jsonable(result),
                         "decided_by": winner if decision.hit == "first" else None})
        tasks: list[TaskSpec] = []
        purposes: set[str] = set()
        for task in tree.tasks:
            self.prepare(task.when)
        for task in tree.tasks:
            if task.purpose in purposes:
                self.record({"rule": task.id, "task": task.purpose, "outcome": "not reached",
                             "note": "an earlier task rule already asked for this purpose"})
                continue
            truth, checks = self.checked(task.when)
            self.record({"rule": task.id, "task": task.purpose, "outcome": _outcome(truth),
                         "checks": checks})
            if truth:
                purposes.add(task.purpose)
                fired.append(task.id)
                tasks.append(TaskSpec(
                    task.purpose, render(task.subject, values), render(task.body, values),
                    self.dues[task.due_in_business_days], task.priority,  # type: ignore[arg-type]
                    task.approach, task.id, task.close_when_obsolete,  # type: ignore[arg-type]
                ))
        defaults = {d.output: d.default for d in tree.decisions if d.hit == "first"}
        parts = []
        for position, output in enumerate(tree.reason):
            at_default = output in defaults and values.get(output) == defaults[output]
            parts.append("" if position and at_default else reason_parts.get(output, ""))
        reason = compose_reason(parts)
        return DecisionRecord(
            contact_id,
            values.get("status", "lead"),
            values.get("miss_type", "none"),
            values.get("score", 0),
            reason,
            tuple(fired),
            tuple(tasks),
            version,
            content_hash,
            tuple(self.trace) if self.trace is not None else None,
            extra_values(tree, values),
        )

    def record(self, entry: dict[str, Any]) -> None:
        if self.trace is not None:
            self.trace.append(entry)


def _outcome(truth: Tri) -> str:
    if truth is None:
        return "unknown"
    return "fired" if truth else "missed"
