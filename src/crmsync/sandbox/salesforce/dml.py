"""Writes (insert, update, upsert, delete) with Salesforce's validation and per-record errors.

Every entry point that writes (single-record REST, sObject Collections, Bulk 2.0, sandbox user
edits) goes through :class:`Writer`, so they all validate, default, derive and stamp alike.
Problems with one record come back as :class:`SaveError` values (``statusCode``/``message``/
``fields``); problems with the request as a whole raise :class:`RequestError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crmsync.sandbox.salesforce.history import track_update
from crmsync.sandbox.salesforce.ids import normalize_id
from crmsync.sandbox.salesforce.schema import FieldDef, ObjectDef
from crmsync.sandbox.salesforce.store import Record, Store
from crmsync.sandbox.salesforce.values import STRING_TYPES, BadValueError, from_input

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class SaveError:
    """One per-record error as Salesforce reports it in a SaveResult."""

    status_code: str
    message: str
    fields: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """``{"statusCode", "message", "fields"}`` (collections and bulk results)."""
        return {"statusCode": self.status_code, "message": self.message, "fields": self.fields}

    def to_rest(self) -> dict[str, Any]:
        """``{"errorCode", "message", "fields"}`` (single-record REST error bodies)."""
        return {"errorCode": self.status_code, "message": self.message, "fields": self.fields}


class RequestError(Exception):
    """A request Salesforce refuses as a whole (HTTP ``status`` with an error list)."""

    def __init__(self, error_code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.status = status


class Writer:
    """Validates and applies writes to the store, stamping them with the emulator clock."""

    def __init__(self, store: Store, stamp: Callable[[], datetime], api_user_id: str) -> None:
        self.store = store
        self.stamp = stamp
        self.api_user_id = api_user_id

    # -- request-level checks ----------------------------------------------------------------

    def object(self, name: str) -> ObjectDef:
        """Return an object definition or raise ``NOT_FOUND`` like the REST API."""
        obj = self.store.object(name) if isinstance(name, str) else None
        if obj is None:
            raise RequestError("NOT_FOUND", "The requested resource does not exist", 404)
        return obj

    def parse_values(self, obj: ObjectDef, body: Mapping[str, Any]) -> dict[str, Any]:
        """Map a write body onto canonical field names and stored values.

        ``attributes`` is ignored; ``Id`` (any case) is left to the caller. Unknown fields and
        unreadable values fail the whole request, as in Salesforce.
        """
        out: dict[str, Any] = {}
        for key, raw in body.items():
            if key == "attributes":
                continue
            fdef = obj.field(key)
            if fdef is None:
                raise RequestError(
                    "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}"
                )
            try:
                value = from_input(fdef.type, raw, fdef.name)
            except BadValueError as error:
                raise RequestError("JSON_PARSER_ERROR", str(error)) from None
            if fdef.type == "reference" and value is not None:
                value = normalize_id(value) or value  # 15-character ids are stored as 18
            out[fdef.name] = value
        return out

    # -- operations --------------------------------------------------------------------------

    def insert(self, obj: ObjectDef, values: dict[str, Any]) -> tuple[str | None, list[SaveError]]:
        """Create a record; return (new id, []) or (None, errors)."""
        if not obj.createable:
            message = f"entity type {obj.name} does not support insert"
            return None, [SaveError("INVALID_TYPE_FOR_OPERATION", message)]
        if "Id" in values:
            return None, [SaveError("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])]
        errors = self._not_writable(obj, values, insert=True)
        record: Record = {}
        for fdef in obj.fields.values():
            value = values.get(fdef.name)
            if fdef.name not in values and fdef.default is not None:
                value = self.api_user_id if fdef.default == "__api_user__" else fdef.default
            record[fdef.name] = value
        errors += self._validate(obj, record, None)
        if errors:
            return None, errors
        now = self.stamp()
        record["Id"] = self.store.new_id(obj.name)
        record["IsDeleted"] = False
        record["CreatedDate"] = record["LastModifiedDate"] = record["SystemModstamp"] = now
        record["CreatedById"] = record["LastModifiedById"] = self.api_user_id
        derive(obj.name, record)
        self.store.put(obj.name, record)
        return record["Id"], []

    def update(
        self, obj: ObjectDef, raw_id: Any, values: dict[str, Any], *, system: bool = False
    ) -> list[SaveError]:
        """Update a record by id; return per-record errors (empty on success).

        ``system`` allows read-only fields (sandbox "user edits" and seeding tools).
        """
        record_id = self.check_id(obj, raw_id)
        if isinstance(record_id, SaveError):
            return [record_id]
        current = self.store.get(obj.name, record_id)
        if current is None:
            return [SaveError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])]
        if current["IsDeleted"]:
            return [SaveError("ENTITY_IS_DELETED", "entity is deleted", [])]
        if obj.name == "Lead" and current.get("IsConverted"):
            return [SaveError("CANNOT_UPDATE_CONVERTED_LEAD", "cannot reference converted lead")]
        values = {k: v for k, v in values.items() if k != "Id"}
        errors = [] if system else self._not_writable(obj, values, insert=False)
        record = dict(current)
        record.update(values)
        errors += self._validate(obj, record, record_id, changed=set(values))
        if errors:
            return errors
        now = self.stamp()
        record["LastModifiedDate"] = record["SystemModstamp"] = now
        record["LastModifiedById"] = self.api_user_id
        derive(obj.name, record)
        self.store.put(obj.name, record)
        if obj.name == "Contact":
            track_update(self.store, current, record, now, self.api_user_id)
        return []

    def delete(
        self, raw_id: Any, obj: ObjectDef | None = None
    ) -> tuple[str | None, list[SaveError]]:
        """Move a record to the recycle bin (IsDeleted, stamped); return (id, errors)."""
        record_id = normalize_id(raw_id)
        found = None if record_id is None else self.store.find(record_id)
        if record_id is None or (obj is not None and not record_id.startswith(obj.key_prefix)):
            return None, [SaveError("MALFORMED_ID", f"malformed id {raw_id}", [])]
        if found is None:
            return None, [SaveError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")]
        if found["IsDeleted"]:
            return None, [SaveError("ENTITY_IS_DELETED", "entity is deleted", [])]
        obj_name = self.store.object_for_id(record_id) or ""
        if not self.store.schema[obj_name.lower()].deletable:
            message = f"entity type {obj_name} does not support delete"
            return None, [SaveError("INVALID_TYPE_FOR_OPERATION", message)]
        record = dict(found)
        record["IsDeleted"] = True
        record["SystemModstamp"] = self.stamp()
        self.store.put(obj_name, record)
        return record_id, []

    def upsert(
        self, obj: ObjectDef, ext_field: str, ext_value: Any, values: dict[str, Any]
    ) -> tuple[str | None, bool, list[SaveError]]:
        """Insert or update by an external id; return (id, created, errors)."""
        fdef = obj.field(ext_field)
        if fdef is None or not (fdef.external_id or fdef.type == "id"):
            raise RequestError(
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {ext_field}",
                404,
            )
        if ext_value is None or ext_value == "":
            return None, False, [SaveError(
                "MISSING_ARGUMENT", f"{fdef.name} not specified", [fdef.name])]
        if fdef.type == "id":
            found_id = normalize_id(ext_value)
            matches = {found_id} if found_id and self.store.get(obj.name, found_id) else set()
        else:
            matches = self.store.lookup(obj.name, fdef.name, ext_value)
        matches = {m for m in matches if not (self.store.get(obj.name, m) or {}).get("IsDeleted")}
        if len(matches) > 1:
            return None, False, [SaveError(
                "DUPLICATE_EXTERNAL_ID",
                f"{fdef.name}: more than one record found for external id field: {sorted(matches)}",
                [fdef.name],
            )]
        values = {k: v for k, v in values.items() if k != "Id"}
        if matches:
            (record_id,) = matches
            return record_id, False, self.update(obj, record_id, values)
        if fdef.type != "id":
            values[fdef.name] = from_input(fdef.type, ext_value, fdef.name)
        new_id, errors = self.insert(obj, values)
        return new_id, True, errors

    def check_id(self, obj: ObjectDef, raw_id: Any) -> str | SaveError:
        """Return the 18-character id for ``obj``, or a ``MALFORMED_ID`` error."""
        record_id = normalize_id(raw_id)
        if record_id is None or not record_id.startswith(obj.key_prefix):
            return SaveError(
                "MALFORMED_ID", f"{obj.name} ID: id value of incorrect type: {raw_id}", ["Id"]
            )
        return record_id

    # -- validation --------------------------------------------------------------------------

    def _not_writable(
        self, obj: ObjectDef, values: dict[str, Any], *, insert: bool
    ) -> list[SaveError]:
        def writable(name: str) -> bool:
            fdef = obj.fields[name.lower()]
            return fdef.createable if insert else fdef.updateable

        bad = [name for name in values if name != "Id" and not writable(name)]
        if not bad:
            return []
        return [SaveError(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            f"Unable to create/update fields: {', '.join(bad)}. Please check the security settings "
            "of this field and verify that it is read/write for your profile or permission set.",
            bad,
        )]

    def _validate(
        self, obj: ObjectDef, record: Record, record_id: str | None, changed: set[str] | None = None
    ) -> list[SaveError]:
        errors: list[SaveError] = []
        candidates = (
            obj.fields.values() if changed is None else [obj.fields[n.lower()] for n in changed]
        )
        missing = [f.name for f in candidates if f.required and record.get(f.name) in (None, "")]
        if missing:
            errors.append(SaveError(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            ))
        for name in changed if changed is not None else list(record):
            fdef = obj.fields.get(name.lower())
            value = record.get(name)
            if fdef is None or value is None:
                continue
            error = self._check_value(fdef, value, record_id)
            if error is not None:
                errors.append(error)
        if obj.name == "Task":
            errors += self._task_rules(record)
        return errors

    def _check_value(self, fdef: FieldDef, value: Any, record_id: str | None) -> SaveError | None:
        if fdef.type in STRING_TYPES and fdef.length and len(str(value)) > fdef.length:
            return SaveError(
                "STRING_TOO_LONG",
                f"{fdef.label}: data value too large: {str(value)[:30]}... "
                f"(max length={fdef.length})",
                [fdef.name],
            )
        if fdef.type == "picklist" and fdef.restricted and value not in fdef.picklist:
            return SaveError(
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                f"{fdef.label}: bad value for restricted picklist field: {value}",
                [fdef.name],
            )
        if fdef.type == "email" and not _EMAIL.match(str(value)):
            return SaveError(
                "INVALID_EMAIL_ADDRESS",
                f"{fdef.label}: invalid email address: {value}",
                [fdef.name],
            )
        if fdef.type == "reference":
            return self._check_reference(fdef, value)
        if fdef.unique:  # an external id that is not unique may repeat
            others = self.store.lookup(self._owner_object(fdef), fdef.name, value) - {record_id}
            if others:
                return SaveError(
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {fdef.name} duplicates value on record with id: "
                    f"{sorted(others)[0]}",
                    [fdef.name],
                )
        return None

    def _owner_object(self, fdef: FieldDef) -> str:
        for obj in self.store.schema.values():
            if obj.fields.get(fdef.name.lower()) is fdef:
                return obj.name
        return ""

    def _check_reference(self, fdef: FieldDef, value: Any) -> SaveError | None:
        ref = normalize_id(value)
        if ref is None:
            return SaveError(
                "MALFORMED_ID", f"{fdef.label}: id value of incorrect type: {value}", [fdef.name]
            )
        target = self.store.object_for_id(ref)
        if target not in fdef.reference_to:
            return SaveError(
                "FIELD_INTEGRITY_EXCEPTION",
                f"field integrity exception: unknown ({fdef.label}: id value of incorrect type: "
                f"{value})",
                [fdef.name],
            )
        found = self.store.get(target, ref)
        if found is None or found["IsDeleted"]:
            return SaveError(
                "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [fdef.name]
            )
        return None

    def _task_rules(self, record: Record) -> list[SaveError]:
        who, what = record.get("WhoId"), record.get("WhatId")
        if who and what and str(who).startswith("00Q"):
            return [SaveError(
                "FIELD_INTEGRITY_EXCEPTION",
                "field integrity exception: WhatId (a task whose Name is a Lead cannot be "
                "Related To another record)",
                ["WhatId"],
            )]
        return []


def derive(obj_name: str, record: Record) -> None:
    """Recompute calculated and derived fields (Name, IsClosed, IsWon, IsHighPriority)."""
    if obj_name in ("Contact", "Lead", "User"):
        record["Name"] = " ".join(p for p in (record.get("FirstName"), record.get("LastName")) if p)
    elif obj_name == "Opportunity":
        stage = record.get("StageName")
        record["IsClosed"] = stage in ("Closed Won", "Closed Lost")
        record["IsWon"] = stage == "Closed Won"
    elif obj_name == "Task":
        record["IsClosed"] = record.get("Status") == "Completed"
        record["IsHighPriority"] = record.get("Priority") == "High"
