"""Single-record REST calls (``sf.Contact.get/create/update/upsert/delete``), describe, and
the ``updated``/``deleted`` replication endpoints (§2.5, §2.6)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from crmsync.sandbox.salesforce.describe import (
    child_relationships,
    describe_global,
    describe_object,
    object_summary,
)
from crmsync.sandbox.salesforce.dml import SaveError
from crmsync.sandbox.salesforce.ids import normalize_id
from crmsync.sandbox.salesforce.responses import fail, not_found
from crmsync.sandbox.salesforce.schema import ObjectDef
from crmsync.sandbox.salesforce.store import Record
from crmsync.sandbox.salesforce.values import format_datetime, parse_datetime, to_json
from crmsync.sandbox.server import Request, Response

if TYPE_CHECKING:
    from crmsync.sandbox.salesforce.emulator import SalesforceEmulator

REPLICATION_WINDOW = timedelta(days=30)


def render_record(
    obj: ObjectDef, rec: Record, version: str, fields: list[str] | None = None
) -> dict[str, Any]:
    """A record as ``GET /sobjects/X/{id}`` returns it: ``attributes`` then every field."""
    url = f"/services/data/v{version}/sobjects/{obj.name}/{rec['Id']}"
    out: dict[str, Any] = {"attributes": {"type": obj.name, "url": url}}
    names = fields if fields is not None else [f.name for f in obj.fields.values()]
    for name in names:
        fdef = obj.field(name)
        if fdef is None:
            raise fail(
                400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}"
            )
        out[fdef.name] = to_json(fdef.type, rec.get(fdef.name))
    return out


def save_errors_response(errors: list[SaveError]) -> Response:
    """A failed single-record write: 400 (404 for unknown ids) with the REST error list."""
    status = 404 if errors[0].status_code in ("ENTITY_IS_DELETED",) else 400
    return Response(status, [e.to_rest() for e in errors])


class SObjectRoutes:
    """``/sobjects/...`` for one emulator."""

    def __init__(self, emulator: SalesforceEmulator) -> None:
        self.em = emulator

    def handle(self, request: Request, segs: list[str], version: str) -> Response:
        """Route ``/sobjects[/Type[/...]]``."""
        em, method = self.em, request.method
        objects = list(em.store.schema.values())
        if not segs:
            if method != "GET":
                raise _method()
            return Response(200, describe_global(objects, version))
        obj = em.store.object(segs[0])
        if obj is None:
            raise not_found()
        rest = segs[1:]
        if not rest:
            if method == "GET":
                summary = object_summary(obj, version)
                return Response(200, {"objectDescribe": summary, "recentItems": []})
            if method == "POST":
                return self.create(request, obj)
            raise _method()
        if rest == ["describe"] and method == "GET":
            return Response(200, describe_object(obj, version, child_relationships(obj, objects)))
        if rest[0] in ("updated", "deleted") and len(rest) == 1 and method == "GET":
            return self.replication(request, obj, rest[0])
        if len(rest) == 1:
            return self.by_id(request, obj, rest[0], version)
        if len(rest) == 2:
            return self.by_external_id(request, obj, rest[0], rest[1], version)
        raise not_found()

    def create(self, request: Request, obj: ObjectDef) -> Response:
        """``POST /sobjects/X/`` -> 201 ``{"id", "success", "errors"}``."""
        values = self.em.writer.parse_values(obj, _json_object(request))
        rejected = self.em.rejection(request, None, set(values))
        if rejected:
            return save_errors_response([rejected])
        new_id, errors = self.em.writer.insert(obj, values)
        if errors:
            return save_errors_response(errors)
        return Response(201, {"id": new_id, "success": True, "errors": []})

    def by_id(self, request: Request, obj: ObjectDef, raw_id: str, version: str) -> Response:
        """GET / PATCH / DELETE one record by id."""
        em = self.em
        record_id = normalize_id(raw_id)
        if record_id is None or not record_id.startswith(obj.key_prefix):
            raise _no_external_id(raw_id)
        rec = em.store.get(obj.name, record_id)
        if rec is None:
            raise not_found()
        if request.method == "GET":
            if rec["IsDeleted"]:
                raise fail(404, "ENTITY_IS_DELETED", "entity is deleted")
            fields = request.param_list("fields") or None
            return Response(200, render_record(obj, rec, version, fields))
        if request.method == "PATCH":
            values = em.writer.parse_values(obj, _json_object(request))
            rejected = em.rejection(request, record_id, set(values))
            if rejected:
                return save_errors_response([rejected])
            errors = em.writer.update(obj, record_id, values)
            return save_errors_response(errors) if errors else Response(204)
        if request.method == "DELETE":
            rejected = em.rejection(request, record_id, set())
            if rejected:
                return save_errors_response([rejected])
            _, errors = em.writer.delete(record_id, obj)
            return save_errors_response(errors) if errors else Response(204)
        raise _method()

    def by_external_id(
        self, request: Request, obj: ObjectDef, field: str, value: str, version: str
    ) -> Response:
        """``GET`` or ``PATCH`` (upsert) ``/sobjects/X/Field__c/value``."""
        em = self.em
        fdef = obj.field(field)
        if fdef is None or not (fdef.external_id or fdef.type == "id"):
            raise _no_external_id(field)
        if request.method == "GET":
            if fdef.type == "id":
                ids = {normalize_id(value) or ""}
            else:
                ids = em.store.lookup(obj.name, fdef.name, value)
            found = [em.store.get(obj.name, i) for i in ids if i]
            live = [r for r in found if r is not None and not r["IsDeleted"]]
            if not live:
                raise not_found()
            if len(live) > 1:
                return _multiple_choices(obj, version, [r["Id"] for r in live])
            return Response(200, render_record(obj, live[0], version))
        if request.method != "PATCH":
            raise _method()
        values = em.writer.parse_values(obj, _json_object(request))
        rejected = em.rejection(request, None, set(values))
        if rejected:
            return save_errors_response([rejected])
        record_id, created, errors = em.writer.upsert(obj, fdef.name, value, values)
        if errors:
            if errors[0].status_code == "DUPLICATE_EXTERNAL_ID":
                ids = em.store.lookup(obj.name, fdef.name, value)
                return _multiple_choices(obj, version, sorted(ids))
            return save_errors_response(errors)
        if created:
            return Response(201, {"id": record_id, "success": True, "errors": [], "created": True})
        # Since API v46.0 an upsert that updates answers 200 with the same body as a create
        # (created: false); earlier versions answer 204 with no body.
        if float(version) < 46.0:
            return Response(204)
        return Response(200, {"id": record_id, "success": True, "errors": [], "created": False})

    def replication(self, request: Request, obj: ObjectDef, kind: str) -> Response:
        """``GET /sobjects/X/updated|deleted/?start=..&end=..`` at whole-minute granularity."""
        now = self.em.now()
        start, end = _moment(request.param("start")), _moment(request.param("end"))
        if start is None or end is None:
            raise fail(400, "MALFORMED_QUERY", "start and end must be valid dateTime values")
        start, end = _minute(start), _minute(min(end, now))
        if end < start:
            raise fail(400, "INVALID_REPLICATION_DATE", "EndDate can not be before StartDate")
        if start < now - REPLICATION_WINDOW:
            raise fail(400, "INVALID_REPLICATION_DATE", "startDate cannot be more than 30 days ago")
        rows = [r for r in self.em.store.rows(obj.name) if start <= r["SystemModstamp"] < end]
        if kind == "updated":
            ids = [r["Id"] for r in rows if not r["IsDeleted"]]
            return Response(200, {"ids": ids, "latestDateCovered": format_datetime(end)})
        deleted = [
            {"id": r["Id"], "deletedDate": format_datetime(r["SystemModstamp"])}
            for r in rows if r["IsDeleted"]
        ]
        return Response(200, {
            "deletedRecords": deleted,
            "earliestDateAvailable": format_datetime(_minute(now - REPLICATION_WINDOW)),
            "latestDateCovered": format_datetime(end),
        })


def _moment(text: str | None) -> datetime | None:
    if not text:
        return None
    # simple-salesforce sends naive datetimes as "...T00:00:00:" (an empty offset); read as UTC.
    return parse_datetime(text.rstrip(":").replace(" ", "+"))


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = request.json()
    except ValueError:
        raise fail(
            400, "JSON_PARSER_ERROR", "Unexpected character: was expecting a JSON value"
        ) from None
    if not isinstance(body, dict):
        raise fail(
            400, "JSON_PARSER_ERROR",
            "Cannot deserialize instance of SObject from a non-object value",
        )
    return body


def _no_external_id(name: str) -> Exception:
    return fail(
        404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {name}"
    )


def _multiple_choices(obj: ObjectDef, version: str, ids: list[str]) -> Response:
    # 300: more than one record has this external id; the body lists their URLs.
    return Response(300, [f"/services/data/v{version}/sobjects/{obj.name}/{i}" for i in ids])


def _method() -> Exception:
    return fail(405, "METHOD_NOT_ALLOWED", "HTTP Method not allowed for this resource")


__all__ = ["SObjectRoutes", "render_record", "save_errors_response"]
