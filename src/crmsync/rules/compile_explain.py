"""Compile the explaining evaluator: the same decisions, plus the full trace, still fast.

``--explain`` must stay usable on large files, so instead of walking the tree it is compiled
like the plain evaluator (:mod:`crmsync.rules.compile`), with two differences: every condition
is evaluated completely to its three-valued result (no short-circuit, so the trace can show
every comparison with the value it saw), and each named condition is evaluated once per
contact, just before its first use, with its own trace entry. The trace has the shape
documented in :mod:`crmsync.rules.explain`, whose interpreter is the reference the tests hold
both compiled evaluators to.
"""

from __future__ import annotations

from crmsync.rules.compile import Compiled, _Generator, extra_argument
from crmsync.rules.explain import _jsonable
from crmsync.rules.tree import All, AnyOf, Decision, FactRef, Leaf, Node, Not, Ref, Tree

_OUTCOMES = {True: "fired", False: "missed", None: "unknown"}


def _all3(results: tuple[bool | None, ...]) -> bool | None:
    if False in results:
        return False
    return None if None in results else True


def _any3(results: tuple[bool | None, ...]) -> bool | None:
    if True in results:
        return True
    return None if None in results else False


def _not3(result: bool | None) -> bool | None:
    return None if result is None else not result


class _ExplainGenerator(_Generator):
    def __init__(self, tree: Tree, version: str, content_hash: str) -> None:
        super().__init__(tree, version, content_hash)
        self.named: dict[str, str] = {}  # named condition -> local holding its result
        self.namespace.update({
            "_all3": _all3, "_any3": _any3, "_not3": _not3,
            "_OUT": _OUTCOMES, "_j": _jsonable,
        })

    # -- three-valued expressions ----------------------------------------------------------

    def cond3(self, node: Node) -> str:
        """An expression for ``node``'s three-valued result that records into ``c``."""
        if isinstance(node, All | AnyOf):
            combine = "_all3" if isinstance(node, All) else "_any3"
            return f"{combine}(({', '.join(self.cond3(i) for i in node.items)},))"
        if isinstance(node, Not):
            return f"_not3({self.cond3(node.item)})"
        if isinstance(node, Ref):
            name = self.named[node.name]
            return (f"(c.append({{'at': {node.pointer!r}, 'test': 'condition {node.name}', "
                    f"'result': {name}}}) or {name})")
        assert isinstance(node, Leaf)
        true, false = self.leaf(node)
        value = self.locals[node.name]
        if node.kind == "datetime":
            # Only dates need converting for a JSON-ready trace; decided at compile time.
            value = f"({value}.isoformat() if {value} is not None else None)"
        # Append the check, then yield its result (None or x is x for x in True/False/None).
        return (f"(c.append({{'at': {node.pointer!r}, 'test': {node.text!r}, 'value': {value}, "
                f"'result': (_x := (True if {true} else (False if {false} else None)))}}) "
                "or _x)")

    def ensure_named(self, node: Node | None) -> None:
        """Emit every named condition ``node`` uses (dependencies first) not yet emitted."""
        if node is None:
            return
        if isinstance(node, All | AnyOf):
            for item in node.items:
                self.ensure_named(item)
        elif isinstance(node, Not):
            self.ensure_named(node.item)
        elif isinstance(node, Ref) and node.name not in self.named:
            body = self.tree.conditions[node.name]
            self.ensure_named(body)
            var = f"n{len(self.named)}"
            self.emit("c = []")
            self.emit(f"{var} = {self.cond3(body)}")
            self.emit(f"T.append({{'condition': {node.name!r}, 'result': {var}, "
                      "'checks': c})")
            self.named[node.name] = var

    def truth_of(self, node: Node | None) -> str:
        """Emit the evaluation of a rule condition into ``r`` (checks in ``c``)."""
        self.ensure_named(node)
        self.emit("c = []")
        self.emit(f"r = {self.cond3(node) if node is not None else 'True'}")
        return "r"

    # -- the function ----------------------------------------------------------------------

    def generate(self) -> str:
        tree = self.tree
        self.register_thresholds()
        self.emit("def _explain(facts, K, cid):", 0)
        self.emit("g = facts.get")
        self.emit("rules = []")
        self.emit("T = []")
        self.read_facts()
        for index, derived in enumerate(tree.derived.values()):
            var = f"d{index}"
            if derived.when is not None:
                self.truth_of(derived.when)
                self.emit(f"{var} = r")
                checks = "c"
            else:
                self.emit(f"{var} = {self.first_of(derived.first_of)}")
                checks = "[]"
            self.emit(f"T.append({{'derived': {derived.name!r}, 'value': _j({var}), "
                      f"'checks': {checks}}})")
            self.locals[derived.name] = var
        for index, decision in enumerate(tree.decisions):
            self.explained_decision(decision, f"o{index}", f"b{index}")
            self.locals[decision.output] = f"o{index}"
        self.explained_tasks()
        self.reason()
        status = self.locals.get("status", "'lead'")
        miss = self.locals.get("miss_type", "'none'")
        score = self.locals.get("score", "0")
        self.emit(
            f"return _Decision(cid, {status}, {miss}, {score}, reason, tuple(rules), "
            f"tuple(tasks), {self.version!r}, {self.content_hash!r}, tuple(T)"
            f"{extra_argument(self.tree, self.locals)})"
        )
        return "\n".join(self.lines) + "\n"

    def explained_decision(self, decision: Decision, var: str, because_var: str) -> None:
        out = repr(decision.output)
        # Named conditions are evaluated up front, outside any branch, so every later use
        # finds them (the interpreter does the same, keeping both traces in one order).
        for rule in decision.rules:
            self.ensure_named(rule.when)
        if decision.hit == "first":
            self.emit("w = None")
            self.emit(f"{var} = {self.const(decision.default)}")
            for rule in decision.rules:
                self.emit("if w is None:")
                with self.indented():
                    self.truth_of(rule.when)
                    self.emit(f"e = {{'rule': {rule.id!r}, 'output': {out}, "
                              "'outcome': _OUT[r], 'checks': c}")
                    self.emit("if r is True:")
                    with self.indented():
                        if isinstance(rule.then, FactRef):
                            source = self.locals[rule.then.name]
                            if decision.closed_set is not None:
                                allowed = self.const(frozenset(decision.closed_set))
                                self.emit(f"v = _norm({source})")
                                self.emit(f"ok = v in {allowed}")
                            else:
                                self.emit(f"v = {source}")
                                self.emit("ok = v is not None")
                        else:
                            self.emit(f"v = {self.const(rule.then)}")
                            self.emit("ok = True")
                        self.emit("if ok:")
                        with self.indented():
                            self.emit(f"{var} = v")
                            self.emit(f"w = {rule.id!r}")
                            self.emit(f"rules.append({rule.id!r})")
                            self.emit(f"{because_var} = {self.template(rule.because)}")
                            self.emit(f"e['because'] = {because_var}")
                        self.emit("else:")
                        with self.indented():
                            self.emit("e['outcome'] = 'missed'")
                            if isinstance(rule.then, FactRef):
                                prefix = (f"fact '{rule.then.name}' holds no valid "
                                          f"{decision.output}: ")
                                self.emit(f"e['note'] = {prefix!r} + repr({source})")
                    self.emit("T.append(e)")
                self.emit("else:")
                self.emit(f"T.append({{'rule': {rule.id!r}, 'output': {out}, "
                          "'outcome': 'not reached', 'note': \"rule '\" + w + \"' above it "
                          "decided\"})", 2)
            self.emit("if w is None:")
            self.emit(f"{because_var} = {self.template(decision.default_because)}", 2)
            self.emit(f"T.append({{'output': {out}, 'value': _j({var}), 'decided_by': w}})")
            return
        self.emit(f"{var} = {int(decision.default or 0)}" if decision.hit == "sum"
                  else f"{var} = []")
        self.emit("bl = []")
        for rule in decision.rules:
            self.truth_of(rule.when)
            self.emit(f"e = {{'rule': {rule.id!r}, 'output': {out}, 'outcome': _OUT[r], "
                      "'checks': c}")
            self.emit("if r is True:")
            with self.indented():
                if decision.hit == "sum":
                    self.emit(f"{var} += {int(rule.add)}")
                    self.emit(f"e['add'] = {int(rule.add)}")
                else:
                    self.emit(f"{var}.append({self.const(rule.then)})")
                self.emit(f"rules.append({rule.id!r})")
                self.emit(f"bl.append({self.template(rule.because)})")
                self.emit("e['because'] = bl[-1]")
            self.emit("T.append(e)")
        if decision.minimum is not None:
            self.emit(f"if {var} < {decision.minimum}: {var} = {decision.minimum}")
        if decision.maximum is not None:
            self.emit(f"if {var} > {decision.maximum}: {var} = {decision.maximum}")
        self.emit(f"{because_var} = ' + '.join(bl)")
        self.emit(f"T.append({{'output': {out}, 'value': _j({var}), 'decided_by': None}})")

    def explained_tasks(self) -> None:
        self.emit("tasks = []")
        self.emit("purposes = set()")
        for task in self.tree.tasks:
            self.ensure_named(task.when)
        for task in self.tree.tasks:
            purpose = repr(task.purpose)
            self.emit(f"if {purpose} in purposes:")
            self.emit(f"T.append({{'rule': {task.id!r}, 'task': {purpose}, "
                      "'outcome': 'not reached', 'note': 'an earlier task rule already asked "
                      "for this purpose'})", 2)
            self.emit("else:")
            with self.indented():
                self.truth_of(task.when)
                self.emit(f"T.append({{'rule': {task.id!r}, 'task': {purpose}, "
                          "'outcome': _OUT[r], 'checks': c})")
                self.emit("if r is True:")
                with self.indented():
                    self.emit(f"purposes.add({purpose})")
                    self.emit(f"rules.append({task.id!r})")
                    self.emit(
                        f"tasks.append(_TaskSpec({purpose}, {self.template(task.subject)}, "
                        f"{self.template(task.body)}, {self.due(task.due_in_business_days)}, "
                        f"{task.priority!r}, {task.approach!r}, {task.id!r}, "
                        f"{task.close_when_obsolete!r}))"
                    )


def compile_explain(tree: Tree, *, version: str, content_hash: str) -> Compiled:
    """Generate and compile ``explain(facts, K, contact_id) -> Decision`` (trace attached).

    Its ``K`` layout (thresholds, dues) is the plain evaluator's, as both register them in
    the same order.
    """
    generator = _ExplainGenerator(tree, version, content_hash)
    source = generator.generate()
    code = compile(source, f"<crmsync explain {content_hash[:12]}>", "exec")
    namespace = dict(generator.namespace)
    exec(code, namespace)  # noqa: S102 - generated from a validated tree (see compile.py)
    return Compiled(namespace["_explain"], source, generator.thresholds, generator.dues)
