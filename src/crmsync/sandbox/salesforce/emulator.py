"""The Salesforce REST API emulator: auth, versions, limits, routing, faults, admin, state.

One :class:`SalesforceEmulator` is one org. :class:`~crmsync.sandbox.server.SandboxServer`
does the HTTP; this class turns requests into Salesforce-shaped responses (CRM_WIRE_CONTRACT.md
§2) and delegates to one module per API area.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from crmsync.sandbox.faults import FaultInjector, FaultRule
from crmsync.sandbox.salesforce import bulk1, login
from crmsync.sandbox.salesforce.bulk2 import Bulk2
from crmsync.sandbox.salesforce.composite import Collections
from crmsync.sandbox.salesforce.composite_api import CompositeApi
from crmsync.sandbox.salesforce.dml import RequestError, SaveError, Writer
from crmsync.sandbox.salesforce.ids import looks_like_id, normalize_id
from crmsync.sandbox.salesforce.limits import DailyUsage
from crmsync.sandbox.salesforce.paging import QueryService
from crmsync.sandbox.salesforce.responses import error, fail, not_found
from crmsync.sandbox.salesforce.rest import SObjectRoutes, render_record
from crmsync.sandbox.salesforce.schema import standard_schema
from crmsync.sandbox.salesforce.search import SearchApi
from crmsync.sandbox.salesforce.seeding import seed_store
from crmsync.sandbox.salesforce.store import Store
from crmsync.sandbox.salesforce.tooling import Tooling
from crmsync.sandbox.salesforce.values import from_snapshot, to_json, truncate_ms
from crmsync.sandbox.seed import Org
from crmsync.sandbox.server import HttpError, Request, Response

_VERSION_PATH = re.compile(r"^/services/data/v(\d+\.\d)(/.*)?$")
_SOBJECT_LEAVES = ("", "describe", "updated", "deleted")
_SOAP_LOGIN = re.compile(r"^/services/Soap/u/(\d+\.\d)/?$")
_IDENTITY = re.compile(r"^/id/(00D\w{12,15})/(005\w{12,15})/?$")
_STATUS_CODES = {
    400: ("BAD_REQUEST", "Bad request"),
    401: ("INVALID_SESSION_ID", "Session expired or invalid"),
    403: ("INSUFFICIENT_ACCESS", "insufficient access rights on object id"),
    404: ("NOT_FOUND", "The requested resource does not exist"),
    409: ("CONFLICT", "Conflict"),
    412: ("PRECONDITION_FAILED", "Precondition failed"),
    429: ("REQUEST_LIMIT_EXCEEDED", "Too many requests"),
    500: ("UNKNOWN_EXCEPTION", "An unexpected error occurred. Please include this ErrorId if you "
          "contact support: 1459316471-11473 (-1541391478)"),
    502: ("SERVER_UNAVAILABLE", "Bad gateway"),
    503: ("SERVER_UNAVAILABLE", "Server temporarily unavailable"),
}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: The connected app named in ``per-app-api-usage``.
APP_NAME = "crmsync_sandbox"


def release_label(version: str) -> str:
    """The release name of an API version: 59.0 is "Winter '24", three releases a year."""
    steps = int(float(version)) - 59
    season = ("Winter", "Spring", "Summer")[steps % 3]
    return f"{season} '{24 + steps // 3:02d}"


def _system_clock() -> datetime:
    return datetime.fromtimestamp(time.time(), UTC)


@dataclass
class SandboxConfig:
    """Knobs set with ``POST /_sandbox/config``.

    Attributes:
        page_size: Force query pages no larger than this (clients must not assume sizes).
        daily_limit: Daily API request allocation (``DailyApiRequests.Max``).
        locator_ttl_s: How long a query locator lives.
        bulk_polls: Job-info polls a Bulk 2.0 job stays ``InProgress`` before ``JobComplete``.
        stamp_resolution_ms: Round write timestamps down to this many ms, so that writes close
            together share a ``SystemModstamp`` (ties a sync's watermark must survive).
        per_app_limit: The connected app's own daily allowance, sent as a second part of
            ``Sforce-Limit-Info`` (``per-app-api-usage=n/max(appName=...)``) as real orgs with
            per-app limits do (reported, not enforced); None sends ``api-usage`` alone.
    """

    page_size: int | None = None
    daily_limit: int = 15000
    locator_ttl_s: float = 2 * 24 * 3600
    bulk_polls: int = 0
    stamp_resolution_ms: int = 1
    per_app_limit: int | None = 5000


class SalesforceEmulator:
    """A Salesforce org behind the REST, Tooling and Bulk 2.0 APIs, in memory.

    Args:
        org: Seed data; None gives an empty org (an integration user only).
        token: The session id clients send as ``Authorization: Bearer``.
        clock: Returns "now" (aware UTC datetime, or epoch seconds); injected so tests are
            deterministic.
        api_version: Newest API version served; older ones from 31.0 also answer.
        username: With ``password``, the only credentials SOAP login accepts (any when None).
        password: Password plus security token, as the client concatenates them.
    """

    crm = "salesforce"

    def __init__(
        self,
        org: Org | None = None,
        *,
        token: str | None = None,
        clock: Callable[[], datetime | float] | None = None,
        api_version: str = "59.0",
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.api_version = api_version
        self.clock = clock or _system_clock
        self.faults: FaultInjector | None = None  # set by SandboxServer
        self.config = SandboxConfig()
        self.username, self.password = username, password
        self._last_stamp: datetime | None = None
        self._logins = 0
        self.usage = DailyUsage()
        self._build(org)
        self.token = token or f"{self.org_id}!AQ0AQ.sandbox-session"
        self.tokens = {self.token}

    def _build(self, org: Org | None) -> None:
        self.store = Store(standard_schema())
        self.tooling = Tooling(self)
        if org is not None:
            self.api_user_id = seed_store(self.store, org)
        else:
            self.api_user_id = _empty_org(self.store, self.now())
        self.org_id = next(iter(self.store.tables["Organization"]))
        # Writes never stamp earlier than the newest seeded row, whatever the clock says.
        self._last_stamp = max(
            (rec["SystemModstamp"] for table in self.store.tables.values()
             for rec in table.values()),
            default=None,
        )
        self.writer = Writer(self.store, self.stamp, self.api_user_id)
        self.queries = QueryService(self.store)
        self.sobjects = SObjectRoutes(self)
        self.collections = Collections(self)
        self.composite = CompositeApi(self)
        self.search = SearchApi(self)
        self.bulk = Bulk2(self)
        self.bulk1 = bulk1.Bulk1(self)
        self._apply_config()

    # -- clock -------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The emulator's current time (UTC, millisecond precision)."""
        value: Any = self.clock()
        if isinstance(value, int | float):  # clocks in epoch seconds are accepted too
            value = datetime.fromtimestamp(value, UTC)
        return truncate_ms(value)

    def stamp(self) -> datetime:
        """A write timestamp: now, but never earlier than the previous one (ties allowed)."""
        moment = self.now()
        resolution = max(1, self.config.stamp_resolution_ms)
        if resolution > 1:
            ms = (moment - _EPOCH) // timedelta(milliseconds=1)
            moment = _EPOCH + timedelta(milliseconds=ms // resolution * resolution)
        if self._last_stamp is not None and moment < self._last_stamp:
            moment = self._last_stamp
        self._last_stamp = moment
        return moment

    # -- Emulator protocol -------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Answer one API call (auth, daily limit and ``Sforce-Limit-Info`` included)."""
        path = request.path
        if path.rstrip("/") == "/services/data":
            if request.method != "GET":
                raise fail(405, "METHOD_NOT_ALLOWED", "HTTP Method not allowed for this resource")
            return Response(200, self.versions())
        m = _SOAP_LOGIN.match(path)
        if m and request.method == "POST":
            return self._login(request, m.group(1))
        if path.startswith("/services/async/"):
            answer = bulk1.route_async(self, request)
            if answer is not None:
                self.usage.record(self.now())
                answer.headers.setdefault("Sforce-Limit-Info", self.limit_info())
                return answer
        m = _IDENTITY.match(path)
        if m and request.method == "GET":
            if not self._authorised(request):
                return error(403, "Bad_OAuth_Token", "Bad_OAuth_Token")
            if (m.group(1), m.group(2)) != (self.org_id, self.api_user_id):
                return error(404, "NOT_FOUND", "The requested resource does not exist")
            return Response(200, login.identity(self, request.headers.get("host", "127.0.0.1")))
        m = _VERSION_PATH.match(path)
        if m is None or m.group(1) not in self.supported_versions():
            return error(404, "NOT_FOUND", "The requested resource does not exist")
        version, rest = m.group(1), m.group(2) or "/"
        if not self._authorised(request):
            return error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        now = self.now()
        if self.usage.used(now) >= self.config.daily_limit:
            response = error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            response.throttled = "DailyApiRequests"
        else:
            self.usage.record(now)
            try:
                response = self.route(request, [s for s in rest.split("/") if s], version)
            except HttpError as http_error:
                response = http_error.response
            except RequestError as req_error:
                response = error(req_error.status, req_error.error_code, req_error.message)
        response.headers.setdefault("Sforce-Limit-Info", self.limit_info())
        return response

    def classify(self, request: Request) -> tuple[str, bool]:
        """Fold ids out of the path and say whether the call writes."""
        segs = request.path.split("/")
        folded = list(segs)
        for i, seg in enumerate(segs):
            prev = segs[i - 1] if i else ""
            prev2 = segs[i - 2] if i > 1 else ""
            nxt = segs[i + 1] if i + 1 < len(segs) else ""
            if prev in ("query", "queryAll") and seg.startswith("0r8"):
                folded[i] = "{locator}"
            elif ((prev in ("query", "ingest") and prev2 == "jobs" and seg)
                  or (seg and looks_like_id(seg) and prev not in ("sobjects", "composite"))):
                folded[i] = "{id}"  # a Bulk job's id, or a record's
            elif prev2 == "sobjects" and prev and seg not in _SOBJECT_LEAVES and nxt:
                folded[i + 1] = "{value}"  # /sobjects/Task/Ext__c/<value>
        endpoint = f"{request.method} {'/'.join(folded)}"
        return endpoint, self._writes(request)

    def _writes(self, request: Request) -> bool:
        if request.method not in ("POST", "PATCH", "PUT", "DELETE"):
            return False
        path = request.path
        if "/Soap/u/" in path or "/jobs/query" in path:
            return False
        # Retrieve-by-POST and tooling queries read.
        return not (request.method == "POST"
                    and re.search(r"/composite/sobjects/[^/]+/?$", path))

    def fault_response(self, rule: FaultRule, request: Request) -> Response:
        """Render a scripted fault as Salesforce would answer it."""
        if rule.kind == "session_expired":
            response = error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        elif rule.kind == "daily_limit":
            response = error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        elif rule.kind == "rate_limit":
            response = error(
                rule.status or 403, "REQUEST_LIMIT_EXCEEDED",
                "ConcurrentRequests (Concurrent API Requests) Limit exceeded.",
            )
        else:
            status = rule.status or 500
            code, message = _STATUS_CODES.get(status, _STATUS_CODES[500])
            response = error(status, rule.error_code or code, message)
        if rule.retry_after is not None:
            seconds = rule.retry_after
            whole = float(seconds).is_integer()
            response.headers["Retry-After"] = str(int(seconds)) if whole else str(seconds)
        if request.path.startswith("/services/data/v"):
            response.headers["Sforce-Limit-Info"] = self.limit_info()
        return response

    def snapshot(self) -> dict[str, Any]:
        """All data as JSON-ready dicts (records, custom fields, id counters, API usage)."""
        records: dict[str, list[dict[str, Any]]] = {}
        for obj in self.store.schema.values():
            records[obj.name] = [
                # Nulls are left out: they are most of a seeded row; restore reads absent as null.
                {
                    f.name: to_json(f.type, rec[f.name])
                    for f in obj.fields.values()
                    if rec.get(f.name) is not None
                }
                for rec in self.store.rows(obj.name)
            ]
        return {
            "format": "crmsync-sandbox-salesforce/1",
            "custom_fields": self.tooling.snapshot(),
            "records": records,
            "sequences": self.store.sequences(),
            "api_usage": self.api_usage,
            "last_stamp": to_json("datetime", self._last_stamp),
        }

    def restore(self, data: Mapping[str, Any]) -> None:
        """Replace all data with a :meth:`snapshot`."""
        self.store = Store(standard_schema())
        self.tooling = Tooling(self)
        self.tooling.restore(data.get("custom_fields", []))
        for obj_name, rows in data.get("records", {}).items():
            obj = self.store.object(obj_name)
            if obj is None:
                continue
            for raw in rows:
                rec = {f.name: from_snapshot(f.type, raw.get(f.name)) for f in obj.fields.values()}
                self.store.put(obj.name, rec)
        self.store.set_sequences({k: int(v) for k, v in data.get("sequences", {}).items()})
        self.usage.set(int(data.get("api_usage", 0)), self.now())
        last = data.get("last_stamp")
        self._last_stamp = from_snapshot("datetime", last) if last else None
        users = [u for u in self.store.rows("User") if u.get("Alias") == "integ"]
        self.api_user_id = users[0]["Id"] if users else next(iter(self.store.tables["User"]), "")
        self.org_id = next(iter(self.store.tables["Organization"]), self.org_id)
        self.writer = Writer(self.store, self.stamp, self.api_user_id)
        self.queries = QueryService(self.store)
        self.bulk = Bulk2(self)
        self._apply_config()

    def admin(self, request: Request) -> Response | None:
        """``/_sandbox/records/{SObject}[/{id}]`` and ``/_sandbox/config``."""
        segs = [s for s in request.path.split("/") if s][1:]
        if segs == ["config"]:
            if request.method in ("POST", "PUT", "PATCH"):
                return self._set_config(request)
            if request.method == "GET":
                return Response(200, self._config_json())
        if segs and segs[0] == "records":
            try:
                return self._admin_records(request, segs[1:])
            except HttpError as http_error:
                return http_error.response
            except RequestError as req_error:
                return error(req_error.status, req_error.error_code, req_error.message)
        return None

    # -- helpers used by the API modules -----------------------------------------------------

    def rejection(
        self, request: Request, record_id: str | None, fields: set[str]
    ) -> SaveError | None:
        """A scripted ``reject_record`` fault for this record's write, as a SaveError."""
        if self.faults is None:
            return None
        rule = self.faults.record_rejection(request.method, request.path, record_id, fields)
        if rule is None:
            return None
        code = rule.error_code or "UNABLE_TO_LOCK_ROW"
        if code == "UNABLE_TO_LOCK_ROW":
            message = "unable to obtain exclusive access to this record or 1 records: " + (
                record_id or ""
            )
        else:
            message = f"{code.replace('_', ' ').lower()}"
        hit = [rule.field] if rule.field and rule.field in fields else []
        return SaveError(code, message, hit)

    def versions(self) -> list[dict[str, str]]:
        """``GET /services/data/``."""
        return [
            {"label": release_label(v), "url": f"/services/data/v{v}", "version": v}
            for v in self.supported_versions()
        ]

    def identity_url(self, request: Request) -> str:
        """The identity URL of the API user (``/id/{org}/{user}`` on this emulator)."""
        host = request.headers.get("host", "127.0.0.1")
        return f"http://{host}/id/{self.org_id}/{self.api_user_id}"

    def supported_versions(self) -> list[str]:
        """Every ``NN.0`` from 31.0 up to the configured version."""
        top = int(float(self.api_version))
        return [f"{n}.0" for n in range(31, top + 1)]

    @property
    def api_usage(self) -> int:
        """Counted API calls in the last 24 hours."""
        return self.usage.used(self.now())

    def limit_info(self) -> str:
        """The ``Sforce-Limit-Info`` value (``api-usage=`` first, then the per-app part)."""
        used = self.api_usage
        info = f"api-usage={used}/{self.config.daily_limit}"
        if self.config.per_app_limit is not None:
            # One connected app makes every call here, so its usage is the org's.
            info += f"; per-app-api-usage={used}/{self.config.per_app_limit}(appName={APP_NAME})"
        return info

    # -- routing -----------------------------------------------------------------------------

    def route(self, request: Request, segs: list[str], version: str) -> Response:
        """Answer one authorised, counted call to ``/services/data/v{version}/{segs}``."""
        head = segs[0] if segs else ""
        if not segs:
            base = f"/services/data/v{version}"
            resources = {name: f"{base}/{name}" for name in (
                "tooling", "query", "queryAll", "sobjects", "composite", "limits", "jobs",
                "search", "recent")}
            resources["identity"] = self.identity_url(request)
            return Response(200, resources)
        if head in ("query", "queryAll") and request.method == "GET":
            return self._query(request, head, segs[1:], version)
        if head == "sobjects":
            return self.sobjects.handle(request, segs[1:], version)
        if head == "composite" and len(segs) >= 2 and segs[1] == "sobjects":
            return self.collections.handle(request, segs[2:], version)
        if head == "composite":
            return self.composite.handle(request, segs[1:], version)
        if head == "limits" and len(segs) == 1 and request.method == "GET":
            return Response(200, self._limits())
        if head == "tooling":
            return self.tooling.handle(request, segs[1:], version)
        if head == "search" and len(segs) == 1 and request.method == "GET":
            return self.search.search(request, version)
        if head == "recent" and len(segs) == 1 and request.method == "GET":
            return self.search.recent(request, version)
        if head == "jobs" and len(segs) >= 2:
            return self.bulk.handle(request, segs[1:], version)
        raise not_found()

    def _query(self, request: Request, kind: str, rest: list[str], version: str) -> Response:
        now = self.now()
        if rest:
            if len(rest) != 1:
                raise not_found()
            body = self.queries.next_page(
                rest[0], headers=request.headers, now=now, version=version
            )
        else:
            body = self.queries.first_page(
                request.param("q"), include_deleted=kind == "queryAll", headers=request.headers,
                now=now, version=version,
            )
        return Response(200, body)

    def _limits(self) -> dict[str, Any]:
        used = self.api_usage
        daily = self.config.daily_limit
        jobs = self.bulk.query_jobs_today()
        return {
            "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
            "DailyApiRequests": {"Max": daily, "Remaining": max(0, daily - used)},
            "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": max(0, 10000 - jobs)},
            "DataStorageMB": {"Max": 5, "Remaining": 5},
            "FileStorageMB": {"Max": 20, "Remaining": 20},
            "HourlyTimeBasedWorkflow": {"Max": 1000, "Remaining": 1000},
            "SingleEmail": {"Max": 15, "Remaining": 15},
        }

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        return scheme.lower() in ("bearer", "oauth") and token.strip() in self.tokens

    def _login(self, request: Request, version: str) -> Response:
        creds = login.read_credentials(request)
        if creds is None:
            return login.login_fault()
        username, password = creds
        if self.username is not None and (username != self.username or password != self.password):
            return login.login_fault()
        self._logins += 1
        session = f"{self.org_id}!AQ0AQ.login-{self._logins:06d}"
        self.tokens.add(session)
        host = request.headers.get("host", "127.0.0.1")
        return login.login_success(session, host, version, self.org_id, self.api_user_id, username)

    # -- admin -------------------------------------------------------------------------------

    def _admin_records(self, request: Request, segs: list[str]) -> Response | None:
        if not segs:
            return None
        obj = self.writer.object(segs[0])
        if len(segs) == 1 and request.method == "GET":
            rows = [render_record(obj, rec, self.api_version) for rec in self.store.rows(obj.name)]
            return Response(200, {"totalSize": len(rows), "records": rows})
        if len(segs) == 2 and request.method == "GET":
            rec = self.store.get(obj.name, normalize_id(segs[1]) or "")
            if rec is None:
                raise not_found()
            return Response(200, render_record(obj, rec, self.api_version))
        if len(segs) == 2 and request.method == "PATCH":
            body = request.json()
            if not isinstance(body, dict):
                raise fail(400, "JSON_PARSER_ERROR", "a JSON object of field values is required")
            values = self.writer.parse_values(obj, body)
            errors = self.writer.update(obj, segs[1], values, system=True)
            if errors:
                return Response(400, [e.to_rest() for e in errors])
            rec = self.store.get(obj.name, normalize_id(segs[1]) or "")
            assert rec is not None
            return Response(200, render_record(obj, rec, self.api_version))
        return None

    def _set_config(self, request: Request) -> Response:
        try:
            body = request.json() or {}
            return Response(200, self.configure(body))
        except ValueError as problem:
            return Response(400, {"error": str(problem)})

    def configure(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Apply ``/_sandbox/config`` knobs (any subset); return them all.

        Keys: ``page_size``, ``daily_limit`` (the daily API allowance,
        ``DailyApiRequests.Max``; a call past it answers 403 ``REQUEST_LIMIT_EXCEEDED`` and is
        counted under ``rate_limited`` in ``/_sandbox/calls``), ``api_usage`` (calls already
        used in the rolling 24 hours), ``locator_ttl_s``, ``bulk_polls``,
        ``stamp_resolution_ms``. Raises ``ValueError`` for anything else.
        """
        if not isinstance(body, Mapping):
            raise ValueError("config must be a JSON object")
        unknown = set(body) - {
            "page_size", "daily_limit", "locator_ttl_s", "bulk_polls", "api_usage",
            "stamp_resolution_ms", "per_app_limit",
        }
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        try:
            if "page_size" in body:
                self.config.page_size = (None if body["page_size"] is None
                                         else int(body["page_size"]))
            if "daily_limit" in body:
                self.config.daily_limit = int(body["daily_limit"])
            if "locator_ttl_s" in body:
                self.config.locator_ttl_s = float(body["locator_ttl_s"])
            if "bulk_polls" in body:
                self.config.bulk_polls = int(body["bulk_polls"])
            if "stamp_resolution_ms" in body:
                self.config.stamp_resolution_ms = max(1, int(body["stamp_resolution_ms"]))
            if "per_app_limit" in body:
                limit = body["per_app_limit"]
                self.config.per_app_limit = None if limit is None else int(limit)
            if "api_usage" in body:
                self.usage.set(int(body["api_usage"]), self.now())
        except TypeError as problem:
            raise ValueError(f"bad config value: {problem}") from None
        self._apply_config()
        return self._config_json()

    def _apply_config(self) -> None:
        self.queries.page_size = self.config.page_size
        self.queries.locator_ttl = timedelta(seconds=self.config.locator_ttl_s)

    def _config_json(self) -> dict[str, Any]:
        return {
            "page_size": self.config.page_size,
            "daily_limit": self.config.daily_limit,
            "locator_ttl_s": self.config.locator_ttl_s,
            "bulk_polls": self.config.bulk_polls,
            "stamp_resolution_ms": self.config.stamp_resolution_ms,
            "per_app_limit": self.config.per_app_limit,
            "api_usage": self.api_usage,
        }


def _empty_org(store: Store, now: datetime) -> str:
    """An org with only its Organization row and the integration user."""
    from crmsync.sandbox.seed import Org as _Org

    return seed_store(store, _Org(owners=[], people=[], anchor=now))


__all__ = ["SalesforceEmulator", "SandboxConfig", "release_label"]
