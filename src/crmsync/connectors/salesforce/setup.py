"""Setup and checks: describe the org's objects and create crmsync's fields (Tooling API)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from crmsync.connectors.base import SetupReport
from crmsync.connectors.fieldmap import FieldMap, OutputTarget
from crmsync.connectors.salesforce.client import SalesforceClient
from crmsync.connectors.salesforce.reading import has_deals
from crmsync.connectors.salesforce.translate import _first_error
from crmsync.errors import ConfigError

log = logging.getLogger("crmsync.connectors.salesforce")

#: Tooling API metadata for crmsync's output fields, by canonical output name.
_OUTPUT_METADATA: Mapping[str, Mapping[str, Any]] = {
    "status": {"type": "Text", "length": 40, "label": "Funnel Status"},
    "miss_type": {"type": "Text", "length": 40, "label": "Miss Type"},
    "score": {"type": "Number", "precision": 5, "scale": 0, "label": "Lead Score"},
    "reason": {"type": "Text", "length": 255, "label": "Why (crmsync)"},
    "ruleset": {"type": "Text", "length": 80, "label": "Rule Set Version"},
    "evaluated_at": {"type": "DateTime", "label": "Evaluated At"},
    "status_since": {"type": "DateTime", "label": "Status Since"},
}
_KIND_METADATA: Mapping[str, Mapping[str, Any]] = {
    "str": {"type": "Text", "length": 255},
    "int": {"type": "Number", "precision": 18, "scale": 0},
    "number": {"type": "Number", "precision": 18, "scale": 2},
    "datetime": {"type": "DateTime"},
    "date": {"type": "Date"},
    "bool": {"type": "Checkbox", "defaultValue": False},
}
_OVERRIDE_METADATA = {"type": "Text", "length": 40, "label": "Status Override (crmsync)"}
_TASK_KEY_METADATA = {"type": "Text", "length": 64, "label": "crmsync Task Key",
                      "externalId": True, "unique": True, "caseSensitive": False}


def _label(field_name: str) -> str:
    return field_name.removesuffix("__c").replace("_", " ")



def _custom_metadata(target: OutputTarget) -> Mapping[str, Any]:
    """Tooling metadata of a rule file's declared output: a restricted picklist of its allowed
    values, else a field of its type."""
    label = (target.label or _label(target.field))[:40]  # Salesforce labels are 40 at most
    if not target.allowed:
        return {**_KIND_METADATA[target.kind], "label": label}
    values = [{"fullName": str(target.encode(value)), "label": value, "default": False}
              for value in target.allowed]
    return {"type": "Picklist", "label": label,
            "valueSet": {"restricted": True,
                         "valueSetDefinition": {"sorted": False, "value": values}}}


class SetupMixin:
    """The setup/check side of :class:`~crmsync.connectors.salesforce.SalesforceConnector`."""

    fieldmap: FieldMap
    objects: list[str]
    client: SalesforceClient

    def _crmsync_fields(self) -> dict[str, dict[str, Mapping[str, Any]]]:
        """Return ``{object: {field: tooling metadata}}`` of every field crmsync owns."""
        wanted: dict[str, dict[str, Mapping[str, Any]]] = {}
        for obj in self.objects:
            fields: dict[str, Mapping[str, Any]] = {}
            for name, target in self.fieldmap.outputs.items():
                meta = (_custom_metadata(target) if target.custom else
                        _OUTPUT_METADATA.get(name) or {**_KIND_METADATA[target.kind],
                                                       "label": _label(target.field)})
                fields[target.field] = meta
            for source in self.fieldmap.objects[obj].sources:
                # The rep's override field is crmsync's to create (reps fill it in).
                field_name = source.field or ""
                if source.fact == "status_override" and field_name.endswith("__c"):
                    fields[field_name] = _OVERRIDE_METADATA
            wanted[obj] = fields
        key_field = self.fieldmap.tasks.key_field
        if key_field:
            wanted.setdefault(self.fieldmap.tasks.object, {})[key_field] = _TASK_KEY_METADATA
        return wanted

    def _describe_fields(self, obj: str) -> set[str]:
        described = self.client.call(f"describe {obj}", lambda sf: sf.restful(
            f"sobjects/{obj}/describe", timeout=self.client.timeout))
        return {str(f["name"]).lower() for f in (described or {}).get("fields", [])}

    def check(self) -> None:
        """Describe each object once (deals and tasks too); ConfigError names missing fields.

        crmsync's own fields missing means ``crmsync setup`` has not run; other mapped fields
        missing means the field map does not match the org.
        """
        problems: list[str] = []
        own = self._crmsync_fields()
        mapped: dict[str, list[str]] = {
            obj: [name for name in self.fieldmap.objects[obj].fields()
                  if "." not in name and name not in own.get(obj, {})]
            for obj in self.objects
        }
        deals = self.fieldmap.deals
        if deals is not None and any(has_deals(self.fieldmap, obj) for obj in self.objects):
            mapped.setdefault(deals.object, []).extend(
                name for name in deals.fields.values() if "." not in name)
        for obj in dict.fromkeys([*self.objects, *own, *mapped]):
            present = self._describe_fields(obj)
            missing_own = [f"{obj}.{name}" for name in own.get(obj, {})
                           if name.lower() not in present]
            if missing_own:
                problems.append(f"missing crmsync fields {', '.join(missing_own)}: run "
                                "`crmsync setup`")
            missing = [f"{obj}.{name}" for name in mapped.get(obj, [])
                       if name.lower() not in present]
            if missing:
                problems.append(f"fields {', '.join(missing)} named in {self.fieldmap.path} "
                                "do not exist in the org: fix the field map")
        if problems:
            raise ConfigError("; ".join(problems))

    def setup(self) -> SetupReport:
        """Create crmsync's custom fields through the Tooling API; idempotent.

        Reads each object's describe first and creates only what is missing; a
        ``DUPLICATE_DEVELOPER_NAME`` answer (created meanwhile) counts as existing.
        """
        created: list[str] = []
        existing: list[str] = []
        for obj, fields in self._crmsync_fields().items():
            present = self._describe_fields(obj)
            for name, meta in fields.items():
                full_name = f"{obj}.{name}"
                if name.lower() in present or self._create_field(full_name, meta) is False:
                    existing.append(full_name)
                else:
                    log.info("created custom field %s", full_name)
                    created.append(full_name)
        return SetupReport(created=created, existing=existing)

    def _create_field(self, full_name: str, meta: Mapping[str, Any]) -> bool:
        """Create one custom field; return False when it already existed."""
        body = {"FullName": full_name, "Metadata": dict(meta)}

        def post(sf: Salesforce) -> bool:
            try:
                sf.toolingexecute("sobjects/CustomField", method="POST", data=body,
                                  timeout=self.client.timeout)
            except SalesforceMalformedRequest as exc:
                if _first_error(exc.content)[0] == "DUPLICATE_DEVELOPER_NAME":
                    return False
                raise
            return True

        return self.client.call(f"create field {full_name}", post)
