"""The plain data that flows between crmsync's modules: contacts, decisions and changes.

Everything here is a frozen dataclass with no behaviour beyond construction, so every other
module can depend on it without pulling anything else in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import date, datetime
from typing import Any, Literal, TypeAlias, TypeVar

#: The closed set of funnel statuses (DOMAIN.md), in funnel order.
STATUSES: tuple[str, ...] = ("lead", "prospect", "opportunity", "disqualified")
#: The closed set of miss types (DOMAIN.md).
MISS_TYPES: tuple[str, ...] = ("none", "soft", "hard")
#: Task priorities, mapped by each connector onto its CRM's own picklist.
PRIORITIES: tuple[str, ...] = ("high", "normal", "low")
#: Selling approaches a follow-up task can carry (DOMAIN.md, "Selling approach").
APPROACHES: tuple[str, ...] = ("consultative", "direct")

#: The canonical contact facts (DESIGN.md §2) and their types; rules are written against these,
#: connectors produce them. Types: ``str``, ``int``, ``number``, ``bool``, ``datetime``.
#: ``status_override`` (a rep's manual status, which wins) and ``not_a_fit`` (explicitly marked
#: "not a fit") are additions DOMAIN.md needs.
CANONICAL_FACTS: Mapping[str, str] = {
    # identity
    "id": "str", "email": "str", "email_domain": "str", "first_name": "str", "last_name": "str",
    "title": "str", "owner_id": "str", "lead_source": "str",
    # firmographics
    "company": "str", "country": "str", "industry": "str", "employees": "int",
    "annual_revenue": "number",
    # engagement
    "created_at": "datetime", "last_activity_at": "datetime", "last_contacted_at": "datetime",
    "form_submissions": "int", "webinars_attended": "int", "content_downloads": "int",
    "page_views": "int", "pricing_page_views": "int", "chat_conversations": "int",
    "trial_signup": "bool", "demo_requested": "bool", "case_study_requested": "bool",
    "inbound_from_decision_maker": "bool",
    # qualification
    "budget_confirmed": "bool", "decision_maker": "bool", "not_a_fit": "bool",
    # deals
    "open_deals": "int", "won_deals": "int", "lost_deals": "int", "deal_stage": "str",
    "deal_amount": "number", "closed_lost_reason": "str", "closed_lost_at": "datetime",
    "competitor": "str",
    # CRM native
    "lifecycle_stage": "str", "lead_status": "str", "status_override": "str",
    # previous outputs (what crmsync wrote last time)
    "previous_status": "str", "previous_miss_type": "str", "status_since": "datetime",
}

#: The outputs crmsync writes back, with their types (a field map names the CRM field of each).
OUTPUTS: Mapping[str, str] = {
    "status": "str", "miss_type": "str", "score": "int", "reason": "str", "ruleset": "str",
    "evaluated_at": "datetime", "status_since": "datetime",
}

#: Canonical contact facts: fact name -> value (``None`` when missing). See DESIGN.md §2.
Facts: TypeAlias = Mapping[str, Any]

Priority = Literal["high", "normal", "low"]
Approach = Literal["consultative", "direct"]

_T = TypeVar("_T")
_NO_VALUE: Any = object()  # "not passed", for fields with a default factory


def slot_init(cls: type[_T]) -> type[_T]:
    """Give a frozen, slotted dataclass a cheaper ``__init__``; use under ``@dataclass``.

    A frozen dataclass's generated ``__init__`` stores each field through
    ``object.__setattr__`` (to get past its own frozen ``__setattr__``), about ten times the
    cost of a plain slot store, and the sync builds several such records per contact. The
    ``__init__`` installed here stores through the slot descriptors instead: same parameters,
    defaults and default factories, and the same frozen, hashable, comparable instances. Like
    ``dataclasses`` itself it is generated from source text, built once per class at import.
    """
    params, lines = [], []
    space: dict[str, Any] = {"_NO_VALUE": _NO_VALUE}
    for item in fields(cls):  # type: ignore[arg-type]
        name = item.name
        if not item.init or item.kw_only or not hasattr(cls, "__slots__"):
            raise TypeError(f"slot_init: {cls.__name__}.{name} is not a plain slotted field")
        space[f"_set_{name}"] = getattr(cls, name).__set__
        if item.default is not MISSING:
            space[f"_default_{name}"] = item.default
            params.append(f"{name}=_default_{name}")
        elif item.default_factory is not MISSING:
            space[f"_factory_{name}"] = item.default_factory
            params.append(f"{name}=_NO_VALUE")
            lines.append(f"if {name} is _NO_VALUE: {name} = _factory_{name}()")
        else:
            params.append(name)
        lines.append(f"_set_{name}(self, {name})")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"slot_init: {cls.__name__} has a __post_init__")
    source = f"def __init__(self, {', '.join(params)}):\n" + "".join(
        f"    {line}\n" for line in lines)
    exec(source, space)  # noqa: S102 - our own field names, as dataclasses does
    init: Callable[..., None] = space["__init__"]
    init.__qualname__ = f"{cls.__name__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = dict(cls.__init__.__annotations__)  # type: ignore[misc]
    cls.__init__ = init  # type: ignore[misc]
    return cls


@slot_init
@dataclass(frozen=True, slots=True)
class Contact:
    """One CRM record as crmsync sees it.

    Attributes:
        id: The CRM's record id.
        facts: Canonical facts (DESIGN.md §2) produced by the connector's field map.
        outputs: The crmsync output fields as currently stored in the CRM, by canonical output
            name (``status``, ``miss_type``, ``score``, ``reason``, ...); used to diff.
        object_type: The CRM object the record lives in (``contact``, ``Lead``, ``Contact``).
        modified_at: The record's change timestamp, used as the incremental cursor.
        owner_id: The CRM user who owns the record; tasks are assigned to them.
    """

    id: str
    facts: Facts
    outputs: Mapping[str, Any] = field(default_factory=dict)
    object_type: str = "contact"
    modified_at: datetime | None = None
    owner_id: str | None = None


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """A follow-up task a decision asks for; rendered from a rule file's task template.

    Attributes:
        purpose: Stable purpose key; a contact never has two open crmsync tasks for one purpose.
        subject: One-line subject, placeholders already filled in.
        body: Longer guidance for the rep, placeholders already filled in.
        due: Due date (business days already counted from the run's ``now``).
        priority: ``high``, ``normal`` or ``low``.
        approach: ``consultative`` (soft selling) or ``direct`` (hard selling).
        rule_id: The id of the task template rule that asked for it.
        close_when_obsolete: Close the open task once the purpose no longer applies.
    """

    purpose: str
    subject: str
    body: str
    due: date
    priority: Priority = "normal"
    approach: Approach = "consultative"
    rule_id: str = ""
    close_when_obsolete: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """The rules engine's verdict on one contact.

    Attributes:
        contact_id: The evaluated contact's id.
        status: One of :data:`STATUSES`.
        miss_type: One of :data:`MISS_TYPES`.
        score: The clamped lead score.
        reason: One-line human reason (at most 255 characters) built from ``because`` texts.
        rules: Ids of the rules that fired, in evaluation order.
        tasks: Follow-up tasks the rules ask for.
        ruleset_version: The rule file's declared version.
        ruleset_hash: Content hash of the rule file, so a decision names exactly what made it.
        trace: Optional explanation (only when asked for): JSON-ready dicts.
        extra: The rule file's declared custom outputs (``icp_tier``...), by name, as they are
            written to the CRM: text, a number, yes/no or ``None`` (a collected list is joined
            into one line of text). Empty when the rule file declares none.
    """

    contact_id: str
    status: str
    miss_type: str
    score: int
    reason: str
    rules: tuple[str, ...] = ()
    tasks: tuple[TaskSpec, ...] = ()
    ruleset_version: str = ""
    ruleset_hash: str = ""
    trace: tuple[Mapping[str, Any], ...] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True, slots=True)
class FieldUpdate:
    """Set one crmsync-owned output field on a record (``old`` is kept for the journal/undo)."""

    contact_id: str
    object_type: str
    output: str
    old: Any
    new: Any


@slot_init
@dataclass(frozen=True, slots=True)
class TaskCreate:
    """Create a follow-up task; ``key`` is deterministic in (contact, purpose)."""

    contact_id: str
    object_type: str
    key: str
    spec: TaskSpec
    owner_id: str | None = None


@slot_init
@dataclass(frozen=True, slots=True)
class TaskClose:
    """Close an open crmsync task whose purpose no longer applies."""

    contact_id: str
    object_type: str
    key: str
    task_id: str


#: One planned write.
Change: TypeAlias = FieldUpdate | TaskCreate | TaskClose


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where an incremental read of one CRM object stream resumes.

    Attributes:
        stream: The object stream (``hubspot:contacts``, ``salesforce:Lead``...).
        value: Highest change timestamp fully processed, or ``None`` for a first full read.
        ids_at_value: Ids already processed at exactly ``value`` (de-duplication on overlap).
    """

    stream: str
    value: datetime | None = None
    ids_at_value: frozenset[str] = frozenset()


# -- cheap construction of the per-contact records ------------------------------------------------
#
# A frozen dataclass's generated ``__init__`` stores each field through ``object.__setattr__``
# (to get past its own frozen ``__setattr__``), about ten times the cost of a plain slot store,
# and the rules engine builds a Decision (and often a TaskSpec) for every contact. These
# ``__init__``s store through the slot descriptors directly: same signature, same defaults, same
# frozen, hashable, comparable instances, a fraction of the cost. No field is validated here,
# as before: the rules engine builds only valid ones.


def _decision_init() -> Any:
    (s_contact_id, s_status, s_miss_type, s_score, s_reason, s_rules, s_tasks, s_version,
     s_hash, s_trace, s_extra) = (getattr(Decision, name).__set__ for name in (
        "contact_id", "status", "miss_type", "score", "reason", "rules", "tasks",
        "ruleset_version", "ruleset_hash", "trace", "extra"))
    # One shared empty dict, not one per contact (read-only by convention, as the frozen
    # Decision is; a plain dict so dataclasses.asdict and copy.deepcopy work on it).
    no_extra: Mapping[str, Any] = {}

    def __init__(  # noqa: N807 - installed as Decision.__init__
        self: Decision, contact_id: str, status: str, miss_type: str, score: int, reason: str,
        rules: tuple[str, ...] = (), tasks: tuple[TaskSpec, ...] = (), ruleset_version: str = "",
        ruleset_hash: str = "", trace: tuple[Mapping[str, Any], ...] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        s_contact_id(self, contact_id)
        s_status(self, status)
        s_miss_type(self, miss_type)
        s_score(self, score)
        s_reason(self, reason)
        s_rules(self, rules)
        s_tasks(self, tasks)
        s_version(self, ruleset_version)
        s_hash(self, ruleset_hash)
        s_trace(self, trace)
        s_extra(self, no_extra if extra is None else extra)

    return __init__


def _task_spec_init() -> Any:
    (s_purpose, s_subject, s_body, s_due, s_priority, s_approach, s_rule_id,
     s_close) = (getattr(TaskSpec, name).__set__ for name in (
        "purpose", "subject", "body", "due", "priority", "approach", "rule_id",
        "close_when_obsolete"))

    def __init__(  # noqa: N807 - installed as TaskSpec.__init__
        self: TaskSpec, purpose: str, subject: str, body: str, due: date,
        priority: Priority = "normal", approach: Approach = "consultative", rule_id: str = "",
        close_when_obsolete: bool = False,
    ) -> None:
        s_purpose(self, purpose)
        s_subject(self, subject)
        s_body(self, body)
        s_due(self, due)
        s_priority(self, priority)
        s_approach(self, approach)
        s_rule_id(self, rule_id)
        s_close(self, close_when_obsolete)

    return __init__


for _cls, _make in ((Decision, _decision_init), (TaskSpec, _task_spec_init)):
    _init = _make()
    _init.__qualname__ = f"{_cls.__name__}.__init__"
    _init.__doc__ = _cls.__init__.__doc__
    _cls.__init__ = _init  # type: ignore[method-assign]
del _cls, _make, _init
