"""sObject Collections: batched create/update/upsert/delete/retrieve in one API call (§2.7).

Well-formed requests answer HTTP 200 with one SaveResult per record in input order, even when
records fail; ``allOrNone`` rolls every write back and marks the valid records
``ALL_OR_NONE_OPERATION_ROLLED_BACK``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crmsync.sandbox.salesforce.dml import SaveError
from crmsync.sandbox.salesforce.ids import normalize_id
from crmsync.sandbox.salesforce.responses import fail, not_found
from crmsync.sandbox.salesforce.rest import _json_object, render_record
from crmsync.sandbox.salesforce.schema import ObjectDef
from crmsync.sandbox.server import Request, Response

if TYPE_CHECKING:
    from crmsync.sandbox.salesforce.emulator import SalesforceEmulator

MAX_RECORDS = 200
_ROLLED_BACK = SaveError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using AllOrNone "
    "header",
)


class Collections:
    """``/composite/sobjects[...]`` for one emulator."""

    def __init__(self, emulator: SalesforceEmulator) -> None:
        self.em = emulator

    def handle(self, request: Request, segs: list[str], version: str) -> Response:
        """Route by method and the path after ``/composite/sobjects``."""
        method = request.method
        if not segs:
            if method == "POST":
                return self.write(request, "create")
            if method == "PATCH":
                return self.write(request, "update")
            if method == "DELETE":
                return self.delete(request)
        elif len(segs) == 1 and method in ("GET", "POST"):
            return self.retrieve(request, segs[0], version)
        elif len(segs) == 2 and method == "PATCH":
            return self.write(request, "upsert", segs[0], segs[1])
        raise not_found()

    # -- writes ------------------------------------------------------------------------------

    def write(
        self, request: Request, op: str, type_name: str | None = None, ext_field: str | None = None
    ) -> Response:
        """Create, update or upsert up to 200 records."""
        em = self.em
        body = _json_object(request)
        records = body.get("records")
        all_or_none = _flag(body.get("allOrNone", False))
        if not isinstance(records, list) or not records:
            raise fail(400, "REQUIRED_FIELD_MISSING", "records: required field is missing")
        if len(records) > MAX_RECORDS:
            raise fail(400, "EXCEEDED_ID_LIMIT",
                       "record limit reached. cannot submit more than 200 records into this call")
        upsert_obj = None
        if op == "upsert":
            upsert_obj = em.writer.object(type_name or "")
            fdef = upsert_obj.field(ext_field or "")
            if fdef is None or not (fdef.external_id or fdef.type == "id"):
                raise fail(400, "INVALID_FIELD", f"Field name provided, {ext_field} does not match "
                           f"an External ID, Salesforce Id, or indexed field for {upsert_obj.name}")
            ext_field = fdef.name
        # Parse everything first: a bad record makes the whole request fail before any write.
        parsed: list[tuple[ObjectDef, dict[str, Any]]] = []
        for raw in records:
            if not isinstance(raw, dict):
                raise fail(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of SObject")
            attributes = raw.get("attributes")
            type_ = attributes.get("type") if isinstance(attributes, dict) else None
            if not type_:
                raise fail(400, "INVALID_TYPE", "Must send a concrete entity type.")
            obj = em.store.object(type_)
            if obj is None:
                raise fail(400, "INVALID_TYPE", f"sObject type '{type_}' is not supported.")
            if upsert_obj is not None and obj is not upsert_obj:
                raise fail(400, "INVALID_TYPE", f"All records must be of type {upsert_obj.name}")
            parsed.append((obj, em.writer.parse_values(obj, raw)))

        em.store.begin()
        results: list[dict[str, Any]] = []
        failed = False
        for obj, values in parsed:
            result = self._one(request, op, obj, values, ext_field)
            failed = failed or not result["success"]
            results.append(result)
        if all_or_none and failed:
            em.store.rollback()
            for result in results:
                if result["success"]:
                    result["success"] = False
                    result["errors"] = [_ROLLED_BACK.to_json()]
                    if op == "create":
                        result.pop("id", None)
                    result.pop("created", None)
        else:
            em.store.commit()
        return Response(200, results)

    def _one(
        self, request: Request, op: str, obj: ObjectDef, values: dict[str, Any],
        ext_field: str | None,
    ) -> dict[str, Any]:
        em = self.em
        record_id = values.get("Id")
        rejected = em.rejection(request, record_id, set(values) - {"Id"})
        if rejected is not None:
            return _failure([rejected], record_id if op != "create" else None)
        if op == "create":
            new_id, errors = em.writer.insert(obj, values)
            return _failure(errors) if errors else _success(new_id)
        if op == "update":
            if record_id is None:
                missing = SaveError("MISSING_ARGUMENT", "Id not specified in an update call")
                return _failure([missing])
            errors = em.writer.update(obj, record_id, values)
            return _failure(errors) if errors else _success(normalize_id(record_id))
        assert ext_field is not None
        key = values.get(ext_field) if ext_field != "Id" else record_id
        new_id, created, errors = em.writer.upsert(obj, ext_field, key, values)
        if errors:
            return _failure(errors)
        result = _success(new_id)
        result["created"] = created
        return result

    def delete(self, request: Request) -> Response:
        """``DELETE /composite/sobjects?ids=a,b&allOrNone=false``."""
        em = self.em
        ids = request.param_list("ids")
        if not ids:
            raise fail(400, "REQUIRED_FIELD_MISSING", "At least 1 Id is required.")
        if len(ids) > MAX_RECORDS:
            raise fail(400, "EXCEEDED_ID_LIMIT",
                       "record limit reached. cannot submit more than 200 records into this call")
        all_or_none = _flag(request.param("allOrNone", "false"))
        em.store.begin()
        results = []
        for raw in ids:
            rejected = em.rejection(request, normalize_id(raw), set())
            if rejected is not None:
                results.append(_failure([rejected], raw))
                continue
            deleted_id, errors = em.writer.delete(raw)
            results.append(_failure(errors, raw) if errors else _success(deleted_id))
        if all_or_none and any(not r["success"] for r in results):
            em.store.rollback()
            for result in results:
                if result["success"]:
                    result.update(success=False, errors=[_ROLLED_BACK.to_json()])
        else:
            em.store.commit()
        return Response(200, results)

    # -- retrieve ----------------------------------------------------------------------------

    def retrieve(self, request: Request, type_name: str, version: str) -> Response:
        """``GET /composite/sobjects/X?ids=..&fields=..`` (or POST with a JSON body)."""
        em = self.em
        obj = em.store.object(type_name)
        if obj is None:
            raise not_found()
        if request.method == "POST":
            body = _json_object(request)
            ids, fields = list(body.get("ids") or []), list(body.get("fields") or [])
        else:
            ids, fields = request.param_list("ids"), request.param_list("fields")
        if not ids or not fields:
            raise fail(400, "REQUIRED_FIELD_MISSING", "ids and fields are required")
        if len(ids) > 2000:
            raise fail(400, "EXCEEDED_ID_LIMIT", "too many ids")
        out = []
        for raw in ids:
            record_id = normalize_id(raw)
            rec = em.store.get(obj.name, record_id) if record_id else None
            live = rec is not None and not rec["IsDeleted"]
            out.append(render_record(obj, rec, version, fields) if live and rec else None)
        return Response(200, out)


def _success(record_id: str | None) -> dict[str, Any]:
    return {"id": record_id, "success": True, "errors": []}


def _failure(errors: list[SaveError], record_id: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"success": False, "errors": [e.to_json() for e in errors]}
    if record_id is not None:
        out = {"id": normalize_id(record_id) or record_id, **out}
    return out


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")
