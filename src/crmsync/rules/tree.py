"""The validated rule tree: what the validator produces and the compiler and explainer consume.

Everything here has been checked (names exist, types match, regexes are safe), so the
compiler can trust it. Each node keeps the JSON pointer it came from, for explanations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeAlias


@dataclass(frozen=True)
class FactRef:
    """An operand that names another fact (or derived fact)."""

    name: str


@dataclass(frozen=True)
class Leaf:
    """One comparison: ``subject op operand``.

    Attributes:
        pointer: Where it sits in the rule file.
        source: ``fact`` or ``output``.
        name: The fact or output name.
        kind: The subject's type (``str``, ``int``, ``number``, ``bool``, ``datetime``,
            ``list`` for a collected output).
        op: The operator key as written (``at_least``, ``in``, ...).
        operand: Normalised operand: a literal, a tuple of literals, a :class:`FactRef`, a
            a :class:`~crmsync.rules.regexes.SafeRegex`, or ``None`` for exists/missing.
        text: A short human rendering, for explanations (``employees at_least 50``).
    """

    pointer: str
    source: str
    name: str
    kind: str
    op: str
    operand: Any
    text: str


@dataclass(frozen=True)
class All:
    """True when every item is true; false when any is false; else unknown."""

    pointer: str
    items: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    """True when any item is true; false when every item is false; else unknown."""

    pointer: str
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """Swaps true and false; unknown stays unknown."""

    pointer: str
    item: Node


@dataclass(frozen=True)
class Ref:
    """A use of a named condition (already checked to exist and to be acyclic)."""

    pointer: str
    name: str


Node: TypeAlias = Leaf | All | AnyOf | Not | Ref


@dataclass(frozen=True)
class Placeholder:
    """``{name}`` or ``{name|fallback}`` inside a template."""

    name: str
    fallback: str


@dataclass(frozen=True)
class Template:
    """Text with placeholders, split into literal strings and :class:`Placeholder` parts."""

    parts: tuple[str | Placeholder, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The names the template reads."""
        return tuple(p.name for p in self.parts if isinstance(p, Placeholder))


@dataclass(frozen=True)
class Derived:
    """A derived fact: ``when`` (yes/no, three-valued) or ``first_of`` (first non-null fact)."""

    name: str
    pointer: str
    kind: str
    when: Node | None = None
    first_of: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    """One rule of a decision.

    Attributes:
        id: Unique id (appears in decisions and explanations).
        pointer: Where it sits in the rule file.
        when: Its condition, or ``None`` for "always".
        then: The value it sets (first/collect); a literal or a :class:`FactRef`.
        add: Points it adds (sum).
        because: The human reason template.
    """

    id: str
    pointer: str
    when: Node | None
    then: Any = None
    add: int = 0
    because: Template = field(default_factory=lambda: Template(()))


@dataclass(frozen=True)
class Decision:
    """An ordered list of rules that decides one output under a hit policy."""

    output: str
    hit: str
    kind: str
    pointer: str
    rules: tuple[Rule, ...]
    default: Any = None
    default_because: Template = field(default_factory=lambda: Template(()))
    minimum: int | None = None
    maximum: int | None = None
    closed_set: tuple[str, ...] | None = None


@dataclass(frozen=True)
class OutputSpec:
    """A custom output the rule file declares (``"outputs": {"icp_tier": {...}}``).

    Attributes:
        name: The output's name (a decision of the file decides it).
        kind: ``str``, ``int``, ``number``, ``bool`` or ``list`` (a collected list, written
            to the CRM as one line of text).
        values: The allowed values (text and list outputs), or ``None`` for any.
        label: The CRM field's label ``crmsync setup`` gives it.
        pointer: Where it is declared.
    """

    name: str
    kind: str
    values: tuple[str, ...] | None
    label: str
    pointer: str


@dataclass(frozen=True)
class TaskRule:
    """A task template: when it holds, the contact gets a follow-up task for ``purpose``."""

    id: str
    pointer: str
    purpose: str
    when: Node | None
    subject: Template
    body: Template
    due_in_business_days: int
    priority: str
    approach: str
    close_when_obsolete: bool
    because: Template


@dataclass(frozen=True)
class TestCase:
    """One embedded example contact and what the rules must decide for it."""

    name: str
    pointer: str
    now: Any
    facts: dict[str, Any]
    expect: dict[str, Any]


@dataclass
class Tree:
    """A whole validated rule file."""

    version: str
    conditions: dict[str, Node]
    derived: dict[str, Derived]
    decisions: tuple[Decision, ...]
    tasks: tuple[TaskRule, ...]
    reason: tuple[str, ...]
    tests: tuple[TestCase, ...]
    facts: dict[str, str]
    facts_used: frozenset[str]
    description: str = ""
    #: Custom outputs declared by the file, in declaration order (written to the CRM).
    outputs: dict[str, OutputSpec] = field(default_factory=dict)
    #: Custom facts the file declares it expects (name -> type).
    declared_facts: dict[str, str] = field(default_factory=dict)


def iter_rules(tree: Tree) -> list[tuple[str, str]]:
    """Return ``(rule id, pointer)`` of every decision rule and task rule, in file order."""
    found = [(rule.id, rule.pointer) for decision in tree.decisions for rule in decision.rules]
    return found + [(task.id, task.pointer) for task in tree.tasks]


def iter_nodes(node: Node | None) -> list[Node]:
    """Return ``node`` and every node below it (named-condition uses are not followed)."""
    if node is None:
        return []
    found: list[Node] = [node]
    if isinstance(node, All | AnyOf):
        for item in node.items:
            found.extend(iter_nodes(item))
    elif isinstance(node, Not):
        found.extend(iter_nodes(node.item))
    return found


def iter_leaves(tree: Tree) -> list[Leaf]:
    """Return every comparison written anywhere in the tree."""
    roots: list[Node | None] = [*tree.conditions.values()]
    roots += [d.when for d in tree.derived.values()]
    roots += [rule.when for decision in tree.decisions for rule in decision.rules]
    roots += [task.when for task in tree.tasks]
    return [n for root in roots for n in iter_nodes(root) if isinstance(n, Leaf)]


