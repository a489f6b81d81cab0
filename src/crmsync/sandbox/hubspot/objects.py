"""``/crm/v3/objects/{type}``: list, get, create, update, archive, search and batch calls.

Status codes are exact (201 create, 207 partial, 204 archive) because the client deserialises
by status. Batch results come back in a different order from the inputs, missing ids are
reported in one combined ``OBJECT_NOT_FOUND`` error, and validation problems fail the whole batch.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from crmsync.sandbox.faults import FaultInjector
from crmsync.sandbox.hubspot.crm import HubSpotCrm
from crmsync.sandbox.hubspot.errors import correlation_id, fail
from crmsync.sandbox.hubspot.properties import iso_ms
from crmsync.sandbox.hubspot.schema import ObjectType
from crmsync.sandbox.hubspot.store import Record
from crmsync.sandbox.server import Request, Response

MAX_PAGE = 100
MAX_BATCH = 100


def encode_cursor(last_id: int) -> str:
    """Return an opaque list cursor for "after record ``last_id``"."""
    return base64.urlsafe_b64encode(f"{last_id}\n".encode()).decode()


def decode_cursor(cursor: str) -> int:
    """Return the id a list cursor points after; 400 when it is not one of ours."""
    try:
        return int(base64.urlsafe_b64decode(cursor.encode()).decode().strip())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        fail(400, f"Invalid 'after' cursor {cursor!r}")


def flag(raw: str | None) -> bool:
    """Parse a query boolean sent as ``True``/``False``/``true``/``false``."""
    return (raw or "").strip().lower() == "true"


def unordered(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return batch results in a deterministic order that is not the input order.

    The real API answers batches in no particular order; a client that matches results to
    inputs by position must fail here, not in production.
    """
    shuffled = sorted(items, key=lambda r: hashlib.sha1(str(r.get("id")).encode()).digest())
    if len(items) > 1 and shuffled == items:
        shuffled.reverse()
    return shuffled


class ObjectsApi:
    """Handlers for one account's object endpoints."""

    def __init__(self, crm: HubSpotCrm) -> None:
        self.crm = crm
        self.faults: FaultInjector | None = None

    # -- single records -------------------------------------------------------------------

    def list(self, request: Request, type_name: str) -> Response:
        """``GET /crm/v3/objects/{type}``: id order, opaque ``after`` cursor, max 100."""
        obj = self.crm.object_type(type_name)
        limit = parse_limit(request.param("limit"), default=10, maximum=MAX_PAGE)
        after = request.param("after")
        archived = flag(request.param("archived"))
        names = request.param_list("properties") or None
        page: list[Record] = []
        more = False
        for record in self.crm.stores[obj.name].ids_after(decode_cursor(after) if after else None):
            if record.archived != archived:
                continue
            if len(page) == limit:
                more = True
                break
            page.append(record)
        body: dict[str, Any] = {
            "results": [
                self.crm.render(
                    obj,
                    r,
                    names,
                    associations=request.param_list("associations"),
                    history=request.param_list("propertiesWithHistory"),
                )
                for r in page
            ]
        }
        if more and page:
            cursor = encode_cursor(int(page[-1].id))
            host = request.headers.get("host", "api.hubapi.com")
            body["paging"] = {
                "next": {
                    "after": cursor,
                    "link": f"http://{host}/crm/v3/objects/{type_name}?after={cursor}",
                }
            }
        return Response(200, body)

    def get(self, request: Request, type_name: str, record_id: str) -> Response:
        """``GET /crm/v3/objects/{type}/{id}`` (``idProperty`` supported)."""
        obj = self.crm.object_type(type_name)
        record = self._one(obj, record_id, request.param("idProperty"),
                           archived=flag(request.param("archived")))
        return Response(
            200,
            self.crm.render(
                obj,
                record,
                request.param_list("properties") or None,
                associations=request.param_list("associations"),
                history=request.param_list("propertiesWithHistory"),
            ),
        )

    def create(self, request: Request, type_name: str) -> Response:
        """``POST /crm/v3/objects/{type}`` -> 201 (inline associations validated)."""
        obj = self.crm.object_type(type_name)
        body = json_object(request)
        values = self.crm.validate(obj, body.get("properties"))
        self.crm.check_new(obj, values)
        links = self.crm.inline_associations(obj, body.get("associations"))
        self._reject(request, None, values)
        record = self.crm.create(obj, values)
        for to_type, to_id, type_id in links:
            self.crm.link(obj.name, record.id, to_type, to_id, type_id)
        return Response(201, self.crm.render(obj, record, list(values)))

    def update(self, request: Request, type_name: str, record_id: str) -> Response:
        """``PATCH /crm/v3/objects/{type}/{id}`` -> 200 with the written properties."""
        obj = self.crm.object_type(type_name)
        body = json_object(request)
        id_property = request.param("idProperty")
        if id_property:
            self.crm.check_unique(obj, id_property)
        record = self._one(obj, record_id, id_property)
        values = self.crm.validate(obj, body.get("properties"))
        self._reject(request, record.id, values)
        self.crm.write(obj, record, values)
        return Response(200, self.crm.render(obj, record, list(values)))

    def archive(self, request: Request, type_name: str, record_id: str) -> Response:
        """``DELETE /crm/v3/objects/{type}/{id}`` -> 204 (also for unknown ids, like HubSpot)."""
        obj = self.crm.object_type(type_name)
        record = self.crm.stores[obj.name].get(record_id)
        if record is not None:
            self.crm.archive(obj, record)
        return Response(204)

    def merge(self, request: Request, type_name: str) -> Response:
        """``POST /crm/v3/objects/{type}/merge`` -> 200 with the primary record.

        Body ``{"primaryObjectId", "objectIdToMerge"}``; the merged record disappears (archived)
        and the primary keeps its id, gaining the merged one's links and missing values.
        """
        obj = self.crm.object_type(type_name)
        body = json_object(request)
        primary_id, merged_id = body.get("primaryObjectId"), body.get("objectIdToMerge")
        if not primary_id or not merged_id:
            fail(400, "Invalid input JSON: 'primaryObjectId' and 'objectIdToMerge' are required",
                 errors=[{"message": "must not be null", "code": "REQUIRED_FIELD"}])
        primary_id, merged_id = str(primary_id), str(merged_id)
        if primary_id == merged_id:
            fail(400, f"Cannot merge {obj.singular} {primary_id} into itself")
        primary = self._one(obj, primary_id, None)
        merged = self._one(obj, merged_id, None)
        if primary.id == merged.id:  # one was merged into the other already
            fail(400, f"{obj.singular} {merged_id} is already merged into {primary.id}")
        self.crm.merge(obj, primary, merged)
        return Response(200, self.crm.render(obj, primary))

    # -- search ---------------------------------------------------------------------------

    def search(self, request: Request, type_name: str) -> Response:
        """``POST /crm/v3/objects/{type}/search`` (§3.5)."""
        obj = self.crm.object_type(type_name)
        body = json_object(request, allow_empty=True)
        lag = self.crm.settings.search_lag_s
        visible_before = self.crm.now_ms() - int(lag * 1000) if lag > 0 else None
        total, page, following = self.crm.searchers[obj.name].search(
            body, visible_before_ms=visible_before
        )
        names = body.get("properties") or None
        out: dict[str, Any] = {
            "total": total,
            "results": [self.crm.render(obj, r, names) for r in page],
        }
        if following is not None:
            out["paging"] = {"next": {"after": str(following)}}
        return Response(200, out)

    # -- batches --------------------------------------------------------------------------

    def batch(self, request: Request, type_name: str, operation: str) -> Response:
        """``POST /crm/v3/objects/{type}/batch/{read|create|update|upsert|archive}``."""
        obj = self.crm.object_type(type_name)
        handler = {
            "read": self._batch_read,
            "create": self._batch_create,
            "update": self._batch_update,
            "upsert": self._batch_upsert,
            "archive": self._batch_archive,
        }.get(operation)
        if handler is None:
            fail(404, f"Unknown batch operation {operation!r}", category="OBJECT_NOT_FOUND")
        body = json_object(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            fail(400, "Invalid input JSON: 'inputs' must be a list")
        if len(inputs) > MAX_BATCH:
            fail(400, f"Batch input is limited to {MAX_BATCH} inputs; got {len(inputs)}",
                 errors=[{"message": f"size must be between 0 and {MAX_BATCH}",
                          "code": "INVALID_INPUT_SIZE"}])
        if not all(isinstance(i, dict) for i in inputs):
            fail(400, "Invalid input JSON: every input must be an object")
        started = self.crm.now_ms()
        return handler(request, obj, body, inputs, started)

    def _batch_read(self, request: Request, obj: ObjectType, body: dict[str, Any],
                    inputs: list[dict[str, Any]], started: int) -> Response:
        id_property = body.get("idProperty")
        archived = flag(request.param("archived"))
        names = body.get("properties") or None
        results, missing = [], []
        seen: set[str] = set()
        for item in inputs:
            key = str(item.get("id", ""))
            record = (
                self.crm.stores[obj.name].get(key, archived=True)
                if archived and not id_property
                else self.crm.find(obj, key, id_property)
            )
            if record is None:
                missing.append(key)
            elif record.id not in seen:
                seen.add(record.id)
                results.append(self.crm.render(obj, record, names,
                                               history=body.get("propertiesWithHistory") or ()))
        errors = [_not_found(obj, missing)] if missing else []
        return batch_response(200, unordered(results), errors, started, self.crm.now_ms())

    def _batch_create(self, request: Request, obj: ObjectType, body: dict[str, Any],
                      inputs: list[dict[str, Any]], started: int) -> Response:
        prepared = []
        emails: set[str] = set()
        for item in inputs:
            values = self.crm.validate(obj, item.get("properties"))
            self.crm.check_new(obj, values)
            email = (values.get("email") or "").lower()
            if obj.name == "contacts" and email:
                if email in emails:
                    fail(409, "Contact already exists. Existing ID: (duplicate in this batch)",
                         category="CONFLICT")
                emails.add(email)
            prepared.append((values, self.crm.inline_associations(obj, item.get("associations"))))
        results, errors = [], []
        for values, links in prepared:
            rejected = self._rejection(request, None, values)
            if rejected is not None:
                errors.append(rejected)
                continue
            record = self.crm.create(obj, values)
            for to_type, to_id, type_id in links:
                self.crm.link(obj.name, record.id, to_type, to_id, type_id)
            results.append(self.crm.render(obj, record, list(values)))
        return batch_response(201, unordered(results), errors, started, self.crm.now_ms())

    def _batch_update(self, request: Request, obj: ObjectType, body: dict[str, Any],
                      inputs: list[dict[str, Any]], started: int) -> Response:
        keys = [str(i.get("id", "")) for i in inputs]
        if len(set(keys)) != len(keys):
            fail(400, "Duplicate IDs found in batch input: "
                 + str(sorted({k for k in keys if keys.count(k) > 1})))
        planned = []
        for item in inputs:
            id_property = item.get("idProperty")
            if id_property:
                self.crm.check_unique(obj, id_property)
            values = self.crm.validate(obj, item.get("properties"))
            planned.append((str(item.get("id", "")), id_property, values))
        results, errors, missing = [], [], []
        for key, id_property, values in planned:
            record = self.crm.find(obj, key, id_property)
            if record is None:
                missing.append(key)
                continue
            rejected = self._rejection(request, record.id, values)
            if rejected is not None:
                errors.append(rejected)
                continue
            self.crm.write(obj, record, values)
            results.append(self.crm.render(obj, record, list(values)))
        if missing:
            errors.insert(0, _not_found(obj, missing))
        return batch_response(200, unordered(results), errors, started, self.crm.now_ms())

    def _batch_upsert(self, request: Request, obj: ObjectType, body: dict[str, Any],
                      inputs: list[dict[str, Any]], started: int) -> Response:
        planned = []
        for item in inputs:
            id_property = item.get("idProperty")
            if not id_property:
                fail(400, "Invalid input JSON: upsert inputs need 'idProperty'")
            self.crm.check_unique(obj, str(id_property))
            values = self.crm.validate(obj, item.get("properties"))
            planned.append((str(item.get("id", "")), str(id_property), values))
        results, errors = [], []
        for key, id_property, values in planned:
            record = self.crm.find(obj, key, id_property)
            rejected = self._rejection(request, record.id if record else None, values)
            if rejected is not None:
                errors.append(rejected)
                continue
            if record is None:
                values = {id_property: key, **values}
                self.crm.check_new(obj, values)
                record = self.crm.create(obj, values)
                created = True
            else:
                self.crm.write(obj, record, values)
                created = False
            results.append({**self.crm.render(obj, record, list(values)), "new": created})
        return batch_response(200, unordered(results), errors, started, self.crm.now_ms())

    def _batch_archive(self, request: Request, obj: ObjectType, body: dict[str, Any],
                       inputs: list[dict[str, Any]], started: int) -> Response:
        for item in inputs:
            record = self.crm.stores[obj.name].get(str(item.get("id", "")))
            if record is not None:
                self.crm.archive(obj, record)
        return Response(204)

    # -- helpers --------------------------------------------------------------------------

    def _one(self, obj: ObjectType, key: str, id_property: str | None, *,
             archived: bool = False) -> Record:
        if archived and not id_property:
            record = self.crm.stores[obj.name].get(key, archived=True)
        else:
            record = self.crm.find(obj, key, id_property)
        if record is None:
            fail(404, f"Object not found.  objectId are usually numeric. ({key})",
                 category="OBJECT_NOT_FOUND", context={"id": [key]})
        return record

    def _rejection(self, request: Request, record_id: str | None,
                   values: dict[str, str | None]) -> dict[str, Any] | None:
        """Return a per-record VALIDATION_ERROR when a scripted ``reject_record`` fault hits."""
        if self.faults is None:
            return None
        rule = self.faults.record_rejection(request.method, request.path, record_id, set(values))
        if rule is None:
            return None
        code = rule.error_code or "INVALID_OPTION"
        name = rule.field if rule.field in values else next(iter(values), "")
        return {
            "status": "error",
            "category": "VALIDATION_ERROR",
            "message": f"Property values were not valid: {name} ({code})",
            "context": {"ids": [record_id]} if record_id else {"propertyName": [name]},
            "errors": [{"message": f"{name} was rejected", "code": code,
                        "context": {"propertyName": [name]}}],
            "links": {},
        }

    def _reject(self, request: Request, record_id: str | None,
                values: dict[str, str | None]) -> None:
        rejected = self._rejection(request, record_id, values)
        if rejected is not None:
            fail(400, rejected["message"], errors=rejected["errors"],
                 context=rejected["context"])


def json_object(request: Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """Return the request body as a JSON object; 400 (HubSpot-shaped) when it is not one."""
    try:
        body = request.json()
    except ValueError:
        fail(400, "Invalid input JSON on line 1: the body is not JSON")
    if body is None and allow_empty:
        return {}
    if not isinstance(body, dict):
        fail(400, "Invalid input JSON on line 1: expected an object")
    return body


def parse_limit(raw: str | None, *, default: int, maximum: int) -> int:
    """Return a ``limit`` query parameter; 400 when it is not an integer in 1..maximum."""
    if raw is None or raw == "":
        return default
    try:
        limit = int(raw)
    except ValueError:
        fail(400, f"limit must be an integer; got {raw!r}")
    if limit < 1 or limit > maximum:
        fail(400, f"limit must be between 1 and {maximum}; got {limit}",
             errors=[{"message": f"must be less than or equal to {maximum}",
                      "code": "INVALID_LIMIT", "in": "limit"}])
    return limit


def _not_found(obj: ObjectType, ids: list[str]) -> dict[str, Any]:
    return {
        "status": "error",
        "category": "OBJECT_NOT_FOUND",
        "message": f"Could not get some {obj.singular.upper()} objects, they may be deleted or "
        "not exist. Check that ids are valid.",
        "context": {"ids": ids},
        "errors": [],
        "links": {},
    }


def batch_response(ok: int, results: list[dict[str, Any]], errors: list[dict[str, Any]],
                    started: int, completed: int) -> Response:
    """Return a synchronous batch answer: ``ok`` without errors, else 207 with them."""
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "requestedAt": iso_ms(started),
        "startedAt": iso_ms(started),
        "completedAt": iso_ms(completed),
        "links": {},
    }
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
        return Response(207, body, {"X-HubSpot-Correlation-Id": correlation_id()})
    return Response(ok, body)
