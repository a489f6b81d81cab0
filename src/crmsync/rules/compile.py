"""Compile a validated rule tree into one fast Python function.

The tree is turned into Python source and compiled once, as Jinja2 and attrs do. Nothing from
the rule file is ever pasted into the source as code: identifiers are generated (``f3``,
``o1``), names only appear inside ``repr()`` string literals, every literal is embedded with
``repr`` (primitives) or bound as a pre-built constant (sets, dates, regexes), and the tree has
already been validated. The source is kept on the :class:`Compiled` result for debugging.

Three-valued logic (DESIGN.md §2) is compiled without any "unknown" value at run time: every
condition yields two plain boolean expressions, *is true* and *is false*, and unknown is the
case where neither holds. ``all`` is true when all items are true and false when any is false;
``any`` the reverse; ``not`` swaps the two. A rule fires on *is true* only.

What is evaluated once per contact is computed once: a named condition used more than once
(``icp_fit`` is read by five rules of the default file) is evaluated into a local holding
True / False / None just before its first use, with short-circuits and each regex searched at
most once, and derived facts likewise. Values are coerced in one block at the top, so every
later check knows a fact's Python type and can format it without a generic helper. The
condition half of the generator lives in :mod:`crmsync.rules.compile_conditions`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from crmsync.model import Decision as DecisionRecord
from crmsync.model import TaskSpec
from crmsync.rules.compile_conditions import ConditionCode
from crmsync.rules.facts import COERCERS, coerce, domain_of_email
from crmsync.rules.templates import format_value
from crmsync.rules.tree import (
    Decision,
    FactRef,
    Placeholder,
    Template,
    Tree,
    iter_leaves,
)

#: The one-line reason reps see is cut to this length (a Salesforce Text(255)).
REASON_MAX = 255


#: What ends a reason cut short.
ELLIPSIS = " …"
#: Where a reason may be cut, best first: between outputs' parts and between a collected
#: output's items (whole parts kept), then between list words, then between words.
_CUT_POINTS = (("; ", " + ", ": "), (", ",), (" ",))
#: How far back from the limit a cut inside one part looks for a word boundary.
_WORD_SLACK = 40


def shorten(text: str, limit: int = REASON_MAX) -> str:
    """Cut ``text`` to at most ``limit`` characters, keeping whole leading parts.

    The reason's most important part comes first (the headline, then each output's part, each
    collected item joined by ``" + "``), so it is cut at the last part boundary that fits, and
    marked with :data:`ELLIPSIS`; only a single part longer than the limit is cut inside.
    """
    if len(text) <= limit:
        return text
    room = limit - len(ELLIPSIS)
    for level, separators in enumerate(_CUT_POINTS):
        cut = max(text.rfind(separator, 0, room + 1) for separator in separators)
        # Whole parts are always kept whole; inside one part, a word boundary is worth
        # looking for only near the end (a 1,000-character company name is cut, not dropped).
        if cut > 0 and (level == 0 or cut >= room - _WORD_SLACK):
            return text[:cut] + ELLIPSIS
    return text[:room] + ELLIPSIS


def compose_reason(parts: list[str]) -> str:
    """Join reason parts: the headline, then ``": "`` and the rest separated by ``"; "``.

    When the headline already has a colon ("Disqualified: country BR is not served"), the rest
    follows after ``"; "`` instead, so the line never reads "x: y: z". A line longer than
    :data:`REASON_MAX` is cut after its last whole part (:func:`shorten`).
    """
    kept = [part for part in parts if part]
    if not kept:
        return ""
    joiner = "; " if ": " in kept[0] else ": "
    text = kept[0] if len(kept) == 1 else kept[0] + joiner + "; ".join(kept[1:])
    return text if len(text) <= REASON_MAX else shorten(text)


def written_text(value: Any) -> Any:
    """A declared text output's value as written: cut to the CRM field's length."""
    if value.__class__ is str and len(value) > REASON_MAX:
        return shorten(value)
    return value


def written_list(items: list[Any]) -> str | None:
    """A declared list output's value as written: one line, ``"; "``-separated, whole items
    kept within the CRM field's length; ``None`` when nothing was collected."""
    if not items:
        return None
    return shorten("; ".join(format_value(item) for item in items))


def normalise_closed(value: Any) -> str | None:
    """Normalise a fact value proposed for a closed-set output (``" Prospect "`` -> prospect)."""
    return value.strip().lower() if value.__class__ is str else None


@dataclass
class Compiled:
    """The compiled evaluator and what it needs per ``now``.

    Attributes:
        function: ``function(facts, K, contact_id) -> Decision``; ``K`` comes from
            :meth:`constants_for`.
        source: The generated Python source.
        thresholds: Day spans used by within/older-than checks (``K[1:1+len]``).
        dues: Business-day counts used by tasks (after the thresholds in ``K``).
        coerced: The same evaluator for facts already coerced to their types (by
            :mod:`crmsync.coerce`, as a connector's field map does): it skips the type test of
            every fact. ``None`` for the explaining evaluator.
    """

    function: Callable[[Any, tuple[Any, ...], str], DecisionRecord]
    source: str
    thresholds: list[timedelta] = field(default_factory=list)
    dues: list[int] = field(default_factory=list)
    coerced: Callable[[Any, tuple[Any, ...], str], DecisionRecord] | None = None


class _Generator(ConditionCode):
    def __init__(self, tree: Tree, version: str, content_hash: str, *,
                 coerced: bool = False) -> None:
        self.tree = tree
        self.coerced = coerced  # facts arrive already coerced: no type tests when reading
        self.version = version
        self.content_hash = content_hash
        self.lines: list[str] = []
        self.depth = 0
        self.namespace: dict[str, Any] = {
            "_Decision": DecisionRecord,
            "_TaskSpec": TaskSpec,
            "_fmt": format_value,
            "_reason": compose_reason,
            "_shorten": shorten,
            "_text": written_text,
            "_joined": written_list,
            "_norm": normalise_closed,
            "_datetime": datetime,
            "_domain": domain_of_email,
        }
        self.constants: dict[Any, str] = {}
        self.locals: dict[str, str] = {}  # fact/derived/output name -> local variable
        self.kinds: dict[str, str] = {}  # fact/derived/output name -> its type (for templates)
        self.list_of_text: set[str] = set()  # collected outputs whose items are all text
        self.hoisted: dict[str, str] = {}  # named condition -> local holding its result
        self.shared: set[str] = set()  # named conditions worth evaluating once up front
        self.never_none: set[str] = set()  # locals that always hold a value (decided outputs)
        self.lazy: set[str] = set()  # facts only templates print: read when printed
        self.temps = 0
        self.thresholds: list[timedelta] = []
        self.dues: list[int] = []

    # -- helpers ------------------------------------------------------------------------

    def emit(self, line: str, indent: int = 1) -> None:
        self.lines.append("    " * (indent + self.depth) + line)

    @contextmanager
    def indented(self) -> Iterator[None]:
        """Emit the lines inside the ``with`` one level deeper."""
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1

    def const(self, value: Any) -> str:
        """Return an expression for ``value``: its repr for primitives, else a bound global."""
        if value is None or value.__class__ in (bool, int, str):
            return repr(value)
        if value.__class__ is float:
            return repr(value)
        key = (value.__class__.__name__, repr(value))
        if key not in self.constants:
            name = f"_k{len(self.constants)}"
            self.constants[key] = name
            self.namespace[name] = value
        return self.constants[key]

    def threshold(self, span: timedelta) -> str:
        if span not in self.thresholds:
            self.thresholds.append(span)
        return f"K[{1 + self.thresholds.index(span)}]"

    def due(self, days: int) -> str:
        if days not in self.dues:
            self.dues.append(days)
        # Dues sit after every threshold; thresholds are all known before tasks are compiled.
        return f"K[{1 + len(self.thresholds) + self.dues.index(days)}]"

    # -- generation ---------------------------------------------------------------------

    def register_thresholds(self) -> None:
        """Register every day span first: thresholds come before dues in ``K``, so no due
        index can move once handed out."""
        for leaf in iter_leaves(self.tree):
            if leaf.op in ("within_days", "older_than_days"):
                self.threshold(leaf.operand)

    def read_facts(self) -> None:
        """Emit reading and coercing every fact the rules use into a local."""
        tree = self.tree
        for index, name in enumerate(sorted(tree.facts_used)):
            var = f"f{index}"
            self.locals[name] = var
            kind = tree.facts[name]
            self.kinds[name] = kind
            self.namespace[f"_c_{kind}"] = _safe_coercer(kind)
            if name in self.lazy:
                continue
            self.emit(f"{var} = g({name!r})")
            if name == "email_domain":  # derived from the email when missing (DESIGN.md §2)
                self.emit(f"if {var} is None: {var} = _domain(g('email'))")
            if self.coerced:
                continue
            self.emit(f"if {self._needs_coercion(var, kind)} and {var} is not None:")
            self.emit(f"{var} = _c_{kind}({var})", 2)

    def first_of(self, facts: tuple[str, ...]) -> str:
        """Return the expression of a ``first_of`` derived fact: the first non-null fact."""
        expr = "None"
        for fact in reversed(facts):
            local = self.locals[fact]
            expr = f"({local} if {local} is not None else {expr})"
        return expr

    def generate(self) -> str:
        tree = self.tree
        self.register_thresholds()
        self.emit("def _evaluate(facts, K, cid):", 0)
        self.emit("g = facts.get")
        self.emit("rules = []")
        self.emit("add = rules.append")
        self.emit("if cid is None:")  # the contact's id, as text (RuleSet.evaluate's default)
        self.emit("cid = g('id')", 2)
        self.emit("if type(cid) is not str or not cid or cid != cid.strip():", 2)
        self.emit("cid = _c_str(cid) or ''", 3)
        self.namespace["_c_str"] = _safe_coercer("str")
        self.lazy = self.template_only_facts()
        self.read_facts()
        self.plan_shared_conditions()
        for index, derived in enumerate(tree.derived.values()):
            var = f"d{index}"
            if derived.when is not None:
                self.hoist([derived.when])
                self.tri(derived.when, var)
            else:
                self.emit(f"{var} = {self.first_of(derived.first_of)}")
            self.locals[derived.name] = var
            self.kinds[derived.name] = derived.kind
        reason_outputs = set(tree.reason)
        for index, decision in enumerate(tree.decisions):
            var = f"o{index}"
            self.hoist([rule.when for rule in decision.rules])
            self.decision(decision, var, f"b{index}", decision.output in reason_outputs)
            self.locals[decision.output] = var
            if decision.hit in ("first", "sum"):
                self.never_none.add(var)  # a default, a literal or a present fact; never null
            # Types known for sure: closed sets are text, sums whole numbers, collections lists.
            if decision.closed_set is not None:
                self.kinds[decision.output] = "str"
            elif decision.hit == "sum":
                self.kinds[decision.output] = "int"
            elif decision.hit == "collect":
                self.kinds[decision.output] = "list"
                if all(isinstance(r.then, str) for r in decision.rules):
                    self.list_of_text.add(decision.output)
        self.hoist([task.when for task in tree.tasks])
        self.tasks()
        self.fast_reason()
        status = self.locals.get("status", "'lead'")
        miss = self.locals.get("miss_type", "'none'")
        score = self.locals.get("score", "0")
        self.emit(
            f"return _Decision(cid, {status}, {miss}, {score}, reason, tuple(rules), "
            f"tuple(tasks) if tasks else (), {self.version!r}, {self.content_hash!r}, None"
            f"{self.extra()})"
        )
        return "\n".join(self.lines) + "\n"

    def extra(self) -> str:
        """The ``extra`` argument of the Decision: the declared outputs as written, if any."""
        return extra_argument(self.tree, self.locals)

    def template_only_facts(self) -> set[str]:
        """Facts that only texts print (``first_name`` in a task subject): read on demand."""
        tree = self.tree
        read: set[str] = set()
        for leaf in iter_leaves(tree):
            if leaf.source == "fact":
                read.add(leaf.name)
            if isinstance(leaf.operand, FactRef):
                read.add(leaf.operand.name)
        for derived in tree.derived.values():
            read.update(derived.first_of)
        for decision in tree.decisions:
            read.update(r.then.name for r in decision.rules if isinstance(r.then, FactRef))
        read.add("email_domain")  # derived from the email as it is read
        return {name for name in tree.facts_used if name not in read}

    @staticmethod
    def _needs_coercion(var: str, kind: str) -> str:
        """The cheap test for "this value is not already of its fact's type".

        ``type(x)`` rather than ``x.__class__``: CPython 3.11 specialises the call to ``type``
        with one argument, which halves the cost of the test run once per fact per contact.
        """
        if kind == "str":
            # Text is stripped (crmsync.coerce); most values have nothing to strip.
            return f"(type({var}) is not str or not {var} or {var} != {var}.strip())"
        if kind == "int":
            return f"type({var}) is not int"
        if kind == "number":
            # x - x != 0.0 catches NaN and infinities, which are treated as missing.
            return (f"type({var}) is not int and (type({var}) is not float "
                    f"or {var} - {var} != 0.0)")
        if kind == "bool":
            return f"type({var}) is not bool"
        return f"(type({var}) is not _datetime or {var}.tzinfo is None)"

    def decision(self, decision: Decision, var: str, because_var: str, in_reason: bool) -> None:
        if decision.hit == "first":
            keyword = "if"
            for rule in decision.rules:
                true = self.cond(rule.when)[0] if rule.when is not None else "True"
                if isinstance(rule.then, FactRef):
                    source = self.locals[rule.then.name]
                    if decision.closed_set is not None:
                        allowed = self.const(frozenset(decision.closed_set))
                        true = f"({true}) and (_v := _norm({source})) in {allowed}"
                    else:
                        true = f"({true}) and (_v := {source}) is not None"
                    value = "_v"
                else:
                    value = self.const(rule.then)
                self.emit(f"{keyword} {true}:")
                self.emit(f"{var} = {value}", 2)
                self.emit(f"add({rule.id!r})", 2)
                if in_reason:
                    self.emit(f"{because_var} = {self.template(rule.because)}", 2)
                keyword = "elif"
            if decision.rules:
                self.emit("else:")
            indent = 2 if decision.rules else 1
            self.emit(f"{var} = {self.const(decision.default)}", indent)
            if in_reason:
                self.emit(f"{because_var} = {self.template(decision.default_because)}", indent)
            return
        if decision.hit == "sum":
            self.emit(f"{var} = {int(decision.default or 0)}")
        else:
            self.emit(f"{var} = []")
        # Joined as it goes: no list per contact, and nothing built when nothing fires. Only
        # when no text can come out empty (an empty part would still count in a join).
        as_text = all(_never_empty(rule.because) for rule in decision.rules)
        if in_reason:
            self.emit(f"{because_var} = ''" if as_text else f"{because_var} = []")
        for rule in decision.rules:
            true = self.cond(rule.when)[0] if rule.when is not None else "True"
            self.emit(f"if {true}:")
            if decision.hit == "sum":
                self.emit(f"{var} += {int(rule.add)}", 2)
            else:
                self.emit(f"{var}.append({self.const(rule.then)})", 2)
            self.emit(f"add({rule.id!r})", 2)
            if in_reason and as_text:
                text = self.template(rule.because)
                self.emit(f"{because_var} = {because_var} + ' + ' + {text} if {because_var} "
                          f"else {text}", 2)
            elif in_reason:
                self.emit(f"{because_var}.append({self.template(rule.because)})", 2)
        if decision.minimum is not None and decision.maximum is not None:
            self.emit(f"if {var} < {decision.minimum}: {var} = {decision.minimum}")
            self.emit(f"elif {var} > {decision.maximum}: {var} = {decision.maximum}")
        elif decision.minimum is not None:
            self.emit(f"if {var} < {decision.minimum}: {var} = {decision.minimum}")
        elif decision.maximum is not None:
            self.emit(f"if {var} > {decision.maximum}: {var} = {decision.maximum}")
        if in_reason and not as_text:
            self.emit(f"{because_var} = ' + '.join({because_var})")

    def tasks(self) -> None:
        self.emit("tasks = []")
        purposes = [task.purpose for task in self.tree.tasks]
        shared = {p for p in purposes if purposes.count(p) > 1}
        if shared:
            self.emit("purposes = set()")
        for task in self.tree.tasks:
            true = self.cond(task.when)[0] if task.when is not None else "True"
            if task.purpose in shared:
                true = f"{task.purpose!r} not in purposes and ({true})"
            self.emit(f"if {true}:")
            self.emit(
                f"tasks.append(_TaskSpec({task.purpose!r}, {self.template(task.subject)}, "
                f"{self.template(task.body)}, {self.due(task.due_in_business_days)}, "
                f"{task.priority!r}, {task.approach!r}, {task.id!r}, "
                f"{task.close_when_obsolete!r}))",
                2,
            )
            self.emit(f"add({task.id!r})", 2)
            if task.purpose in shared:
                self.emit(f"purposes.add({task.purpose!r})", 2)

    def reason(self) -> None:
        parts = []
        outputs = [d.output for d in self.tree.decisions]
        for position, output in enumerate(self.tree.reason):
            index = outputs.index(output)
            decision = self.tree.decisions[index]
            if position and decision.hit == "first":
                # Past the headline, an output at its default value says nothing new.
                parts.append(f"(b{index} if o{index} != {self.const(decision.default)} else '')")
            else:
                parts.append(f"b{index}")
        self.emit(f"reason = _reason([{', '.join(parts)}])")

    def fast_reason(self) -> None:
        """Emit the reason line as :func:`compose_reason` builds it, without a list or a call.

        Only when the headline can never be empty (every text of the first output has literal
        text); otherwise the general :meth:`reason`.
        """
        outputs = [d.output for d in self.tree.decisions]
        if not self.tree.reason:
            self.reason()
            return
        head = self.tree.decisions[outputs.index(self.tree.reason[0])]
        texts = [r.because for r in head.rules]
        if head.hit == "first":
            texts.append(head.default_because)
        if head.hit != "first" or not all(_never_empty(t) for t in texts):
            self.reason()
            return
        headline = f"b{outputs.index(head.output)}"
        self.emit("r = ''")
        for output in self.tree.reason[1:]:
            index = outputs.index(output)
            decision = self.tree.decisions[index]
            part = f"b{index}"
            test = part
            if decision.hit == "first":
                # Past the headline, an output at its default value says nothing new.
                test = f"o{index} != {self.const(decision.default)} and {part}"
            self.emit(f"if {test}: r = r + '; ' + {part} if r else {part}")
        self.emit(f"reason = {headline} + ('; ' if ': ' in {headline} else ': ') + r "
                  f"if r else {headline}")
        self.emit(f"if len(reason) > {REASON_MAX}: reason = _shorten(reason)")

    def template(self, template: Template) -> str:
        pieces = []
        for part in template.parts:
            if isinstance(part, Placeholder):
                pieces.append(self.placeholder(part))
            else:
                pieces.append(repr(part))
        return " + ".join(pieces) if pieces else "''"

    def placeholder(self, part: Placeholder) -> str:
        """Format one placeholder; inline where the value's Python type is known."""
        var, kind = self.locals[part.name], self.kinds.get(part.name)
        fallback = repr(part.fallback)
        if part.name in self.lazy:
            return f"_fmt(_c_{kind}(g({part.name!r})), {fallback})"
        if kind == "str":  # coerced text is never empty, so it prints as itself
            return f"({var} if {var} is not None else {fallback})"
        if kind == "int":
            return f"(str({var}) if {var} is not None else {fallback})"
        if kind == "list" and part.name in self.list_of_text:
            return f"(', '.join({var}) if {var} else {fallback})"
        return f"_fmt({var}, {fallback})"



def extra_argument(tree: Tree, local: dict[str, str]) -> str:
    """Source of the trailing ``extra`` argument: ``", {'icp_tier': o4}"``, or nothing."""
    if not tree.outputs:
        return ""
    wrap = {"list": "_joined", "str": "_text"}
    items = []
    for name, spec in tree.outputs.items():
        value = local[name]
        # A value from a declared list is at most 255 characters already (the schema says
        # so): only free text (a fact's value copied) needs cutting.
        if spec.kind in wrap and not (spec.kind == "str" and spec.values is not None):
            value = f"{wrap[spec.kind]}({value})"
        items.append(f"{name!r}: {value}")
    return f", {{{', '.join(items)}}}"


def extra_values(tree: Tree, values: dict[str, Any]) -> dict[str, Any] | None:
    """The interpreter's twin of :func:`extra_argument`: the declared outputs as written."""
    if not tree.outputs:
        return None
    return {name: written_list(values.get(name) or []) if spec.kind == "list"
            else written_text(values.get(name)) if spec.kind == "str" else values.get(name)
            for name, spec in tree.outputs.items()}


def _never_empty(template: Template) -> bool:
    """Whether ``template`` always renders to some text (it has literal text of its own)."""
    return any(isinstance(part, str) and part for part in template.parts)


def _safe_coercer(kind: str) -> Callable[[Any], Any]:
    coercer = COERCERS[kind]

    def safe(value: Any) -> Any:
        try:
            return coercer(value)
        except Exception:  # noqa: BLE001 - junk from a CRM is missing data, never a crash
            return coerce(None, kind)

    return safe


def compile_tree(tree: Tree, *, version: str, content_hash: str) -> Compiled:
    """Generate, compile and return the evaluator for ``tree`` (and its coerced-facts twin)."""
    built = []
    for coerced in (False, True):
        generator = _Generator(tree, version, content_hash, coerced=coerced)
        source = generator.generate()
        code = compile(source, f"<crmsync rules {content_hash[:12]}>", "exec")
        namespace = dict(generator.namespace)
        exec(code, namespace)  # noqa: S102 - generated from a validated tree (module docstring)
        built.append((namespace["_evaluate"], source, generator))
    (function, source, generator), (coerced_function, _, twin) = built
    if (twin.thresholds, twin.dues) != (generator.thresholds, generator.dues):
        raise AssertionError("the two evaluators disagree on the K layout")  # a bug of ours
    return Compiled(function, source, generator.thresholds, generator.dues, coerced_function)
