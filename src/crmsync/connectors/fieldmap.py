"""Field maps: how a CRM's fields become canonical facts, and where crmsync's outputs go.

A field map is a JSON file admins edit (``connectors/hubspot.json``,
``connectors/salesforce.json``), loaded and validated by :mod:`crmsync.connectors.fieldmap_load`
into the :class:`FieldMap` defined here, with small per-object readers. Normalisation is here,
once, for both CRMs: HubSpot sends every value as a string and datetimes as ISO or epoch-ms
strings; Salesforce uses typed JSON, ``+0000`` offsets and dotted parent fields
(``Account.Name``). An odd value (``"n/a"`` for a number, a junk date) becomes ``None``
(missing), never an exception: one bad record must not stop a run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from crmsync.coerce import COERCERS, coerce
from crmsync.model import CANONICAL_FACTS

#: Deal facts rolled up from related deals/opportunities rather than read from a field.
DEAL_FACTS = frozenset(
    {"open_deals", "won_deals", "lost_deals", "deal_stage", "deal_amount", "closed_lost_reason",
     "closed_lost_at", "competitor"}
)
#: Facts derived from crmsync's own stored outputs.
PREVIOUS_OUTPUT_FACTS = {"previous_status": "status", "previous_miss_type": "miss_type",
                         "status_since": "status_since"}

# -- value coercion ---------------------------------------------------------------------------
#
# One policy for a run and for ``crmsync evaluate`` (rules/README.md, "Missing and odd values"):
# crmsync.coerce. Only the lookup text of enumerations and transforms is this module's own.


def _lookup_text(value: Any) -> str | None:
    """The text a ``values`` map or a transform looks up: the CRM's spelling, checkboxes too."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return coerce(value, "str")


_TRANSFORMS: dict[str, Callable[[str], str | None]] = {
    "upper": str.upper,
    "lower": str.lower,
    "email_domain": lambda text: text.rpartition("@")[2].lower() or None if "@" in text else None,
}


# -- the compiled field map -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FactSource:
    """How one fact is read from a record: a field (or derived from another fact)."""

    fact: str
    kind: str
    field: str | None = None
    derive_from: str | None = None
    transform: str | None = None
    values: Mapping[str, str] | None = None

    def read(self, record: Mapping[str, Any], facts: Mapping[str, Any]) -> Any:
        """Return the normalised value of this fact for one record."""
        raw = facts.get(self.derive_from) if self.derive_from else get_field(record, self.field)
        mapped = bool(self.transform or self.values)
        value = _lookup_text(raw) if mapped else coerce(raw, self.kind)
        if value is None:
            return None
        if self.transform:
            value = _TRANSFORMS[self.transform](value)
        if self.values is not None:
            value = self.values.get(value, self.values.get("*", value))
        return coerce(value, self.kind) if mapped else value


@dataclass(frozen=True, slots=True)
class OutputTarget:
    """Where one crmsync output is stored in the CRM, and how its values are spelled there.

    Attributes:
        output: The output's name (crmsync's own, or one the rule file declares).
        field: The CRM field.
        kind: Its type (a declared ``list`` output is written as text, so ``str``).
        values: Canonical value -> the CRM's option value, where they differ.
        custom: Declared by the rule file rather than crmsync's own.
        allowed: A declared output's allowed values (``setup`` makes them a picklist).
        label: The field's label for ``setup`` (from the field map, else the rule file).
    """

    output: str
    field: str
    kind: str
    values: Mapping[str, str] | None = None
    custom: bool = False
    allowed: tuple[str, ...] | None = None
    label: str = ""

    def encode(self, value: Any) -> Any:
        """Return ``value`` as the CRM field expects it (enumeration values mapped)."""
        if value is None:
            return None
        if self.values is not None:
            return self.values.get(str(value), str(value))
        if self.kind == "datetime" and isinstance(value, datetime):
            return _crm_instant(value)
        return value

    def decode(self, raw: Any) -> Any:
        """Return the canonical value of what the CRM holds in this field."""
        if self.values is not None:
            text = _lookup_text(raw)
            if text is None:
                return None
            reverse = {v: k for k, v in self.values.items()}
            return reverse.get(text, text)
        return coerce(raw, self.kind)


@lru_cache(maxsize=64)
def _crm_instant(moment: datetime) -> str:
    """A datetime as CRMs take it: UTC, milliseconds, ``Z``.

    Cached: a run stamps its own clock into most contacts it writes (``evaluated_at``, and
    ``status_since`` on a move), so the same few instants are spelt thousands of times. Equal
    instants in other zones hit the same entry, and spell the same UTC text.
    """
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class ObjectMap:
    """The fact readers of one CRM object (``contacts``; ``Lead``; ``Contact``)."""

    name: str
    modified_field: str
    owner_field: str | None
    sources: tuple[FactSource, ...]

    def fields(self) -> list[str]:
        """Return the CRM fields to request for this object (facts only; outputs separately)."""
        seen: dict[str, None] = {}
        for source in self.sources:
            if source.field:
                seen.setdefault(source.field, None)
        seen.setdefault(self.modified_field, None)
        if self.owner_field:
            seen.setdefault(self.owner_field, None)
        return list(seen)


@dataclass(frozen=True, slots=True)
class DealMap:
    """How related deals/opportunities are read and rolled up into the deal facts."""

    object: str
    fields: Mapping[str, str]
    won_stages: frozenset[str]
    lost_stages: frozenset[str]


@dataclass(frozen=True, slots=True)
class CompanyMap:
    """Facts read from a contact's associated company, used where the contact's own is empty.

    Real portals keep firmographics (name, industry, size) on the company record and often
    leave the contact's copies blank; a rule about company size should still see them.
    """

    object: str
    sources: tuple[FactSource, ...]

    def fields(self) -> list[str]:
        """Return the company properties to request."""
        return list(dict.fromkeys(s.field for s in self.sources if s.field))


@dataclass(frozen=True, slots=True)
class TaskMap:
    """How a crmsync follow-up task is written in the CRM."""

    object: str
    fields: Mapping[str, str]
    priority_values: Mapping[str, str]
    open_status: str
    closed_status: str
    key_field: str | None = None


@dataclass(frozen=True, slots=True)
class FieldMap:
    """A validated, compiled field map."""

    crm: str
    path: str
    objects: Mapping[str, ObjectMap]
    outputs: Mapping[str, OutputTarget]
    deals: DealMap | None
    tasks: TaskMap
    custom_facts: Mapping[str, str] = field(default_factory=dict)
    companies: CompanyMap | None = None

    def fact_types(self) -> dict[str, str]:
        """Return every fact a rule may read through this map (canonical + custom) and its type."""
        return {**CANONICAL_FACTS, **self.custom_facts}

    def output_fields(self) -> list[str]:
        """Return the CRM fields holding crmsync's outputs."""
        return [target.field for target in self.outputs.values()]

    def to_contact_facts(
        self,
        object_name: str,
        record: Mapping[str, Any],
        deals: Sequence[Mapping[str, Any]] = (),
        company: Mapping[str, Any] | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Return (facts, current outputs) for one CRM record and its related deal records.

        Args:
            company: The associated company's properties (when the map has ``companies``): its
                facts fill those the record leaves empty, before derived facts are computed.
        """
        facts: dict[str, Any] = {}
        sources = self.objects[object_name].sources
        plain = _readers(sources)
        # The common source (one top-level field, coerced to its type) inline: the same
        # coercion as FactSource.read without its calls, per fact of every contact read.
        for fact, name, coercer, source in plain:
            if source is not None:
                facts[fact] = source.read(record, facts)
                continue
            raw = record.get(name)
            if raw is None:
                facts[fact] = None
                continue
            try:
                facts[fact] = coercer(raw)
            except Exception:  # noqa: BLE001 - as crmsync.coerce.coerce: junk is null
                facts[fact] = None
        if self.companies is not None and company:
            for source in self.companies.sources:
                if facts.get(source.fact) is None:
                    facts[source.fact] = source.read(company, facts)
        for source in sources[len(plain):]:
            facts[source.fact] = source.read(record, facts)
        outputs: dict[str, Any] = {}
        # As OutputTarget.decode, with a plain target's coercer looked up once per map.
        for output, name, coercer, target in _output_readers(self.outputs):
            if target is not None:
                outputs[output] = target.decode(get_field(record, target.field))
                continue
            raw = record.get(name)
            if raw is None:
                outputs[output] = None
                continue
            try:
                outputs[output] = coercer(raw)
            except Exception:  # noqa: BLE001 - as crmsync.coerce.coerce: junk is null
                outputs[output] = None
        for fact, output in PREVIOUS_OUTPUT_FACTS.items():
            facts[fact] = outputs.get(output)
        if self.deals is not None:
            facts.update(rollup_deals(self.deals, deals) if deals else _NO_DEALS)
        return facts, outputs


#: A non-derived source as ``to_contact_facts`` reads it: (fact, field, coercer, None) for a
#: plain top-level field, (fact, "", coerce, source) for the rest (dotted, mapped, transformed).
_Reader = tuple[str, str, Callable[[Any], Any], FactSource | None]
#: id(sources) -> (sources, their readers); a process holds a few field maps at a time.
_READERS: dict[int, tuple[tuple[FactSource, ...], list[_Reader]]] = {}
#: Past this many entries the cache starts over: a scheduler or console loads a fresh field map
#: for every run, and each entry keeps its sources alive.
_READERS_MAX = 64


def _readers(sources: tuple[FactSource, ...]) -> list[_Reader]:
    """The readers of an object's non-derived sources, in order (derived ones come last)."""
    cached = _READERS.get(id(sources))
    if cached is not None and cached[0] is sources:
        return cached[1]
    readers: list[_Reader] = []
    for source in sources:
        if source.derive_from is not None:
            break  # _compile sorts derived sources last
        if source.field is None or "." in source.field or source.values is not None:
            readers.append((source.fact, "", coerce, source))
        elif source.transform:
            readers.append((source.fact, source.field,
                            _transformed(_TRANSFORMS[source.transform], source.kind), None))
        else:
            readers.append((source.fact, source.field, COERCERS[source.kind], None))
    if len(_READERS) >= _READERS_MAX:
        _READERS.clear()
    _READERS[id(sources)] = (sources, readers)
    return readers


def _transformed(transform: Callable[[str], str | None], kind: str) -> Callable[[Any], Any]:
    """``FactSource.read`` of a top-level field with a transform and no value map, for a
    value that is not None: lookup text, transform, coerce (``email``, ``country``)."""

    def read(raw: Any) -> Any:
        # Text as _lookup_text reads it, without its two calls.
        text = (raw.strip() or None) if raw.__class__ is str else _lookup_text(raw)
        if text is None:
            return None
        return coerce(transform(text), kind)

    return read


#: A crmsync output as ``to_contact_facts`` decodes it: (output, field, coercer, None) for a
#: plain top-level field without a value map, (output, "", coerce, target) for the rest.
_OutputReader = tuple[str, str, Callable[[Any], Any], OutputTarget | None]
#: id(outputs) -> (outputs, their readers); bounded as _READERS is.
_OUTPUT_READERS: dict[int, tuple[Mapping[str, OutputTarget], list[_OutputReader]]] = {}


def _output_readers(outputs: Mapping[str, OutputTarget]) -> list[_OutputReader]:
    """The readers of a map's output fields, in the map's order."""
    cached = _OUTPUT_READERS.get(id(outputs))
    if cached is not None and cached[0] is outputs:
        return cached[1]
    readers: list[_OutputReader] = []
    for name, target in outputs.items():
        if target.values is not None or "." in target.field:
            readers.append((name, "", coerce, target))
        else:
            readers.append((name, target.field, COERCERS[target.kind], None))
    if len(_OUTPUT_READERS) >= _READERS_MAX:
        _OUTPUT_READERS.clear()
    _OUTPUT_READERS[id(outputs)] = (outputs, readers)
    return readers


def get_field(record: Mapping[str, Any], name: str | None) -> Any:
    """Return a possibly dotted field (``Account.Name``) from a record, ``None`` if absent."""
    if name is None:
        return None
    if "." not in name:
        return record.get(name)
    value: Any = record
    for part in name.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


#: The deal facts of a contact without deals (most contacts of a run).
_NO_DEALS: Mapping[str, Any] = {
    "open_deals": 0, "won_deals": 0, "lost_deals": 0, "deal_stage": None, "deal_amount": None,
    "closed_lost_reason": None, "closed_lost_at": None, "competitor": None}


def rollup_deals(deal_map: DealMap, deals: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Roll related deal records up into the canonical deal facts.

    The most recently closed lost deal supplies ``closed_lost_reason``/``closed_lost_at`` and a
    recorded ``competitor``; the most recent deal overall supplies ``deal_stage``/``deal_amount``.
    """
    if not deals:
        return dict(_NO_DEALS)
    f = deal_map.fields
    rows = []
    for deal in deals:
        stage = coerce(get_field(deal, f.get("stage")), "str")
        rows.append(
            {
                "stage": stage,
                "amount": coerce(get_field(deal, f.get("amount")), "number"),
                "closed_at": coerce(get_field(deal, f.get("closed_at")), "datetime"),
                "loss_reason": coerce(get_field(deal, f.get("loss_reason")), "str"),
                "competitor": coerce(get_field(deal, f.get("competitor")), "str"),
                "won": stage in deal_map.won_stages,
                "lost": stage in deal_map.lost_stages,
            }
        )
    if not rows:
        return dict(_NO_DEALS)
    epoch = datetime.min.replace(tzinfo=UTC)
    latest = max(rows, key=lambda r: r["closed_at"] or epoch)
    lost = [r for r in rows if r["lost"]]
    last_lost = max(lost, key=lambda r: r["closed_at"] or epoch) if lost else None
    return {
        "open_deals": sum(1 for r in rows if not r["won"] and not r["lost"]),
        "won_deals": sum(1 for r in rows if r["won"]),
        "lost_deals": len(lost),
        "deal_stage": latest["stage"],
        "deal_amount": latest["amount"],
        "closed_lost_reason": last_lost["loss_reason"] if last_lost else None,
        "closed_lost_at": last_lost["closed_at"] if last_lost else None,
        "competitor": last_lost["competitor"] if last_lost else None,
    }
