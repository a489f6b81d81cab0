"""Facts as they stood at a moment: a record rewound through its field history.

Backtests (``crmsync backtest``) evaluate rules on the facts a contact had just before one of
its deals closed. Each connector reads the CRM's own history (HubSpot ``propertiesWithHistory``,
Salesforce ``ContactHistory``) and hands it here as one CRM-neutral *timeline* per CRM field;
this module rewinds the record field by field (the field map's reverse mapping: fact -> field)
and then reads facts through the field map as a run does, so an as-of fact is normalised
exactly like a current one.

Where a field has no history, its current value is used and the fact is labelled ``current``;
a date/time whose current value lies after the close cannot have been known then and becomes
missing (``unknown``). Deal facts are rolled up from the contact's *other* deals as they stood
(the deal being judged is left out: counting it as open would make every contact an
opportunity).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from crmsync.connectors.fieldmap import (
    DEAL_FACTS,
    PREVIOUS_OUTPUT_FACTS,
    DealMap,
    FieldMap,
    coerce,
    get_field,
)

#: Where an as-of fact came from.
HISTORY, CURRENT, UNKNOWN, DEALS = "history", "current", "unknown", "deals"
#: Facts no history can change (identity and creation): left out of the "from current" share.
FIXED_FACTS = frozenset({"id", "created_at"})
#: Earlier than any recorded change: a value known to hold before the first change.
BEGINNING = datetime.min.replace(tzinfo=UTC)

#: One CRM field's recorded values, oldest first: ``(since when, value)``.
Timeline = Sequence[tuple[datetime, Any]]


@dataclass(frozen=True)
class OutcomeRecord:
    """One contact whose deal closed, with its facts as of just before the close.

    Attributes:
        contact_id: The CRM record id of the contact.
        object_type: The CRM object (``contacts``, ``Contact``).
        deal_id: The closed deal judged (the contact's latest closing in the window).
        outcome: ``won`` or ``lost``.
        closed_at: When the deal closed (a date's midnight, UTC, where the CRM keeps a date).
        as_of: The moment the facts describe: just before the close; the evaluation's ``now``.
        facts: Canonical facts as of ``as_of``.
        sources: Fact name -> ``history``, ``current``, ``unknown`` or ``deals``.
    """

    contact_id: str
    object_type: str
    deal_id: str
    outcome: str
    closed_at: datetime
    as_of: datetime
    facts: Mapping[str, Any]
    sources: Mapping[str, str] = field(default_factory=dict)

    def from_current(self) -> list[str]:
        """Return the facts (with a value) taken from current values for want of history."""
        return sorted(f for f, s in self.sources.items()
                      if s == CURRENT and f not in FIXED_FACTS and self.facts.get(f) is not None)

    def from_history(self) -> list[str]:
        """Return the facts (with a value) rewound through the field's history."""
        return sorted(f for f, s in self.sources.items()
                      if s == HISTORY and f not in FIXED_FACTS and self.facts.get(f) is not None)


def value_at(timeline: Timeline, moment: datetime) -> Any:
    """Return the value a timeline held just before ``moment`` (None: not set yet)."""
    value = None
    for since, recorded in timeline:
        if since >= moment:
            break
        value = recorded
    return value


def changes_to_timeline(changes: Iterable[tuple[datetime, Any, Any]]) -> list[tuple[datetime, Any]]:
    """Turn ``(when, old, new)`` change rows (any order) into a timeline.

    The first change's old value is known to hold before it, since :data:`BEGINNING`.
    """
    ordered = sorted(changes, key=lambda c: c[0])
    if not ordered:
        return []
    return [(BEGINNING, ordered[0][1]), *((at, new) for at, _old, new in ordered)]


def _set_field(record: dict[str, Any], name: str, value: Any) -> None:
    """Set a possibly dotted field in a (shallow-copied as needed) record."""
    if "." not in name:
        record[name] = value
        return
    head, rest = name.split(".", 1)
    child = record.get(head)
    if isinstance(child, Mapping):
        child = dict(child)
        record[head] = child
        _set_field(child, rest, value)


def facts_as_of(
    fieldmap: FieldMap,
    object_name: str,
    record: Mapping[str, Any],
    history: Mapping[str, Timeline],
    moment: datetime,
    deals: Sequence[Mapping[str, Any]] = (),
    company: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Return (facts, sources) of one record as they stood just before ``moment``.

    Args:
        history: CRM field name -> its timeline; a field absent (or with an empty timeline)
            has no history and keeps its current value.
        deals: The contact's deal records as of ``moment`` (see :func:`deals_as_of`).
        company: The associated company's current properties (HubSpot maps).
    """
    rewound = dict(record)
    by_field: dict[str, str] = {}
    sources = fieldmap.objects[object_name].sources
    for source in sources:
        if source.field is None or source.field in by_field:
            continue
        timeline = history.get(source.field) or history.get(source.field.lower())
        if timeline:
            _set_field(rewound, source.field, value_at(timeline, moment))
            by_field[source.field] = HISTORY
            continue
        by_field[source.field] = CURRENT
        if source.kind == "datetime":
            current = coerce(get_field(record, source.field), "datetime")
            if current is not None and current >= moment:
                _set_field(rewound, source.field, None)
                by_field[source.field] = UNKNOWN
    facts, _outputs = fieldmap.to_contact_facts(object_name, rewound, deals, company)
    labels: dict[str, str] = {}
    for source in sources:
        if source.field is not None:
            labels[source.fact] = by_field[source.field]
    for source in sources:
        if source.derive_from is not None:
            labels[source.fact] = labels.get(source.derive_from, CURRENT)
    if fieldmap.companies is not None and company:
        own = fieldmap.to_contact_facts(object_name, rewound, deals, None)[0]
        for source in fieldmap.companies.sources:
            if own.get(source.fact) is None and facts.get(source.fact) is not None:
                labels[source.fact] = CURRENT  # the company's value today
    # What crmsync had written back then is not kept anywhere: not today's outputs.
    for fact in PREVIOUS_OUTPUT_FACTS:
        facts[fact] = None
        labels[fact] = UNKNOWN
    for fact in DEAL_FACTS:
        labels[fact] = DEALS
    return facts, labels


def deals_as_of(
    deal_map: DealMap, deals: Iterable[Mapping[str, Any]], *, judged: str, id_field: str,
    created_field: str, moment: datetime,
) -> list[dict[str, Any]]:
    """Return a contact's deals as they stood just before ``moment``, without the judged one.

    Deals created at or after ``moment`` did not exist yet; deals that closed at or after it
    were still open then (their stage then is unknown: it reads as missing, which the roll-up
    counts as open); deals closed before it are as they are.
    """
    fields = deal_map.fields
    out: list[dict[str, Any]] = []
    for deal in deals:
        if str(get_field(deal, id_field)) == judged:
            continue
        created = coerce(get_field(deal, created_field), "datetime")
        if created is not None and created >= moment:
            continue
        row = dict(deal)
        stage = coerce(get_field(deal, fields.get("stage")), "str")
        closed = coerce(get_field(deal, fields.get("closed_at")), "datetime")
        finished = stage in deal_map.won_stages or stage in deal_map.lost_stages
        if not finished or closed is None or closed >= moment:
            for key in ("stage", "loss_reason", "competitor"):
                if fields.get(key):
                    _set_field(row, fields[key], None)
        out.append(row)
    return out


def outcome_of(deal_map: DealMap, stage: Any) -> str | None:
    """Return ``won``/``lost`` for a closed stage, None for an open one."""
    text = coerce(stage, "str")
    if text in deal_map.won_stages:
        return "won"
    if text in deal_map.lost_stages:
        return "lost"
    return None
