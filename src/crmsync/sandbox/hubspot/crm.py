"""The emulated HubSpot account: stores, schema, associations, owners, and the write rules.

Everything HTTP-free lives here, so handlers stay thin: creating and writing records (with
property validation, unique emails, the forward-only lifecycle rule and timestamp bumps),
association links with type-id checks, and rendering records in the ``SimplePublicObject`` shape.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from crmsync.sandbox.hubspot.errors import fail
from crmsync.sandbox.hubspot.properties import Option, PropertyRegistry, iso_ms, parse_instant
from crmsync.sandbox.hubspot.ratelimit import RateLimiter, RateLimits
from crmsync.sandbox.hubspot.schema import (
    ASSOCIATION_TYPES,
    DEFAULT_ASSOCIATION,
    LIFECYCLE_STAGES,
    OBJECT_TYPES,
    ObjectType,
    seeded_registries,
)
from crmsync.sandbox.hubspot.search import Searcher
from crmsync.sandbox.hubspot.seeding import (
    company_properties,
    contact_history,
    contact_properties,
    deal_modified,
    deal_properties,
    ms,
    owners,
)
from crmsync.sandbox.hubspot.store import Associations, ObjectStore, Record
from crmsync.sandbox.seed import Org

#: Names a path may use for an object type, besides its plural name.
TYPE_ALIASES = {
    **{t.type_id: t.name for t in OBJECT_TYPES.values()},
    **{t.singular: t.name for t in OBJECT_TYPES.values()},
    **{t.name: t.name for t in OBJECT_TYPES.values()},
}
_STAGE_RANK = {stage: i for i, stage in enumerate(LIFECYCLE_STAGES)}


@dataclass
class Settings:
    """Behaviour knobs (``POST /_sandbox/config``)."""

    search_lag_s: float = 0.0
    lifecycle_forward_only: bool = True

    def to_json(self) -> dict[str, Any]:
        """Return the knobs as JSON-ready data."""
        return {
            "search_lag_seconds": self.search_lag_s,
            "lifecycle_forward_only": self.lifecycle_forward_only,
        }


class HubSpotCrm:
    """One HubSpot account held in memory.

    Args:
        clock: Returns "now" in epoch seconds (``time.time`` by default); inject a fake for
            deterministic timestamps and rate-limit windows.
        rate_limits: Rate-limit knobs; realistic defaults when None.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        rate_limits: RateLimits | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.clock = clock
        self.settings = settings or Settings()
        self.limiter = RateLimiter(rate_limits or RateLimits())
        self.registries: dict[str, PropertyRegistry] = seeded_registries()
        self.associations = Associations()
        self.stores = {
            name: ObjectStore(name, unique=("email",) if name == "contacts" else ())
            for name in OBJECT_TYPES
        }
        self.searchers = {
            name: Searcher(OBJECT_TYPES[name], self.stores[name], self.registries[name],
                           self.associations)
            for name in OBJECT_TYPES
        }
        self.owners: list[dict[str, Any]] = []
        #: Merged-away record id -> the surviving record's id: reads by an old id answer the
        #: survivor, as HubSpot's do (rebuilt from ``hs_merged_object_ids`` on restore).
        self.merged_into: dict[str, str] = {}
        #: The next record id and the latest clock reading handed out (persisted).
        self.next_id = 101
        self.last_ms = 0

    # -- time and ids ---------------------------------------------------------------------

    def now_ms(self) -> int:
        """Return the clock in epoch ms, never earlier than a previous answer (monotonic)."""
        self.last_ms = max(self.last_ms, int(self.clock() * 1000))
        return self.last_ms

    def new_id(self) -> str:
        """Allocate a record id (numeric string, unique across object types)."""
        record_id = str(self.next_id)
        self.next_id += 1
        return record_id

    # -- seeding --------------------------------------------------------------------------

    def seed(self, org: Org) -> None:
        """Load a generated org: owners, contacts, deals and their associations."""
        self.owners = owners(org)
        self.set_owner_options()
        contacts, deals = self.stores["contacts"], self.stores["deals"]
        employed: list[tuple[str, int]] = []  # (contact id, company index)
        for person in org.people:
            contact = Record(
                self.new_id(),
                _clean(contact_properties(person)),
                ms(person.created_at),
                ms(person.modified_at),
                history=contact_history(person),
                history_missing=person.history.missing,
            )
            contacts.add(contact)
            for deal in person.deals:
                record = Record(
                    self.new_id(),
                    _clean(deal_properties(deal, person)),
                    ms(deal.created_at),
                    ms(deal_modified(deal, org.anchor)),
                    history={},
                )
                deals.add(record)
                self.link("deals", record.id, "contacts", contact.id, 3)
            if person.company_index is not None:
                employed.append((contact.id, person.company_index))
        # Companies take ids after every contact and deal, so those keep the ids they had
        # before companies were seeded.
        company_ids = []
        for company in org.companies:
            created = ms(company.created_at)
            record = Record(self.new_id(), _clean(company_properties(company)), created, created,
                            history={})
            self.stores["companies"].add(record)
            company_ids.append(record.id)
        for contact_id, index in employed:
            self.link("contacts", contact_id, "companies", company_ids[index], 279)

    def replace_records(self, name: str, records: Iterable[Record]) -> None:
        """Replace every record of one type (restoring saved state)."""
        store = ObjectStore(name, unique=("email",) if name == "contacts" else ())
        for record in records:
            store.add(record)
            if not record.archived:
                for old in (record.properties.get("hs_merged_object_ids") or "").split(";"):
                    if old:
                        self.merged_into[old] = record.id
        self.stores[name] = store
        self.searchers[name] = Searcher(OBJECT_TYPES[name], store, self.registries[name],
                                        self.associations)

    def set_owner_options(self) -> None:
        """Make ``hubspot_owner_id`` accept exactly the owners' ids, on every object type."""
        options = [
            Option(f"{o['firstName']} {o['lastName']}", o["id"], i)
            for i, o in enumerate(self.owners)
        ]
        for registry in self.registries.values():
            prop = registry.get("hubspot_owner_id")
            if prop is not None:
                prop.options = list(options)

    # -- lookups --------------------------------------------------------------------------

    def object_type(self, name: str) -> ObjectType:
        """Resolve a path's object type (``contacts``, ``contact``, ``0-1``); 400 if unknown."""
        canonical = TYPE_ALIASES.get(name.lower())
        if canonical is None:
            fail(400, f"Unable to infer object type from: {name}")
        return OBJECT_TYPES[canonical]

    def find(self, obj: ObjectType, key: str, id_property: str | None = None) -> Record | None:
        """Return the live record whose ``id_property`` (default: id) equals ``key``."""
        store = self.stores[obj.name]
        if not id_property or id_property == "hs_object_id":
            record = store.get(key)
            if record is None and key in self.merged_into:
                record = store.get(self.merged_into[key])
            return record
        self.check_unique(obj, id_property)
        if store.is_indexed(id_property):
            return store.find_unique(id_property, key)
        wanted = key.lower()
        for record in store.records.values():
            value = record.properties.get(id_property)
            if not record.archived and value is not None and value.lower() == wanted:
                return record
        return None

    def check_unique(self, obj: ObjectType, id_property: str) -> None:
        """Fail with 400 unless ``id_property`` is a unique property of ``obj``."""
        prop = self.registries[obj.name].get(id_property)
        if prop is None or not prop.unique:
            fail(
                400,
                f"Unable to perform update/upsert by non-unique {id_property} property",
                errors=[{"message": f"{id_property} is not a unique property",
                         "code": "INVALID_ID_PROPERTY"}],
            )

    # -- writes ---------------------------------------------------------------------------

    def validate(
        self, obj: ObjectType, values: Any, *, system: bool = False
    ) -> dict[str, str | None]:
        """Validate and normalise a properties write (one 400 listing every problem)."""
        registry = self.registries[obj.name]
        return registry.validate_values(values if values is not None else {}, system=system)

    def check_new(self, obj: ObjectType, values: dict[str, str | None]) -> None:
        """Fail unless ``values`` may create a record: required properties, unique email."""
        missing = [name for name in obj.required if not values.get(name)]
        if missing:
            fail(
                400,
                f"Missing required properties: {missing}",
                errors=[{"message": f"{name} is required", "code": "REQUIRED_PROPERTY",
                         "context": {"propertyName": [name]}} for name in missing],
            )
        email = values.get("email")
        if obj.name == "contacts" and email:
            existing = self.stores["contacts"].find_unique("email", email)
            if existing is not None:
                fail(409, f"Contact already exists. Existing ID: {existing.id}",
                     category="CONFLICT")

    def create(self, obj: ObjectType, values: dict[str, str | None]) -> Record:
        """Create a record from validated values (call :meth:`check_new` first)."""
        now = self.now_ms()
        values = dict(values)
        created = _instant(values.pop(obj.created, None)) or now  # imports may backdate it
        record = Record(self.new_id(), {k: v for k, v in values.items() if v is not None},
                        created, now, history={})
        self.stores[obj.name].add(record)
        return record

    def write(
        self, obj: ObjectType, record: Record, values: dict[str, str | None], *, user: bool = False
    ) -> None:
        """Apply validated values to a record and bump its change timestamp.

        Args:
            user: A person's edit in the UI (sandbox admin): lifecycle may move backwards.
        """
        values = dict(values)
        created = _instant(values.pop(obj.created, None))
        if created is not None:  # the timestamp lives on the record, not among the properties
            record.created_ms = created
        if obj.name == "contacts" and "email" in values and values["email"]:
            other = self.stores["contacts"].find_unique("email", values["email"])
            if other is not None and other.id != record.id:
                fail(409, f"Contact already exists. Existing ID: {other.id}", category="CONFLICT")
        stage = values.get("lifecyclestage")
        current = record.properties.get("lifecyclestage")
        if (
            stage is not None
            and current is not None
            and not user
            and self.settings.lifecycle_forward_only
            and _STAGE_RANK.get(stage, -1) < _STAGE_RANK.get(current, -1)
            and stage in _STAGE_RANK
        ):
            # HubSpot ignores a backward lifecycle move silently: 2xx, value unchanged.
            del values["lifecyclestage"]
        self.stores[obj.name].write(record, values, self.now_ms())

    def archive(self, obj: ObjectType, record: Record) -> None:
        """Archive a record."""
        self.stores[obj.name].archive(record, self.now_ms())

    def merge(self, obj: ObjectType, primary: Record, merged: Record) -> None:
        """Fold ``merged`` into ``primary``, as ``POST .../{type}/merge`` does.

        The primary keeps its id and its own values; properties it lacks are taken from the
        merged record, the older creation date wins, the merged record is archived (its email
        is freed, then kept in ``hs_additional_emails``), and its associations move over.
        Reads by the merged id then answer the primary, under the primary's id.
        """
        now = self.now_ms()
        store = self.stores[obj.name]
        store.archive(merged, now)
        values: dict[str, str | None] = {
            name: value for name, value in merged.properties.items()
            if value is not None and primary.properties.get(name) is None
            and name not in ("hs_merged_object_ids", "hs_additional_emails")
        }
        absorbed = [*(primary.properties.get("hs_merged_object_ids") or "").split(";"),
                    merged.id, *(merged.properties.get("hs_merged_object_ids") or "").split(";")]
        if self.registries[obj.name].get("hs_merged_object_ids") is not None:
            values["hs_merged_object_ids"] = ";".join(i for i in absorbed if i)
        email = merged.properties.get("email")
        if obj.name == "contacts" and email and primary.properties.get("email"):
            extra = [*(primary.properties.get("hs_additional_emails") or "").split(";"), email,
                     *(merged.properties.get("hs_additional_emails") or "").split(";")]
            values["hs_additional_emails"] = ";".join(e for e in extra if e)
        primary.created_ms = min(primary.created_ms, merged.created_ms)
        store.write(primary, values, now)
        self.associations.move(obj.name, merged.id, primary.id)
        for old in (i for i in absorbed if i):
            self.merged_into[old] = primary.id

    # -- associations ---------------------------------------------------------------------

    def link(self, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int) -> None:
        """Link two records with a HUBSPOT_DEFINED type id (the inverse is stored too)."""
        inverse = DEFAULT_ASSOCIATION[(to_type, from_type)]
        self.associations.link(from_type, from_id, to_type, to_id, type_id, inverse)

    def association_type(self, from_type: str, to_type: str, raw: Any) -> int:
        """Validate one association spec; return its type id (400 when wrong)."""
        if not isinstance(raw, dict):
            fail(400, "Invalid input JSON: an association type is an object")
        category = raw.get("associationCategory", "HUBSPOT_DEFINED")
        type_id = raw.get("associationTypeId")
        if category != "HUBSPOT_DEFINED" or ASSOCIATION_TYPES.get(_as_int(type_id)) != (
            from_type,
            to_type,
        ):
            fail(
                400,
                f"{category} {type_id} is not a valid association type between "
                f"{from_type} and {to_type}",
                errors=[
                    {"message": "invalid association type", "code": "INVALID_ASSOCIATION_TYPE"}
                ],
            )
        return _as_int(type_id)

    def inline_associations(self, obj: ObjectType, raw: Any) -> list[tuple[str, str, int]]:
        """Validate a create's ``associations`` list; return ``(to_type, to_id, type_id)``."""
        if raw in (None, []):
            return []
        if not isinstance(raw, list):
            fail(400, "Invalid input JSON: 'associations' must be a list")
        links: list[tuple[str, str, int]] = []
        for item in raw:
            to_id = str(((item or {}).get("to") or {}).get("id", ""))
            types = (item or {}).get("types") or []
            if not to_id or not types:
                fail(400, "Invalid input JSON: an association needs 'to.id' and 'types'")
            for spec in types:
                type_id = _as_int((spec or {}).get("associationTypeId"))
                pair = ASSOCIATION_TYPES.get(type_id)
                if pair is None or pair[0] != obj.name:
                    fail(400, f"{type_id} is not a valid association type from {obj.name}",
                         errors=[{"message": "invalid association type",
                                  "code": "INVALID_ASSOCIATION_TYPE"}])
                self.association_type(obj.name, pair[1], spec)
                if self.stores[pair[1]].get(to_id) is None:
                    fail(400, f"No {OBJECT_TYPES[pair[1]].singular} with id {to_id} to associate",
                         errors=[{"message": f"{to_id} not found", "code": "INVALID_OBJECT_ID",
                                  "context": {"id": [to_id]}}])
                links.append((pair[1], to_id, type_id))
        return links

    # -- rendering ------------------------------------------------------------------------

    def properties_of(self, obj: ObjectType, record: Record) -> dict[str, str | None]:
        """Return every stored property plus the system ones, as wire strings."""
        props = dict(record.properties)
        props["hs_object_id"] = record.id
        props[obj.created] = iso_ms(record.created_ms)
        props[obj.modified] = iso_ms(record.updated_ms)
        return props

    def render(
        self,
        obj: ObjectType,
        record: Record,
        names: Iterable[str] | None = None,
        *,
        associations: Iterable[str] = (),
        history: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Return ``SimplePublicObject[WithAssociations]`` for a record.

        Args:
            names: Properties asked for (None: the type's defaults). Unknown names are ignored,
                known but unset ones come back as null; id and timestamps are always included.
        """
        registry = self.registries[obj.name]
        everything = self.properties_of(obj, record)
        wanted = list(obj.defaults if names is None else names)
        wanted += ["hs_object_id", obj.created, obj.modified]
        props = {n: everything.get(n) for n in dict.fromkeys(wanted) if registry.get(n)}
        body: dict[str, Any] = {
            "id": record.id,
            "properties": props,
            "createdAt": iso_ms(record.created_ms),
            "updatedAt": iso_ms(record.updated_ms),
            "archived": record.archived,
        }
        if record.archived and record.archived_ms is not None:
            body["archivedAt"] = iso_ms(record.archived_ms)
        hist = [n for n in history if registry.get(n)]
        if hist:
            # Newest first, as HubSpot lists them; a cleared value is an empty string.
            body["propertiesWithHistory"] = {
                n: [
                    {"value": "" if value is None else value, "timestamp": iso_ms(at),
                     "sourceType": "API"}
                    for at, value in reversed(record.history_of(n, everything.get(n)))
                ]
                for n in hist
            }
        linked: dict[str, Any] = {}
        for name in associations:
            to_type = TYPE_ALIASES.get(name.lower())
            if to_type is None:
                continue
            to_obj = OBJECT_TYPES[to_type]
            results = [
                {"id": to_id, "type": f"{obj.singular}_to_{to_obj.singular}"}
                for to_id, _types in self.associations.of(obj.name, record.id, to_type)
            ]
            if results:
                linked[name] = {"results": results}
        if linked:
            body["associations"] = linked
        return body


def _instant(value: str | None) -> int | None:
    return None if value is None else parse_instant(value)


def _clean(props: dict[str, str | None]) -> dict[str, str | None]:
    return {k: v for k, v in props.items() if v is not None}


def _as_int(raw: Any) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        fail(400, f"Invalid association type id {raw!r}")
