"""Properties, property groups, owners and v4 associations: everything that is not a record."""

from __future__ import annotations

from typing import Any

from crmsync.sandbox.hubspot.crm import HubSpotCrm
from crmsync.sandbox.hubspot.errors import fail
from crmsync.sandbox.hubspot.objects import (
    batch_response,
    decode_cursor,
    encode_cursor,
    flag,
    json_object,
    parse_limit,
)
from crmsync.sandbox.hubspot.schema import DEFAULT_ASSOCIATION, ObjectType
from crmsync.sandbox.server import Request, Response

MAX_OWNERS = 500
MAX_ASSOCIATIONS_PAGE = 500


class MetaApi:
    """Handlers for ``/crm/v3/properties``, ``/crm/v3/owners`` and ``/crm/v4`` associations."""

    def __init__(self, crm: HubSpotCrm) -> None:
        self.crm = crm

    # -- properties -----------------------------------------------------------------------

    def properties(self, request: Request, type_name: str) -> Response:
        """``GET /crm/v3/properties/{type}`` -> every property (no paging)."""
        registry = self.crm.registries[self.crm.object_type(type_name).name]
        archived = flag(request.param("archived"))
        return Response(
            200,
            {"results": [p.to_json() for p in registry.props.values() if p.archived == archived]},
        )

    def property(self, request: Request, type_name: str, name: str) -> Response:
        """``GET /crm/v3/properties/{type}/{name}``."""
        registry = self.crm.registries[self.crm.object_type(type_name).name]
        prop = registry.props.get(name)
        if prop is None or prop.archived != flag(request.param("archived")):
            fail(404, f"Unable to find property {name}", category="OBJECT_NOT_FOUND")
        return Response(200, prop.to_json())

    def create_property(self, request: Request, type_name: str) -> Response:
        """``POST /crm/v3/properties/{type}`` -> 201."""
        registry = self.crm.registries[self.crm.object_type(type_name).name]
        prop = registry.create(json_object(request), self.crm.now_ms())
        return Response(201, prop.to_json())

    def update_property(self, request: Request, type_name: str, name: str) -> Response:
        """``PATCH /crm/v3/properties/{type}/{name}`` -> 200 (options replaced as a whole)."""
        registry = self.crm.registries[self.crm.object_type(type_name).name]
        prop = registry.update(name, json_object(request), self.crm.now_ms())
        return Response(200, prop.to_json())

    def archive_property(self, request: Request, type_name: str, name: str) -> Response:
        """``DELETE /crm/v3/properties/{type}/{name}`` -> 204."""
        self.crm.registries[self.crm.object_type(type_name).name].archive(name)
        return Response(204)

    def batch_properties(self, request: Request, type_name: str, operation: str) -> Response:
        """``POST /crm/v3/properties/{type}/batch/{create|read|archive}``."""
        registry = self.crm.registries[self.crm.object_type(type_name).name]
        inputs = json_object(request).get("inputs")
        if not isinstance(inputs, list):
            fail(400, "Invalid input JSON: 'inputs' must be a list")
        started = self.crm.now_ms()
        if operation == "create":
            created = [registry.create(item, started).to_json() for item in inputs]
            return batch_response(201, created, [], started, self.crm.now_ms())
        if operation == "read":
            found, missing = [], []
            for item in inputs:
                prop = registry.get(str((item or {}).get("name", "")))
                if prop is None:
                    missing.append(str((item or {}).get("name", "")))
                else:
                    found.append(prop.to_json())
            errors = [
                {"status": "error", "category": "OBJECT_NOT_FOUND",
                 "message": f"Unable to find properties {missing}",
                 "context": {"names": missing}, "errors": [], "links": {}}
            ] if missing else []
            return batch_response(200, found, errors, started, self.crm.now_ms())
        if operation == "archive":
            for item in inputs:
                registry.archive(str((item or {}).get("name", "")))
            return Response(204)
        fail(404, f"Unknown batch operation {operation!r}", category="OBJECT_NOT_FOUND")

    def groups(self, request: Request, type_name: str) -> Response:
        """``GET /crm/v3/properties/{type}/groups``."""
        registry = self.crm.registries[self.crm.object_type(type_name).name]
        return Response(
            200, {"results": [g.to_json() for g in registry.groups.values() if not g.archived]}
        )

    def group(self, request: Request, type_name: str, name: str) -> Response:
        """``GET /crm/v3/properties/{type}/groups/{name}``."""
        registry = self.crm.registries[self.crm.object_type(type_name).name]
        group = registry.groups.get(name)
        if group is None or group.archived:
            fail(404, f"Unable to find property group {name}", category="OBJECT_NOT_FOUND")
        return Response(200, group.to_json())

    def create_group(self, request: Request, type_name: str) -> Response:
        """``POST /crm/v3/properties/{type}/groups`` -> 201; 409 when it exists."""
        registry = self.crm.registries[self.crm.object_type(type_name).name]
        return Response(201, registry.create_group(json_object(request)).to_json())

    def update_group(self, request: Request, type_name: str, name: str) -> Response:
        """``PATCH /crm/v3/properties/{type}/groups/{name}`` -> 200."""
        registry = self.crm.registries[self.crm.object_type(type_name).name]
        return Response(200, registry.update_group(name, json_object(request)).to_json())

    def archive_group(self, request: Request, type_name: str, name: str) -> Response:
        """``DELETE /crm/v3/properties/{type}/groups/{name}`` -> 204."""
        registry = self.crm.registries[self.crm.object_type(type_name).name]
        group = registry.groups.get(name)
        if group is None or group.archived:
            fail(404, f"Unable to find property group {name}", category="OBJECT_NOT_FOUND")
        group.archived = True
        return Response(204)

    # -- owners ---------------------------------------------------------------------------

    def owners(self, request: Request) -> Response:
        """``GET /crm/v3/owners/`` (limit ≤ 500, ``after``, ``email``, ``archived``)."""
        limit = parse_limit(request.param("limit"), default=100, maximum=MAX_OWNERS)
        email = (request.param("email") or "").lower()
        archived = flag(request.param("archived"))
        pool = [
            o for o in self.crm.owners
            if o["archived"] == archived and (not email or o["email"].lower() == email)
        ]
        after = request.param("after")
        start = decode_cursor(after) if after else 0
        page = pool[start : start + limit]
        body: dict[str, Any] = {"results": page}
        if start + limit < len(pool):
            cursor = encode_cursor(start + limit)
            host = request.headers.get("host", "api.hubapi.com")
            body["paging"] = {
                "next": {"after": cursor, "link": f"http://{host}/crm/v3/owners/?after={cursor}"}
            }
        return Response(200, body)

    def owner(self, request: Request, owner_id: str) -> Response:
        """``GET /crm/v3/owners/{ownerId}?idProperty=id|userId``."""
        by = request.param("idProperty") or "id"
        if by not in ("id", "userId"):
            fail(400, f"idProperty must be id or userId; got {by!r}")
        for owner in self.crm.owners:
            if str(owner[by]) == owner_id:
                return Response(200, owner)
        fail(404, f"Owner {owner_id} not found", category="OBJECT_NOT_FOUND")

    # -- associations v4 ------------------------------------------------------------------

    def associate_default(self, request: Request, from_type: str, from_id: str, to_type: str,
                          to_id: str) -> Response:
        """``PUT /crm/v4/objects/{from}/{id}/associations/default/{to}/{id}`` -> 200."""
        source, target = self._pair(from_type, from_id, to_type, to_id)
        type_id = DEFAULT_ASSOCIATION.get((source.name, target.name))
        if type_id is None:
            fail(400, f"No default association between {source.name} and {target.name}")
        started = self.crm.now_ms()
        self.crm.link(source.name, from_id, target.name, to_id, type_id)
        spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}
        result = {"from": {"id": from_id}, "to": {"id": to_id}, "associationSpec": spec}
        return batch_response(200, [result], [], started, self.crm.now_ms())

    def associate(self, request: Request, from_type: str, from_id: str, to_type: str,
                  to_id: str) -> Response:
        """``PUT /crm/v4/objects/{from}/{id}/associations/{to}/{id}`` with specs -> 201."""
        source, target = self._pair(from_type, from_id, to_type, to_id)
        try:
            specs = request.json()
        except ValueError:
            fail(400, "Invalid input JSON on line 1")
        if not isinstance(specs, list) or not specs:
            fail(400, "Invalid input JSON: expected a list of association specs")
        type_ids = [self.crm.association_type(source.name, target.name, s) for s in specs]
        for type_id in type_ids:
            self.crm.link(source.name, from_id, target.name, to_id, type_id)
        return Response(
            201,
            {
                "fromObjectTypeId": source.type_id,
                "fromObjectId": int(from_id),
                "toObjectTypeId": target.type_id,
                "toObjectId": int(to_id),
                "labels": [],
            },
        )

    def dissociate(self, request: Request, from_type: str, from_id: str, to_type: str,
                   to_id: str) -> Response:
        """``DELETE /crm/v4/objects/{from}/{id}/associations/{to}/{id}`` -> 204."""
        source = self.crm.object_type(from_type)
        target = self.crm.object_type(to_type)
        self.crm.associations.unlink(source.name, from_id, target.name, to_id)
        return Response(204)

    def associations(self, request: Request, from_type: str, from_id: str,
                     to_type: str) -> Response:
        """``GET /crm/v4/objects/{from}/{id}/associations/{to}`` (v4 ids are JSON numbers)."""
        source = self.crm.object_type(from_type)
        target = self.crm.object_type(to_type)
        if self.crm.stores[source.name].get(from_id) is None:
            fail(404, f"No {source.singular} with id {from_id}", category="OBJECT_NOT_FOUND")
        limit = parse_limit(request.param("limit"), default=MAX_ASSOCIATIONS_PAGE,
                       maximum=MAX_ASSOCIATIONS_PAGE)
        after = request.param("after")
        links = self.crm.associations.of(source.name, from_id, target.name)
        start = decode_cursor(after) if after else 0
        body: dict[str, Any] = {
            "results": [_multi(to_id, types) for to_id, types in links[start : start + limit]]
        }
        if start + limit < len(links):
            body["paging"] = {"next": {"after": encode_cursor(start + limit)}}
        return Response(200, body)

    def batch_associations(self, request: Request, from_type: str, to_type: str,
                           operation: str) -> Response:
        """``POST /crm/v4/associations/{from}/{to}/batch/{op}``.

        ``op`` is ``read``, ``create``, ``associate/default`` or ``archive``.
        """
        source = self.crm.object_type(from_type)
        target = self.crm.object_type(to_type)
        inputs = json_object(request).get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            fail(400, "Invalid input JSON: 'inputs' must be a list of objects")
        if len(inputs) > 1000:
            fail(400, "Batch input is limited to 1000 inputs")
        started = self.crm.now_ms()
        if operation == "read":
            results, errors = [], []
            for item in inputs:
                from_id = str(item.get("id") or "")
                links = self.crm.associations.of(source.name, from_id, target.name)
                if links:
                    results.append({"from": {"id": from_id},
                                    "to": [_multi(to_id, types) for to_id, types in links]})
                else:
                    errors.append({
                        "status": "error", "category": "OBJECT_NOT_FOUND",
                        "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                        "message": f"No {target.singular}s are associated with "
                                   f"{source.singular} {from_id}.",
                        "context": {"fromObjectId": [from_id]}, "errors": [], "links": {},
                    })
            return batch_response(200, results, errors, started, self.crm.now_ms())
        if operation == "archive":
            for item in inputs:
                from_id = str((item.get("from") or {}).get("id", ""))
                for to in item.get("to") or []:
                    self.crm.associations.unlink(source.name, from_id, target.name,
                                                 str((to or {}).get("id", "")))
            return Response(204)
        pairs = []
        for item in inputs:
            from_id = str((item.get("from") or {}).get("id", ""))
            to_id = str((item.get("to") or {}).get("id", ""))
            self._pair(from_type, from_id, to_type, to_id)
            if operation == "create":
                type_ids = [self.crm.association_type(source.name, target.name, s)
                            for s in item.get("types") or []]
                if not type_ids:
                    fail(400, "Invalid input JSON: 'types' is required")
            elif operation == "associate/default":
                type_ids = [DEFAULT_ASSOCIATION[(source.name, target.name)]]
            else:
                fail(404, f"Unknown batch operation {operation!r}", category="OBJECT_NOT_FOUND")
            pairs.append((from_id, to_id, type_ids))
        results = []
        for from_id, to_id, type_ids in pairs:
            for type_id in type_ids:
                self.crm.link(source.name, from_id, target.name, to_id, type_id)
            if operation == "create":
                results.append({"fromObjectTypeId": source.type_id, "fromObjectId": int(from_id),
                                "toObjectTypeId": target.type_id, "toObjectId": int(to_id),
                                "labels": []})
            else:
                spec = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_ids[0]}
                results.append({"from": {"id": from_id}, "to": {"id": to_id},
                                "associationSpec": spec})
        return batch_response(201 if operation == "create" else 200, results, [], started,
                               self.crm.now_ms())

    def _pair(self, from_type: str, from_id: str, to_type: str,
              to_id: str) -> tuple[ObjectType, ObjectType]:
        source = self.crm.object_type(from_type)
        target = self.crm.object_type(to_type)
        for obj, record_id in ((source, from_id), (target, to_id)):
            if self.crm.stores[obj.name].get(record_id) is None:
                fail(400, f"No {obj.singular} with id {record_id}",
                     errors=[{"message": f"{record_id} not found", "code": "INVALID_OBJECT_ID",
                              "context": {"id": [record_id]}}])
        if (source.name, target.name) not in DEFAULT_ASSOCIATION:
            fail(400, f"{source.name} cannot be associated with {target.name}")
        return source, target


def _multi(to_id: str, types: set[int]) -> dict[str, Any]:
    return {
        "toObjectId": int(to_id),
        "associationTypes": [
            {"category": "HUBSPOT_DEFINED", "typeId": t, "label": None} for t in sorted(types)
        ],
    }


