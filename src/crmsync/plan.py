"""Turn a decision and the contact's current CRM values into the minimal list of changes (pure).

Nothing here talks to a CRM or reads the clock. The rules decide; this module only compares:
an output whose stored value already equals the decision is not written, so an unchanged re-run
writes nothing. Task keys are deterministic in (contact, purpose), which is what keeps a contact
at one open crmsync task per purpose across runs, retries and crashes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from crmsync.model import Contact, Decision, TaskClose, TaskCreate, slot_init

#: Outputs whose change is a real change; ``evaluated_at`` and ``status_since`` only follow them.
#: A rule file's declared outputs (``Decision.extra``) are compared too.
COMPARED_OUTPUTS = ("status", "miss_type", "score", "reason", "ruleset")
#: The CRM-side limit of the reason field (a Salesforce Text(255)); the engine keeps to it too.
REASON_MAX = 255


def task_key(contact_id: str, purpose: str, generation: int = 0) -> str:
    """Return the deterministic key of the task for ``purpose`` on ``contact_id``.

    ``generation`` counts the tasks of that purpose already closed, so a purpose that applies
    again gets a new task rather than reopening (on Salesforce, upserting) the one a rep or a
    run closed.
    """
    seed = f"{contact_id}\x1f{purpose}" + (f"\x1f{generation}" if generation else "")
    digest = hashlib.sha256(seed.encode()).hexdigest()
    return f"cs-{digest[:24]}"


@dataclass(frozen=True, slots=True)
class OpenTask:
    """An open crmsync task already recorded for a contact."""

    key: str
    purpose: str
    task_id: str


@slot_init
@dataclass(frozen=True, slots=True)
class ContactPlan:
    """Everything one contact needs written, and how its status moved.

    Attributes:
        contact: The contact as read.
        decision: What the rules decided.
        updates: Output name -> new value, for outputs that change (empty when none do).
        previous: Output name -> value stored before, for the same outputs (journal and undo).
        task_creates: Tasks to create.
        task_closes: Open tasks whose purpose no longer applies, to close.
    """

    contact: Contact
    decision: Decision
    updates: Mapping[str, Any]
    previous: Mapping[str, Any]
    task_creates: tuple[TaskCreate, ...] = ()
    task_closes: tuple[TaskClose, ...] = ()

    @property
    def transition(self) -> tuple[str, str]:
        """``(old status or "new", new status)``; equal when the status did not move."""
        return (self.contact.outputs.get("status") or "new", self.decision.status)

    @property
    def miss_transition(self) -> tuple[str, str]:
        """``(old miss type or "none", new miss type)``."""
        return (self.contact.outputs.get("miss_type") or "none", self.decision.miss_type)

    @property
    def changed(self) -> bool:
        """Whether anything at all is written for this contact."""
        return bool(self.updates or self.task_creates or self.task_closes)


@dataclass(frozen=True)
class PlanOptions:
    """Knobs of planning.

    Attributes:
        close_obsolete_tasks: Close open crmsync tasks whose purpose no longer applies (else
            leave them for the rep).
        keep_open_purposes: Purposes whose tasks stay open even when obsolete (task templates
            that say ``close_when_obsolete: false``).
        restamp: Write the rule set's stamp (``ruleset``) even when no other output changed.
            Off by default: a rule change that moves 206 statuses then writes about 206
            records, not every contact; the cost is that unchanged contacts keep naming the
            rule set that last changed them.
    """

    close_obsolete_tasks: bool = True
    keep_open_purposes: frozenset[str] = frozenset()
    restamp: bool = False


def plan_contact(
    contact: Contact,
    decision: Decision,
    *,
    now: datetime,
    open_tasks: Mapping[str, OpenTask] | None = None,
    closed_counts: Mapping[str, int] | None = None,
    options: PlanOptions | None = None,
) -> ContactPlan:
    """Diff one decision against the contact's stored outputs and open tasks.

    Args:
        contact: The contact as read, with ``outputs`` holding the stored crmsync values.
        decision: The rules' decision for it.
        now: The run's clock, stamped into ``evaluated_at`` (and ``status_since`` on a move).
        open_tasks: Open crmsync tasks of this contact, by key.
        closed_counts: Tasks already closed per purpose (the generation of a new one).
        options: Planning knobs.
    """
    options = options or _DEFAULT_OPTIONS
    stored = contact.outputs
    get = stored.get
    reason = decision.reason
    wanted = (decision.status, decision.miss_type, decision.score,
              reason if len(reason) <= REASON_MAX else reason[:REASON_MAX],
              decision.ruleset_version or decision.ruleset_hash[:12])
    extra = decision.extra
    if extra and not extra.keys().isdisjoint(COMPARED_OUTPUTS):
        # A declared output named like a built-in one replaces its value in place (the
        # general merge below keeps that order); rule files do not do this, but it stays exact.
        merged = dict(zip(COMPARED_OUTPUTS, wanted, strict=True))
        merged.update(extra)
        pairs: Any = merged.items()
        extra = None
    else:
        pairs = zip(COMPARED_OUTPUTS, wanted, strict=True)
    updates: dict[str, Any] = {}
    for pairs_now in (pairs, extra.items() if extra else ()):
        for name, value in pairs_now:
            old = get(name)
            if old is None:
                # Nothing stored (a first run): only an empty decision matches.
                if value is not None and value != "":
                    updates[name] = value
            elif old.__class__ is value.__class__ and old.__class__ in _EXACT and old == value:
                continue  # the common re-run case, without same_value's conversions
            elif not same_value(old, value):
                updates[name] = value
    if not options.restamp and len(updates) == 1 and "ruleset" in updates:
        # Only the stamp differs: the decision is what the CRM already shows.
        updates = {}
    stamp = None
    if updates:
        updates["evaluated_at"] = stamp = now.astimezone(UTC)
    if "status" in updates or (get("status_since") is None and decision.status):
        updates["status_since"] = stamp = stamp or now.astimezone(UTC)
        updates.setdefault("evaluated_at", stamp)
    previous = {name: get(name) for name in updates} if updates else {}

    specs = decision.tasks
    if not specs and not open_tasks:
        # Most contacts: no task wanted and none open.
        return ContactPlan(contact, decision, updates, previous)
    open_tasks = open_tasks or {}
    closed_counts = closed_counts or {}
    open_purposes = {task.purpose for task in open_tasks.values()}
    wanted_purposes = {spec.purpose for spec in specs}
    creates = [
        TaskCreate(contact.id, contact.object_type,
                   task_key(contact.id, spec.purpose, closed_counts.get(spec.purpose, 0)),
                   spec, contact.owner_id)
        for spec in specs
        if spec.purpose not in open_purposes
    ]
    closes = []
    if options.close_obsolete_tasks and open_tasks:
        closes = [
            TaskClose(contact.id, contact.object_type, key, task.task_id)
            for key, task in sorted(open_tasks.items())
            if task.purpose not in wanted_purposes
            and task.purpose not in options.keep_open_purposes
        ]
    return ContactPlan(contact, decision, updates, previous, tuple(creates), tuple(closes))


#: Types whose equal values of the same type ``same_value`` always finds the same (its text and
#: float conversions agree with ``==`` on them), so ``plan_contact`` can skip it for them.
_EXACT = frozenset({str, int, float, bool})
_DEFAULT_OPTIONS = PlanOptions()


def same_value(stored: Any, wanted: Any) -> bool:
    """Compare a stored CRM value with a decided one, forgiving the CRM's spelling of it.

    ``"40.0"`` equals ``40``; an empty string equals ``None``; datetimes compare as instants
    whether given as ``datetime`` or ISO text (the journal stores text).
    """
    if stored is None or stored == "":
        return wanted is None or wanted == ""
    if wanted is None or wanted == "":
        return False
    if isinstance(stored, datetime) or isinstance(wanted, datetime):
        return _instant(stored) == _instant(wanted)
    if isinstance(wanted, int | float) and not isinstance(wanted, bool):
        try:
            return float(stored) == float(wanted)
        except (TypeError, ValueError):
            return False
    return str(stored) == str(wanted)


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
