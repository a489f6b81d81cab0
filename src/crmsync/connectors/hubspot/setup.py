"""Setting up crmsync's HubSpot properties (``crmsync setup``) and checking them (``check``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crmsync.connectors.base import SetupReport
from crmsync.connectors.fieldmap import FieldMap, OutputTarget
from crmsync.connectors.hubspot.client import HubSpotClient
from crmsync.connectors.hubspot.errors import _Rejected
from crmsync.connectors.hubspot.wire import GROUP, _results, task_key_field
from crmsync.errors import ConfigError
from crmsync.model import MISS_TYPES, STATUSES

_OUTPUT_LABELS = {
    "status": "Funnel status", "miss_type": "Miss type", "score": "Lead score",
    "reason": "Why (crmsync)", "ruleset": "Rule set version", "evaluated_at": "Evaluated at",
    "status_since": "Status since",
}


class PropertySetup:
    """Creates and checks crmsync's property groups and its contact and task properties."""

    def __init__(
        self, client: HubSpotClient, fieldmap: FieldMap, override_field: str | None
    ) -> None:
        self._http = client
        self._raw = client.raw
        self.fieldmap = fieldmap
        self._override_field = override_field

    def _wanted_properties(self) -> dict[str, dict[str, Any]]:
        """Return crmsync's contact property definitions by name."""
        def options(output: str, values: Sequence[str]) -> list[dict[str, Any]]:
            target = self.fieldmap.outputs.get(output)
            return [{"label": v.replace("_", " ").title(),
                     "value": str(target.encode(v)) if target else v,
                     "displayOrder": i, "hidden": False} for i, v in enumerate(values)]

        kinds: dict[str, dict[str, Any]] = {
            "status": {"type": "enumeration", "fieldType": "select",
                       "options": options("status", STATUSES)},
            "miss_type": {"type": "enumeration", "fieldType": "select",
                          "options": options("miss_type", MISS_TYPES)},
            "score": {"type": "number", "fieldType": "number"},
            "reason": {"type": "string", "fieldType": "textarea"},
            "ruleset": {"type": "string", "fieldType": "text"},
            "evaluated_at": {"type": "datetime", "fieldType": "date"},
            "status_since": {"type": "datetime", "fieldType": "date"},
        }
        wanted: dict[str, dict[str, Any]] = {}
        for output, target in self.fieldmap.outputs.items():
            kind = (_custom_kind(target) if target.custom
                    else kinds.get(output, {"type": "string", "fieldType": "text"}))
            wanted[target.field] = {
                "name": target.field,
                "label": target.label or _OUTPUT_LABELS.get(output, output),
                "groupName": GROUP, "description": "Set by crmsync; do not edit by hand.",
                "formField": False, **kind,
            }
        if self._override_field:
            wanted[self._override_field] = {
                "name": self._override_field, "label": "Funnel status override",
                "groupName": GROUP, "formField": False, "type": "enumeration",
                "fieldType": "select", "options": options("status", STATUSES),
                "description": "Set by a rep to override crmsync's funnel status.",
            }
        return wanted

    def _task_properties(self) -> dict[str, dict[str, Any]]:
        """Return crmsync's task property definitions by name (the searchable task key)."""
        name = task_key_field(self.fieldmap)
        return {name: {
            "name": name, "label": "crmsync task key", "groupName": GROUP, "type": "string",
            "fieldType": "text", "formField": False,
            "description": "Set by crmsync: which contact and purpose this task is for.",
        }}

    def _existing_properties(self, object_type: str, names: Sequence[str]) -> set[str]:
        body = {"inputs": [{"name": n} for n in names], "archived": False}
        answer = self._http.call(f"read {object_type} properties", "properties.batch",
                                 lambda api: api.read(object_type,
                                                      batch_read_input_property_name=body,
                                                      **self._raw))
        return {str(p["name"]) for p in _results(answer)}

    def check(self) -> None:
        """Two calls: prove the token works and that every crmsync property exists.

        One batch read of the contact properties, one of the task properties.

        Raises:
            AuthError: The token was refused or lacks a scope.
            ConfigError: Properties are missing (named), with the command that creates them.
        """
        missing: list[str] = []
        for object_type, wanted in (("contacts", self._wanted_properties()),
                                    ("tasks", self._task_properties())):
            existing = self._existing_properties(object_type, list(wanted))
            missing += [_label(object_type, n) for n in wanted if n not in existing]
        if missing:
            raise ConfigError(f"HubSpot properties missing: {', '.join(missing)}; "
                              "run `crmsync setup` to create them")

    def setup(self) -> SetupReport:
        """Create the ``crmsync`` property groups and crmsync's contact and task properties.

        Idempotent. Per object type: reads what exists first (one call), creates the group if
        needed and the missing properties in one batch; a 409 (created meanwhile) counts as
        existing. Task properties are reported as ``tasks.NAME``.
        """
        report = SetupReport(created=[], existing=[])
        self._ensure("contacts", self._wanted_properties(), report)
        self._ensure("tasks", self._task_properties(), report)
        return report

    def _ensure(
        self, object_type: str, wanted: dict[str, dict[str, Any]], report: SetupReport
    ) -> None:
        existing = self._existing_properties(object_type, list(wanted))
        missing = [name for name in wanted if name not in existing]
        report.existing.extend(_label(object_type, n) for n in wanted if n in existing)
        if not missing:
            return
        group = {"name": GROUP, "label": "CRM Sync", "displayOrder": -1}
        try:
            self._http.call("create property group", "properties.groups",
                            lambda api: api.create(object_type, property_group_create=group,
                                                   **self._raw))
        except _Rejected as error:
            if error.status != 409:
                raise
        body = {"inputs": [wanted[name] for name in missing]}
        try:
            answer = self._http.call("create properties", "properties.batch",
                                     lambda api: api.create(object_type,
                                                            batch_input_property_create=body,
                                                            **self._raw))
            made = {str(p["name"]) for p in _results(answer)}
        except _Rejected as error:
            if error.status != 409:
                raise
            made = set()
        for name in missing:
            if name in made:
                report.created.append(_label(object_type, name))
                continue
            # Not in the batch answer (409 for the batch, or a 207 error): one by one.
            try:
                self._http.call("create property", "properties.core",
                                lambda api, n=name: api.create(object_type,
                                                               property_create=wanted[n],
                                                               **self._raw))
                report.created.append(_label(object_type, name))
            except _Rejected as error:
                if error.status != 409:
                    raise
                report.existing.append(_label(object_type, name))


def _custom_kind(target: OutputTarget) -> dict[str, Any]:
    """The property type of a rule file's declared output: its allowed values as a select
    (labelled as the rule file spells them), else a property of its type."""
    if target.allowed:
        return {"type": "enumeration", "fieldType": "select", "options": [
            {"label": value, "value": str(target.encode(value)), "displayOrder": index,
             "hidden": False} for index, value in enumerate(target.allowed)]}
    if target.kind in ("int", "number"):
        return {"type": "number", "fieldType": "number"}
    if target.kind == "bool":
        return {"type": "bool", "fieldType": "booleancheckbox",
                "options": [{"label": "Yes", "value": "true", "displayOrder": 0, "hidden": False},
                            {"label": "No", "value": "false", "displayOrder": 1,
                             "hidden": False}]}
    return {"type": "string", "fieldType": "text"}


def _label(object_type: str, name: str) -> str:
    """Contact properties by bare name (as before); others as ``tasks.NAME``."""
    return name if object_type == "contacts" else f"{object_type}.{name}"
