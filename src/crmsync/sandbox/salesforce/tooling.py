"""The Tooling API slice ``crmsync setup`` uses: create custom fields, list them (§2.5).

``POST /tooling/sobjects/CustomField`` with ``{"FullName": "Contact.X__c", "Metadata": {...}}``
adds the field to the org schema, after which describe shows it and queries and writes accept
it. ``GET /tooling/query?q=SELECT ... FROM CustomField ...`` lists custom fields.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from crmsync.sandbox.salesforce.ids import make_id, normalize_id
from crmsync.sandbox.salesforce.query import CompiledQuery
from crmsync.sandbox.salesforce.responses import fail, not_found
from crmsync.sandbox.salesforce.rest import _json_object
from crmsync.sandbox.salesforce.schema import FieldDef, ObjectDef
from crmsync.sandbox.salesforce.soql import SoqlError
from crmsync.sandbox.salesforce.store import Store
from crmsync.sandbox.server import Request, Response

if TYPE_CHECKING:
    from crmsync.sandbox.salesforce.emulator import SalesforceEmulator

_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*__c$")
_CUSTOMIZABLE = ("Account", "Contact", "Lead", "Opportunity", "Task")


class Tooling:
    """Custom-field metadata for one emulator, and the ``/tooling/`` routes."""

    def __init__(self, emulator: SalesforceEmulator) -> None:
        self.em = emulator
        self.created: list[dict[str, Any]] = []  # fields made through the API (state files)
        self._sequence = 0
        # Seeded custom fields get metadata ids too, so tooling queries list them.
        for obj in emulator.store.schema.values():
            for fdef in obj.fields.values():
                if fdef.custom and fdef.id is None:
                    fdef.id = self._next_id()

    def _next_id(self) -> str:
        self._sequence += 1
        return make_id("00N", self._sequence)

    def handle(self, request: Request, segs: list[str], version: str) -> Response:
        """Route ``/tooling/...``."""
        if segs and segs[0] == "query" and request.method == "GET":
            return self.query(request.param("q"), version)
        if len(segs) >= 2 and segs[0] == "sobjects" and segs[1] == "CustomField":
            if len(segs) == 2 and request.method == "POST":
                return self.create(_json_object(request))
            if len(segs) == 3 and request.method == "GET":
                return self.get(segs[2], version)
        raise not_found()

    # -- create ------------------------------------------------------------------------------

    def create(self, body: dict[str, Any]) -> Response:
        """Create a custom field from its Tooling/Metadata description."""
        full_name = body.get("FullName")
        metadata = body.get("Metadata")
        if not isinstance(full_name, str) or "." not in full_name or not isinstance(metadata, dict):
            message = "Required fields are missing: [FullName, Metadata]"
            raise fail(400, "REQUIRED_FIELD_MISSING", message, [])
        obj_name, _, field_name = full_name.partition(".")
        obj = self.em.store.object(obj_name)
        if obj is None or obj.name not in _CUSTOMIZABLE:
            raise fail(400, "FIELD_INTEGRITY_EXCEPTION", f"Invalid entity: {obj_name}", [])
        if not _NAME.match(field_name):
            raise fail(400, "FIELD_INTEGRITY_EXCEPTION",
                       f"Invalid field name: {field_name}. The name must end with __c, begin with "
                       "a letter and use only letters, numbers and single underscores.", [])
        if obj.field(field_name) is not None:
            raise fail(400, "DUPLICATE_DEVELOPER_NAME",
                       f"There is already a field named {field_name[:-3]} on {obj.name}.", [])
        fdef = field_from_metadata(field_name, metadata)
        fdef.id = self._next_id()
        self.add(obj, fdef)
        self.created.append(
            {"FullName": f"{obj.name}.{fdef.name}", "Metadata": metadata, "id": fdef.id}
        )
        return Response(
            201, {"id": fdef.id, "success": True, "errors": [], "warnings": [], "infos": []}
        )

    def add(self, obj: ObjectDef, fdef: FieldDef) -> None:
        """Add a field to the live schema; existing rows get its default (false or null)."""
        obj.add(fdef)
        store = self.em.store
        # In place, unlike writes: open query cursors were compiled without this field, so a
        # new key cannot change what they render, and copying 100k rows per field is slow.
        for rec in store.tables[obj.name].values():
            rec[fdef.name] = fdef.default
        if fdef.indexed:
            store.add_index(obj.name, fdef)

    # -- read --------------------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        """Every custom field as a Tooling ``CustomField`` row."""
        out = []
        for obj in self.em.store.schema.values():
            for fdef in obj.fields.values():
                if fdef.custom:
                    out.append({
                        "Id": fdef.id, "DeveloperName": fdef.name[:-3], "TableEnumOrId": obj.name,
                        "NamespacePrefix": None, "FullName": f"{obj.name}.{fdef.name}",
                        "Description": None, "IsDeleted": False,
                    })
        return out

    def query(self, text: str | None, version: str) -> Response:
        """``GET /tooling/query?q=`` over ``CustomField`` (the only tooling object served)."""
        store = Store({"customfield": _custom_field_object()})
        for row in self.rows():
            store.put("CustomField", row)
        try:
            compiled = CompiledQuery(text or "", store, self.em.now(), version)
        except SoqlError as error:
            raise fail(400, error.code, error.message) from None
        rows = compiled.run()
        if compiled.is_aggregate:
            records = compiled.aggregate_rows(rows)
            total = len(rows) if compiled.parsed.count_only else len(records)
        else:
            records = [compiled.render(r) for r in rows]
            total = len(records)
            for rec in records:
                url = rec["attributes"]["url"]
                rec["attributes"]["url"] = url.replace("/sobjects/", "/tooling/sobjects/")
        return Response(200, {
            "size": total, "totalSize": total, "done": True, "queryLocator": None,
            "entityTypeName": "CustomField", "records": records,
        })

    def get(self, raw_id: str, version: str) -> Response:
        """``GET /tooling/sobjects/CustomField/{id}``."""
        wanted = normalize_id(raw_id)
        for row in self.rows():
            if row["Id"] == wanted:
                url = f"/services/data/v{version}/tooling/sobjects/CustomField/{wanted}"
                return Response(200, {"attributes": {"type": "CustomField", "url": url}, **row})
        raise not_found()

    # -- state -------------------------------------------------------------------------------

    def snapshot(self) -> list[dict[str, Any]]:
        """The fields created through the API, to replay on restore."""
        return list(self.created)

    def restore(self, created: list[dict[str, Any]]) -> None:
        """Re-create saved custom fields on a fresh schema (before records are loaded)."""
        for item in created:
            obj_name, _, field_name = item["FullName"].partition(".")
            obj = self.em.store.object(obj_name)
            if obj is None or obj.field(field_name) is not None:
                continue
            fdef = field_from_metadata(field_name, item["Metadata"])
            fdef.id = item.get("id") or self._next_id()
            obj.add(fdef)
            if fdef.indexed:
                self.em.store.add_index(obj.name, fdef)
            self.created.append(item)
            self._sequence = max(self._sequence, len(self.created) + 100)


def field_from_metadata(name: str, meta: dict[str, Any]) -> FieldDef:
    """Translate Metadata API ``CustomField`` settings into a schema field."""
    kind = meta.get("type")
    label = meta.get("label")
    if not isinstance(label, str) or not label:
        raise fail(400, "FIELD_INTEGRITY_EXCEPTION", "Must specify 'label' for a CustomField", [])
    common: dict[str, Any] = {
        "label": label, "custom": True,
        "external_id": bool(meta.get("externalId", False)),
        "unique": bool(meta.get("unique", False)),
    }
    if kind == "Text":
        length = _int(meta, "length", kind, 1, 255)
        return FieldDef(name, "string", length=length, **common)
    if kind in ("Number", "Currency", "Percent"):
        precision = _int(meta, "precision", kind, 1, 18)
        scale = int(meta.get("scale") or 0)
        if scale > precision:
            raise fail(400, "FIELD_INTEGRITY_EXCEPTION", "scale must not exceed precision", [])
        ftype = {"Number": "double", "Currency": "currency", "Percent": "percent"}[kind]
        return FieldDef(name, ftype, precision=precision, scale=scale, **common)
    if kind == "Checkbox":
        default = str(meta.get("defaultValue", "false")).lower() == "true"
        return FieldDef(name, "boolean", nillable=False, default=default, **common)
    if kind in ("Date", "DateTime"):
        return FieldDef(name, kind.lower(), **common)
    if kind in ("LongTextArea", "Html"):
        length = _int(meta, "length", kind, 256, 131072)
        return FieldDef(name, "textarea", length=length, **common)
    if kind == "TextArea":
        return FieldDef(name, "textarea", length=255, **common)
    if kind in ("Email", "Phone", "Url"):
        ftype = kind.lower()
        return FieldDef(name, ftype, length={"email": 80, "phone": 40, "url": 255}[ftype], **common)
    if kind == "Picklist":
        value_set = meta.get("valueSet") or {}
        definition = value_set.get("valueSetDefinition") or {}
        values = tuple(
            str(v.get("fullName") or v.get("label"))
            for v in definition.get("value", []) if isinstance(v, dict)
        )
        if not values:
            raise _integrity("Picklist must have at least one value")
        defaults = [str(v.get("fullName")) for v in definition.get("value", []) if v.get("default")]
        return FieldDef(name, "picklist", length=255, picklist=values,
                        restricted=bool(value_set.get("restricted", False)),
                        default=defaults[0] if defaults else None, **common)
    raise fail(400, "FIELD_INTEGRITY_EXCEPTION", f"Unsupported or missing field type: {kind}", [])


def _int(meta: dict[str, Any], key: str, kind: str, low: int, high: int) -> int:
    value = meta.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _integrity(f"Must specify '{key}' for a CustomField of type {kind}")
    if not low <= value <= high:
        raise _integrity(f"'{key}' must be between {low} and {high} for type {kind}")
    return value


def _integrity(message: str) -> Exception:
    return fail(400, "FIELD_INTEGRITY_EXCEPTION", message, [])


def _custom_field_object() -> ObjectDef:
    obj = ObjectDef("CustomField", "Custom Field", "Custom Fields", "00N")
    ro = {"createable": False, "updateable": False}
    for name in ("DeveloperName", "TableEnumOrId", "NamespacePrefix", "FullName", "Description"):
        obj.add(FieldDef(name, "string", length=255, **ro))
    obj.add(FieldDef("Id", "id", length=18, **ro))
    obj.add(FieldDef("IsDeleted", "boolean", default=False, **ro))
    return obj
