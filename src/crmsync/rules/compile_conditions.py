"""The condition half of the rule compiler: three-valued conditions as Python expressions.

Every condition yields two plain boolean expressions, *is true* and *is false* (unknown is the
case where neither holds), so no "unknown" value exists at run time. A named condition used more
than once is instead evaluated once per contact into a local holding True, False or None (with
short-circuits), and read from there. :class:`ConditionCode` is a mixin of the generator in
:mod:`crmsync.rules.compile`, which supplies ``tree``, ``locals``, ``emit``, ``const`` and the
other state it uses.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from crmsync.rules.regexes import MAX_SUBJECT
from crmsync.rules.tree import All, AnyOf, FactRef, Leaf, Node, Not, Ref, Tree, iter_nodes


class ConditionCode:
    """Code generation for conditions (mixin of the rule compiler's generator)."""

    tree: Tree
    locals: dict[str, str]
    hoisted: dict[str, str]
    shared: set[str]
    never_none: set[str]
    temps: int
    depth: int

    def emit(self, line: str, indent: int = 1) -> None:  # pragma: no cover - the generator's
        raise NotImplementedError

    def const(self, value: Any) -> str:  # pragma: no cover - the generator's
        raise NotImplementedError

    def threshold(self, span: Any) -> str:  # pragma: no cover - the generator's
        raise NotImplementedError

    # -- named conditions evaluated once --------------------------------------------------

    def plan_shared_conditions(self) -> None:
        """Mark the named conditions used more than once: they are evaluated once, up front."""
        uses: Counter[str] = Counter()
        roots: list[Node | None] = [*self.tree.conditions.values()]
        roots += [d.when for d in self.tree.derived.values()]
        roots += [rule.when for decision in self.tree.decisions for rule in decision.rules]
        roots += [task.when for task in self.tree.tasks]
        for root in roots:
            for node in iter_nodes(root):
                if isinstance(node, Ref):
                    uses[node.name] += 1
        self.shared = {name for name, count in uses.items() if count > 1}

    def hoist(self, roots: list[Node | None]) -> None:
        """Emit the shared named conditions ``roots`` use (dependencies first), once each."""
        for root in roots:
            for node in iter_nodes(root):
                if not isinstance(node, Ref) or node.name in self.hoisted:
                    continue
                body = self.tree.conditions[node.name]
                self.hoist([body])  # its own shared conditions first
                if node.name in self.shared:
                    var = f"c{len(self.hoisted)}"
                    self.tri(body, var)
                    self.hoisted[node.name] = var

    def temp(self) -> str:
        self.temps += 1
        return f"_t{self.temps}"

    def tri(self, node: Node, target: str) -> None:
        """Emit statements setting ``target`` to ``node``'s value: True, False or None.

        ``all`` stops at the first false item and ``any`` at the first true one, so nothing
        past the deciding item is evaluated (a regex included).
        """
        if isinstance(node, Ref):
            if node.name in self.hoisted:
                self.emit(f"{target} = {self.hoisted[node.name]}")
            else:
                self.tri(self.tree.conditions[node.name], target)
        elif isinstance(node, Not):
            self.tri(node.item, target)
            self.emit(f"if {target} is not None: {target} = not {target}")
        elif isinstance(node, All | AnyOf):
            # Kleene: in `all`, a later item can only lower True to None or False; in `any`
            # it can only raise False to None or True.
            stop, keep = ("False", "True") if isinstance(node, All) else ("True", "False")
            self.tri(node.items[0], target)
            depth = 0
            for item in node.items[1:]:
                self.emit(f"if {target} is not {stop}:")
                self.depth += 1
                depth += 1
                simple = self.simple_tri(item)
                if simple is not None:  # a local already holding the value: no temporary
                    self.emit(f"if {simple} is not {keep}: {target} = {simple}")
                    continue
                temp = self.temp()
                self.tri(item, temp)
                self.emit(f"if {temp} is not {keep}: {target} = {temp}")
            self.depth -= depth
        else:
            self.emit(f"{target} = {self.leaf_tri(node)}")

    def simple_tri(self, node: Node) -> str | None:
        """The local holding ``node``'s value when there is one (a shared condition, a yes/no
        fact tested with ``is true``), else ``None``."""
        if isinstance(node, Ref) and node.name in self.hoisted:
            return self.hoisted[node.name]
        if (isinstance(node, Leaf) and node.op == "is" and node.operand is True
                and node.kind == "bool"):
            return self.locals[node.name]
        return None

    def leaf_tri(self, leaf: Leaf) -> str:
        """An expression for one comparison's value: True, False or None (unknown)."""
        v = self.locals[leaf.name]
        if leaf.op in ("is", "is_not") and (leaf.operand is True or leaf.operand is False):
            # A coerced yes/no fact already is its own value: True, False or None.
            if (leaf.operand is True) == (leaf.op == "is"):
                return v
            return f"(None if {v} is None else not {v})"
        parts = self.leaf_parts(leaf)
        if parts is None:  # pragma: no cover - every operator has parts today
            true, false = self.leaf(leaf)
            return f"(True if {true} else (False if {false} else None))"
        present, hit = parts
        if present is None:
            return f"({hit})"
        if present == f"{v} is not None":
            return f"(None if {v} is None else ({hit}))"
        return f"(None if not ({present}) else ({hit}))"

    # -- conditions -----------------------------------------------------------------------

    def cond(self, node: Node) -> tuple[str, str]:
        """Return ``(is_true, is_false)`` Python expressions for ``node``."""
        if isinstance(node, All):
            parts = [self.cond(item) for item in node.items]
            return ("(" + " and ".join(t for t, _ in parts) + ")",
                    "(" + " or ".join(f for _, f in parts) + ")")
        if isinstance(node, AnyOf):
            parts = [self.cond(item) for item in node.items]
            return ("(" + " or ".join(t for t, _ in parts) + ")",
                    "(" + " and ".join(f for _, f in parts) + ")")
        if isinstance(node, Not):
            true, false = self.cond(node.item)
            return false, true
        if isinstance(node, Ref):
            if node.name in self.hoisted:
                var = self.hoisted[node.name]
                return f"({var} is True)", f"({var} is False)"
            return self.cond(self.tree.conditions[node.name])
        return self.leaf(node)

    def leaf(self, leaf: Leaf) -> tuple[str, str]:
        v = self.locals[leaf.name]
        op, operand = leaf.op, leaf.operand
        if op in ("is", "is_not") and not isinstance(operand, FactRef):
            # Facts are coerced, so ``is true`` is an identity test, and an equality with a
            # literal is false for a missing value without testing for None first.
            if operand is True or operand is False:
                same, other = f"({v} is {operand})", f"({v} is {not operand})"
            else:
                c = self.const(operand)
                differs = f"{v} != {c}"
                if v not in self.never_none:
                    differs = f"{v} is not None and {differs}"
                same, other = f"({v} == {c})", f"({differs})"
            return (same, other) if op == "is" else (other, same)
        if op == "in":
            c = self.const(operand)
            return f"({v} in {c})", f"({v} is not None and {v} not in {c})"
        if op == "not_in":
            c = self.const(operand)
            return f"({v} is not None and {v} not in {c})", f"({v} in {c})"
        parts = self.leaf_parts(leaf)
        if parts is None:  # pragma: no cover - every operator has parts today
            raise AssertionError(f"no code for operator {op!r}")
        present, hit = parts
        if present is None:
            return f"({hit})", f"(not {hit})"
        return f"({present} and {hit})", f"({present} and not {hit})"

    def leaf_parts(self, leaf: Leaf) -> tuple[str | None, str] | None:
        """``(present, hit)``: the comparison is unknown unless ``present`` holds (``None``:
        never unknown), and then true exactly when ``hit`` holds."""
        v = self.locals[leaf.name]
        op, operand = leaf.op, leaf.operand
        present: str | None = None if v in self.never_none else f"{v} is not None"
        if leaf.kind == "list":
            # A collected output is never null; it "exists" when something was collected.
            if op == "exists":
                return None, f"{v} != []"
            if op == "missing":
                return None, f"{v} == []"
            return None, f"{self.const(operand)} in {v}"
        if op == "exists":
            return None, f"{v} is not None"
        if op == "missing":
            return None, f"{v} is None"
        if isinstance(operand, FactRef):
            w = self.locals[operand.name]
            return f"{v} is not None and {w} is not None", f"{v} {_COMPARISONS[op][0]} {w}"
        if op in _COMPARISONS:
            return present, f"{v} {_COMPARISONS[op][0]} {self.const(operand)}"
        if op == "in":
            return present, f"{v} in {self.const(operand)}"
        if op == "not_in":
            return present, f"{v} not in {self.const(operand)}"
        if op == "between":
            low, high = self.const(operand[0]), self.const(operand[1])
            return present, f"{low} <= {v} <= {high}"
        if op == "within_days":
            return present, f"{v} >= {self.threshold(operand)}"
        if op == "older_than_days":
            return present, f"{v} < {self.threshold(operand)}"
        if op == "matches":
            # The searches are bound as constants: no attribute lookup per contact.
            search = self.const(operand.search_prefix)
            if operand.ascii_search is None:
                return present, f"{search}({v}[:{MAX_SUBJECT}]) is not None"
            fast = self.const(operand.ascii_search)
            return present, (f"({fast}({v}[:{MAX_SUBJECT}]) if {v}.isascii() "
                             f"else {search}({v}[:{MAX_SUBJECT}])) is not None")
        return present, self.text_hit(v, op, operand)

    def text_hit(self, v: str, op: str, needles: tuple[str, ...]) -> str:
        if op == "contains":
            if len(needles) == 1:
                return f"{needles[0]!r} in {v}.casefold()"
            import re

            # One scan for all the words, not one substring search per word.
            pattern = re.compile("|".join(re.escape(n) for n in needles))
            return f"{self.const(pattern.search)}({v}.casefold()) is not None"
        if op in ("starts_with", "ends_with"):
            method = "startswith" if op == "starts_with" else "endswith"
            return f"{v}.strip().casefold().{method}({self.const(tuple(needles))})"
        return f"{v}.strip().casefold() in {self.const(frozenset(needles))}"  # text_is



#: Operator -> (Python operator when true, Python operator when false).
_COMPARISONS: dict[str, tuple[str, str]] = {
    "is": ("==", "!="),
    "is_not": ("!=", "=="),
    "at_least": (">=", "<"),
    "at_most": ("<=", ">"),
    "more_than": (">", "<="),
    "less_than": ("<", ">="),
}
