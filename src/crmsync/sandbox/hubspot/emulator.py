"""The HubSpot CRM v3 emulator: routing, auth, rate limits, faults, admin extras, persistence.

:class:`HubSpotEmulator` implements the sandbox ``Emulator`` protocol; the data and rules live
in :mod:`.crm`, the endpoint handlers in :mod:`.objects` and :mod:`.meta`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from crmsync.sandbox.faults import FaultInjector, FaultRule
from crmsync.sandbox.hubspot.crm import HubSpotCrm, Settings
from crmsync.sandbox.hubspot.errors import (
    correlation_id,
    error_response,
    fail,
    rate_limit_response,
    retry_after_header,
)
from crmsync.sandbox.hubspot.meta import MetaApi
from crmsync.sandbox.hubspot.objects import ObjectsApi, json_object
from crmsync.sandbox.hubspot.properties import PropertyRegistry, iso_ms
from crmsync.sandbox.hubspot.ratelimit import RateLimits
from crmsync.sandbox.hubspot.store import Associations, Record
from crmsync.sandbox.seed import Org
from crmsync.sandbox.server import HttpError, Request, Response

DEFAULT_TOKEN = "pat-sandbox-hubspot"
_KEPT = frozenset({"type", "to", "op"})  # path parts that stay literal in folded endpoint names


@dataclass(frozen=True)
class Route:
    """One endpoint: method, path pattern, handler name and its folded name for accounting."""

    method: str
    pattern: re.Pattern[str]
    handler: str
    fold: str

    def folded(self, match: re.Match[str]) -> str:
        """Return ``METHOD /path`` with ids folded and object types kept."""
        path = self.fold
        for key, value in match.groupdict().items():
            if key in _KEPT:
                path = path.replace("{" + key + "}", value)
        return f"{self.method} {path.rstrip('/')}"


def _route(method: str, template: str, handler: str) -> Route:
    # {type}/{to}/{op} stay literal in the folded name; {id}/{to_id}/{name} fold to placeholders.
    regex = re.sub(r"\{(\w+)\}", lambda m: rf"(?P<{m.group(1)}>[^/]+)", template)
    regex = regex.replace("(?P<op>[^/]+)", "(?P<op>read|create|update|upsert|archive|"
                          "associate/default)")
    fold = re.sub(r"\{(\w+)\}", lambda m: m.group(0) if m.group(1) in _KEPT else
                  ("{id}" if "id" in m.group(1) else "{" + m.group(1) + "}"), template)
    return Route(method, re.compile(f"^{regex}/?$"), handler, fold)


ROUTES = (
    _route("POST", "/crm/v3/objects/{type}/search", "objects.search"),
    _route("POST", "/crm/v3/objects/{type}/merge", "objects.merge"),
    _route("POST", "/crm/v3/objects/{type}/batch/{op}", "objects.batch"),
    _route("GET", "/crm/v3/objects/{type}", "objects.list"),
    _route("POST", "/crm/v3/objects/{type}", "objects.create"),
    _route("GET", "/crm/v3/objects/{type}/{id}", "objects.get"),
    _route("PATCH", "/crm/v3/objects/{type}/{id}", "objects.update"),
    _route("DELETE", "/crm/v3/objects/{type}/{id}", "objects.archive"),
    _route("GET", "/crm/v3/properties/{type}/groups", "meta.groups"),
    _route("POST", "/crm/v3/properties/{type}/groups", "meta.create_group"),
    _route("GET", "/crm/v3/properties/{type}/groups/{name}", "meta.group"),
    _route("PATCH", "/crm/v3/properties/{type}/groups/{name}", "meta.update_group"),
    _route("DELETE", "/crm/v3/properties/{type}/groups/{name}", "meta.archive_group"),
    _route("POST", "/crm/v3/properties/{type}/batch/{op}", "meta.batch_properties"),
    _route("GET", "/crm/v3/properties/{type}", "meta.properties"),
    _route("POST", "/crm/v3/properties/{type}", "meta.create_property"),
    _route("GET", "/crm/v3/properties/{type}/{name}", "meta.property"),
    _route("PATCH", "/crm/v3/properties/{type}/{name}", "meta.update_property"),
    _route("DELETE", "/crm/v3/properties/{type}/{name}", "meta.archive_property"),
    _route("GET", "/crm/v3/owners", "meta.owners"),
    _route("GET", "/crm/v3/owners/{owner_id}", "meta.owner"),
    _route("PUT", "/crm/v4/objects/{type}/{from_id}/associations/default/{to}/{to_id}",
           "meta.associate_default"),
    _route("PUT", "/crm/v4/objects/{type}/{from_id}/associations/{to}/{to_id}", "meta.associate"),
    _route("DELETE", "/crm/v4/objects/{type}/{from_id}/associations/{to}/{to_id}",
           "meta.dissociate"),
    _route("GET", "/crm/v4/objects/{type}/{from_id}/associations/{to}", "meta.associations"),
    _route("POST", "/crm/v4/associations/{type}/{to}/batch/{op}", "meta.batch_associations"),
)
_READ_POSTS = re.compile(r"/(search|batch/read)/?$")
_SEARCH = re.compile(r"^/crm/v3/objects/[^/]+/search/?$")


class HubSpotEmulator:
    """A seeded HubSpot account behind the CRM v3/v4 API, for :class:`SandboxServer`.

    Args:
        org: Generated people, owners and deals to seed; None for an empty account.
        token: The private-app token clients must send as ``Authorization: Bearer``.
        clock: "Now" in epoch seconds; drives timestamps and rate-limit windows.
        rate_limits: Rate-limit knobs (default: a Free private app, limits on).
        search_lag_s: Seconds before a write becomes visible to search.
        lifecycle_forward_only: Ignore backward ``lifecyclestage`` writes, like HubSpot.

    Example:
        >>> from crmsync.sandbox.server import SandboxServer  # doctest: +SKIP
        >>> with SandboxServer(HubSpotEmulator(org)) as server: ...
    """

    crm = "hubspot"

    def __init__(
        self,
        org: Org | None = None,
        *,
        token: str = DEFAULT_TOKEN,
        clock: Callable[[], float] = time.time,
        rate_limits: RateLimits | None = None,
        search_lag_s: float = 0.0,
        lifecycle_forward_only: bool = True,
    ) -> None:
        self.token = token
        self.account = HubSpotCrm(
            clock=clock,
            rate_limits=rate_limits,
            settings=Settings(search_lag_s, lifecycle_forward_only),
        )
        if org is not None:
            self.account.seed(org)
        self.objects = ObjectsApi(self.account)
        self.meta = MetaApi(self.account)

    @property
    def faults(self) -> FaultInjector | None:
        """The server's fault injector (set by ``SandboxServer``), for per-record rejections."""
        return self.objects.faults

    @faults.setter
    def faults(self, injector: FaultInjector | None) -> None:
        self.objects.faults = injector

    @property
    def rate_limits(self) -> RateLimits:
        """The live rate-limit knobs (mutable)."""
        return self.account.limiter.limits

    @property
    def settings(self) -> Settings:
        """The live behaviour knobs (search lag, lifecycle rule)."""
        return self.account.settings

    # -- Emulator protocol ----------------------------------------------------------------

    def classify(self, request: Request) -> tuple[str, bool]:
        """Return (folded endpoint, whether it writes); search and batch reads are reads."""
        write = request.method != "GET" and not _READ_POSTS.search(request.path)
        found = self._match(request)
        if found is None:
            folded = re.sub(r"/\d+(?=/|$)", "/{id}", request.path.rstrip("/"))
            return f"{request.method} {folded}", write
        route, match = found
        return route.folded(match), write

    def handle(self, request: Request) -> Response:
        """Answer one API call: auth, rate limits, then the endpoint."""
        search = bool(_SEARCH.match(request.path)) and request.method == "POST"
        now = self.account.now_ms()
        try:
            self._authenticate(request)
            policy = self.account.limiter.admit(now, search=search)
            if policy is not None:
                wait = self.account.limiter.retry_after_s(now, policy)
                if not self.rate_limits.retry_after:
                    wait = None
                response = rate_limit_response(policy, wait)
                response.throttled = policy
            else:
                response = self._dispatch(request)
        except HttpError as error:
            response = error.response
        except Exception as error:  # noqa: BLE001 - answer like the service, not a dropped socket
            response = error_response(500, f"internal error: {type(error).__name__}",
                                      category="INTERNAL_ERROR")
        return self._decorate(response, search=search, now=now)

    def fault_response(self, rule: FaultRule, request: Request) -> Response:
        """Render a scripted fault in HubSpot's own shape."""
        search = bool(_SEARCH.match(request.path))
        now = self.account.now_ms()
        if rule.kind == "session_expired":
            response = error_response(
                401,
                "The OAuth token used to make this call expired.",
                category="EXPIRED_AUTHENTICATION",
            )
        elif rule.kind == "daily_limit":
            response = rate_limit_response("DAILY", rule.retry_after)
        elif rule.kind == "rate_limit" or (rule.status == 429):
            response = rate_limit_response(
                "SECONDLY" if search else "TEN_SECONDLY_ROLLING", rule.retry_after
            )
        else:
            status = rule.status or 500
            response = error_response(
                status,
                "internal error" if status >= 500 else f"scripted {status} from the sandbox",
                category=None,
            )
            if rule.error_code:
                response.body["errors"] = [{"message": rule.error_code, "code": rule.error_code}]
            if rule.retry_after is not None:
                response.headers["Retry-After"] = retry_after_header(rule.retry_after)
        return self._decorate(response, search=search, now=now)

    def admin(self, request: Request) -> Response | None:
        """``/_sandbox/records/{type}[/{id}]`` and ``/_sandbox/config``; None when unknown."""
        name = request.path[len("/_sandbox/") :].strip("/")
        try:
            if name == "config" and request.method == "GET":
                return Response(200, self._config())
            if name == "config" and request.method in ("POST", "PATCH", "PUT"):
                return Response(200, self.configure(json_object(request, allow_empty=True)))
            parts = name.split("/")
            if parts[0] == "records" and len(parts) == 2 and request.method == "GET":
                return Response(200, {"results": self.records(parts[1])})
            if parts[0] == "records" and len(parts) == 3 and request.method == "PATCH":
                body = json_object(request)
                return Response(200, self.user_edit(parts[1], parts[2], body.get("properties")))
        except HttpError as error:
            return error.response
        except ValueError as error:
            return Response(400, {"error": str(error)})
        return None

    def snapshot(self) -> dict[str, Any]:
        """Return every record, association, property, owner and knob as JSON-ready data."""
        crm = self.account
        return {
            "crm": "hubspot",
            "next_id": crm.next_id,
            "last_ms": crm.last_ms,
            "owners": crm.owners,
            "records": {
                name: [r.to_json() for r in store.records.values()]
                for name, store in crm.stores.items()
            },
            "associations": crm.associations.to_json(),
            "schema": {n: reg.snapshot() for n, reg in crm.registries.items()},
            "config": self._config(),
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Replace the account with data from :meth:`snapshot`."""
        crm = self.account
        crm.next_id = int(data["next_id"])
        crm.last_ms = int(data["last_ms"])
        crm.owners = list(data["owners"])
        for name, registry in crm.registries.items():
            if name in data["schema"]:
                fresh = PropertyRegistry(name)
                fresh.restore(data["schema"][name])
                registry.groups, registry.props = fresh.groups, fresh.props
        # Links first: replace_records hands them to the new searchers.
        crm.associations = Associations.from_json(data["associations"])
        crm.merged_into = {}  # replace_records rebuilds it from the survivors
        for name in list(crm.stores):
            crm.replace_records(
                name,
                (
                    Record(raw["id"], raw["properties"], raw["created_ms"], raw["updated_ms"],
                           raw["archived"], raw["archived_ms"], raw.get("history"),
                           bool(raw.get("history_missing")))
                    for raw in data["records"].get(name, [])
                ),
            )
        self.configure(data.get("config", {}))

    # -- admin extras ---------------------------------------------------------------------

    def records(self, type_name: str) -> list[dict[str, Any]]:
        """Return every record of a type with all properties and associations (tests, demo)."""
        obj = self.account.object_type(type_name)
        out = []
        for record in self.account.stores[obj.name].ids_after(None):
            linked: dict[str, list[dict[str, Any]]] = {}
            for (to_type, to_id), types in self.account.associations.edges.get(
                (obj.name, record.id), {}
            ).items():
                linked.setdefault(to_type, []).append({"id": to_id, "typeIds": sorted(types)})
            out.append(
                {
                    "id": record.id,
                    "properties": self.account.properties_of(obj, record),
                    "createdAt": iso_ms(record.created_ms),
                    "updatedAt": iso_ms(record.updated_ms),
                    "archived": record.archived,
                    "associations": linked,
                }
            )
        return out

    def user_edit(self, type_name: str, record_id: str, properties: Any) -> dict[str, Any]:
        """Change a record as a person in the HubSpot UI would (not counted as an API call)."""
        obj = self.account.object_type(type_name)
        record = self.account.stores[obj.name].get(record_id)
        if record is None:
            fail(404, f"Object not found: {record_id}", category="OBJECT_NOT_FOUND")
        values = self.account.validate(obj, properties, system=True)
        self.account.write(obj, record, values, user=True)
        return self.account.render(obj, record, list(values))

    def configure(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Apply ``{"rate_limits": {...}, "search_lag_seconds", "lifecycle_forward_only"}``."""
        if "rate_limits" in raw:
            limits = raw["rate_limits"]
            if not isinstance(limits, dict):
                raise ValueError("rate_limits must be an object")
            self.rate_limits.update(limits)
        if "search_lag_seconds" in raw:
            lag = raw["search_lag_seconds"]
            if not isinstance(lag, int | float) or lag < 0:
                raise ValueError("search_lag_seconds must be a non-negative number")
            self.settings.search_lag_s = float(lag)
        if "lifecycle_forward_only" in raw:
            self.settings.lifecycle_forward_only = bool(raw["lifecycle_forward_only"])
        if raw.get("reset_rate_limits"):
            self.account.limiter.reset()
        return self._config()

    # -- internals ------------------------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        return {"rate_limits": self.rate_limits.to_json(), **self.settings.to_json()}

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        if header != f"Bearer {self.token}":
            fail(
                401,
                "Authentication credentials not found. This API supports OAuth 2.0 "
                "authentication and you can find more details at "
                "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                category="INVALID_AUTHENTICATION",
            )

    def _match(self, request: Request) -> tuple[Route, re.Match[str]] | None:
        for route in ROUTES:
            if route.method != request.method:
                continue
            match = route.pattern.match(request.path)
            if match is not None:
                return route, match
        return None

    def _dispatch(self, request: Request) -> Response:
        found = self._match(request)
        if found is None:
            fail(404, f"No route for {request.method} {request.path}", category="OBJECT_NOT_FOUND")
        route, match = found
        owner_name, method = route.handler.split(".")
        handler = getattr(self.objects if owner_name == "objects" else self.meta, method)
        # Ids may be emails (idProperty=email), which arrive percent-encoded.
        args = [unquote(v) for v in match.groups() if v is not None]
        result: Response = handler(request, *args)
        return result

    def _decorate(self, response: Response, *, search: bool, now: int) -> Response:
        response.headers.setdefault("X-HubSpot-Correlation-Id", correlation_id())
        if not search:
            response.headers.update(self.account.limiter.headers(now))
        return response
