"""The Salesforce connector: Lead and Contact streams over simple-salesforce's REST client.

Reads are SOQL queries ordered by ``SystemModstamp, Id`` and paged with ``query``/``query_more``
at the largest page size (2000); a page is turned into :class:`~crmsync.model.Contact` values and
handed on before the next one is fetched, so memory stays flat however large the org is.
Opportunities are rolled up into the deal facts with as few queries as possible. Writes use sObject
Collections (200 records a call, ``allOrNone: false``, per-record results); tasks are upserted by
crmsync's external-id key, which makes a retried create harmless.

Every HTTP call goes through :func:`crmsync.retry.retrying` (simple-salesforce never retries) and
:func:`_translated`, the one place vendor errors become crmsync errors. Messages carry an HTTP
status and an error code only: simple-salesforce puts response bodies (contact data) in its
exceptions' ``str``, so those stay in ``__cause__``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote_plus, urlsplit

import requests
from tenacity import Retrying
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceRefusedRequest,
)

from crmsync.connectors.base import ApiLimits, Page, RecordUpdate, SetupReport, WriteResult, chunks
from crmsync.connectors.fieldmap import FieldMap, coerce, get_field, rollup_deals
from crmsync.connectors.transport import HttpsToHttpAdapter, salesforce_session
from crmsync.errors import (
    AuthError,
    ConfigError,
    CrmRequestError,
    CrmsyncError,
    QuotaExhausted,
    TransientError,
)
from crmsync.model import Contact, TaskClose, TaskCreate
from crmsync.retry import RetryPolicy, retrying

log = logging.getLogger("crmsync.connectors.salesforce")

T = TypeVar("T")

#: Largest query page Salesforce serves (``Sforce-Query-Options: batchSize``).
QUERY_PAGE = 2000
#: Records per sObject Collections call.
COLLECTION_BATCH = 200
#: Keep request URLs (SOQL travels in the query string) under this many characters.
MAX_URL_CHARS = 16_000
#: Per-record error codes that may succeed when the same write is sent again later.
RETRYABLE_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "ALL_OR_NONE_OPERATION_ROLLED_BACK", "REQUEST_RUNNING_TOO_LONG",
     "SERVER_UNAVAILABLE", "TXN_SECURITY_METERING_ERROR"}
)
#: Per-record errors re-sent within the same call (momentary lock contention).
_LOCK_CODES = frozenset({"UNABLE_TO_LOCK_ROW"})
#: How many times records that failed on a row lock are re-sent before being reported.
LOCK_RETRIES = 2
#: Request-level error codes worth retrying even though they come as 400s.
_TRANSIENT_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"})


# -- authentication ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SalesforceAuth:
    """How to authenticate to one Salesforce org. Secrets never appear in ``repr``.

    Build one with :meth:`with_session`, :meth:`with_password` or :meth:`with_jwt`.

    Attributes:
        mode: ``session`` (an existing access token), ``password`` (username, password and
            security token; SOAP login) or ``jwt`` (OAuth 2.0 JWT bearer flow).
        instance_url: The org's URL (``https://acme.my.salesforce.com``), or the sandbox's
            ``http://127.0.0.1:PORT``. Required for ``session``; for the other modes it only
            matters when it is ``http://`` (login is then sent to the sandbox too).
        session_id: Access token (``session`` mode).
        username: Login user (``password``/``jwt``).
        password: Password (``password``).
        security_token: Security token appended to the password (``password``).
        consumer_key: Connected app's consumer key (``jwt``).
        private_key_file: PEM file the JWT is signed with (``jwt``).
        domain: Login domain: ``login``, ``test`` or a My Domain prefix.
    """

    mode: Literal["session", "password", "jwt"]
    instance_url: str | None = None
    session_id: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    security_token: str | None = field(default=None, repr=False)
    consumer_key: str | None = field(default=None, repr=False)
    private_key_file: str | None = None
    domain: str = "login"

    @classmethod
    def with_session(cls, instance_url: str, session_id: str) -> SalesforceAuth:
        """Use an existing access token for ``instance_url`` (no login call; never refreshed)."""
        return cls("session", instance_url=instance_url, session_id=session_id)

    @classmethod
    def with_password(
        cls, username: str, password: str, security_token: str, *, domain: str = "login",
        instance_url: str | None = None,
    ) -> SalesforceAuth:
        """Log in with username, password and security token (re-login on expiry)."""
        return cls("password", instance_url=instance_url, username=username, password=password,
                   security_token=security_token, domain=domain)

    @classmethod
    def with_jwt(
        cls, username: str, consumer_key: str, private_key_file: str, *, domain: str = "login",
        instance_url: str | None = None,
    ) -> SalesforceAuth:
        """Use the OAuth 2.0 JWT bearer flow of a connected app (re-login on expiry)."""
        return cls("jwt", instance_url=instance_url, username=username,
                   consumer_key=consumer_key, private_key_file=private_key_file, domain=domain)

    def validate(self) -> None:
        """Raise ConfigError naming every setting this mode needs and lacks (never values)."""
        needed = {
            "session": ("instance_url", "session_id"),
            "password": ("username", "password", "security_token"),
            "jwt": ("username", "consumer_key", "private_key_file"),
        }.get(self.mode)
        if needed is None:
            raise ConfigError(f"unknown Salesforce auth mode {self.mode!r}: "
                              "use session, password or jwt")
        missing = [name for name in needed if not getattr(self, name)]
        if missing:
            raise ConfigError(f"Salesforce {self.mode} auth needs {', '.join(missing)}")
        if self.mode == "jwt" and not os.path.isfile(str(self.private_key_file)):
            raise ConfigError(f"Salesforce jwt auth: private key file {self.private_key_file} "
                              "does not exist")

    def connect(
        self, api_version: str, *, pool_size: int = 10,
        on_response: Callable[..., Any] | None = None,
    ) -> Salesforce:
        """Return a simple-salesforce client (logging in for ``password``/``jwt``).

        Args:
            api_version: The REST API version to pin.
            pool_size: HTTP connections kept per host.
            on_response: A ``requests`` response hook, installed before any login call.
        """
        self.validate()
        base = self.instance_url or f"https://{self.domain}.salesforce.com"
        session, instance_url = salesforce_session(base, pool_size=pool_size)
        if on_response is not None:
            session.hooks["response"].append(on_response)
        if self.mode == "session":
            return Salesforce(instance_url=instance_url, session_id=self.session_id,
                              session=session, version=api_version)
        if urlsplit(base).scheme == "http":
            # The sandbox answers the login flows too: send the login host's traffic there.
            session.mount(f"https://{self.domain}.salesforce.com/",
                          _RedirectAdapter(urlsplit(base).netloc))
        if self.mode == "password":
            return Salesforce(username=self.username, password=self.password,
                              security_token=self.security_token, domain=self.domain,
                              session=session, version=api_version)
        return Salesforce(username=self.username, consumer_key=self.consumer_key,
                          privatekey_file=self.private_key_file, domain=self.domain,
                          session=session, version=api_version)


class _RedirectAdapter(HttpsToHttpAdapter):
    """Send ``https://<login host>/...`` to ``http://<netloc>/...`` (sandbox logins only)."""

    def __init__(self, netloc: str) -> None:
        super().__init__()
        self.netloc = netloc

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Rewrite scheme and host, then send."""
        if request.url:
            parts = urlsplit(request.url)
            request.url = parts._replace(scheme="http", netloc=self.netloc).geturl()
        return super().send(request, **kwargs)


# -- error translation ------------------------------------------------------------------------


def _first_error(content: Any) -> tuple[str, str]:
    """Return (errorCode, message) from a Salesforce error body (a JSON list), best effort."""
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        first = content[0]
        return str(first.get("errorCode") or first.get("statusCode") or ""), str(
            first.get("message") or "")
    if isinstance(content, Mapping):
        return str(content.get("errorCode") or content.get("error") or ""), str(
            content.get("message") or content.get("error_description") or "")
    return "", ""


def _error_code(saved: Mapping[str, Any]) -> str | None:
    """Return the first ``statusCode`` of a failed SaveResult (None when it succeeded)."""
    if saved.get("success"):
        return None
    errors = saved.get("errors") or [{}]
    first = errors[0] if isinstance(errors[0], Mapping) else {}
    return str(first.get("statusCode") or "UNKNOWN_ERROR")


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: rare from Salesforce; fall back to our own backoff


@contextmanager
def _translated(op: str, retry_after: Callable[[], float | None] = lambda: None) -> Iterator[None]:
    """Turn simple-salesforce and requests exceptions into crmsync errors.

    Args:
        op: What was being done (``query Contact``), for the message.
        retry_after: Returns the ``Retry-After`` of the failed response, if it had one
            (simple-salesforce drops response headers from its exceptions).
    """
    try:
        yield
    except CrmsyncError:
        raise
    except SalesforceExpiredSession as exc:
        # With password/JWT auth simple-salesforce has already logged in again and retried.
        raise AuthError(f"Salesforce {op}: HTTP 401 {_first_error(exc.content)[0] or 'refused'}; "
                        "the session is invalid or expired") from exc
    except SalesforceAuthenticationFailed as exc:
        raise AuthError(f"Salesforce {op}: login failed ({exc.code})") from exc
    except SalesforceRefusedRequest as exc:
        # 403 is a permission problem OR an API limit: the errorCode and message say which.
        code, text = _first_error(exc.content)
        lowered = text.lower()
        if code == "REQUEST_LIMIT_EXCEEDED" and "concurrent" in lowered:
            raise TransientError(f"Salesforce {op}: HTTP 403 {code} (concurrent requests)",
                                 retry_after=retry_after()) from exc
        if code == "REQUEST_LIMIT_EXCEEDED":
            raise QuotaExhausted(f"Salesforce {op}: HTTP 403 {code} (daily API requests used "
                                 "up); the run stops and resumes next time") from exc
        raise AuthError(f"Salesforce {op}: HTTP 403 {code or 'refused'}") from exc
    except SalesforceMalformedRequest as exc:
        code = _first_error(exc.content)[0]
        if code in _TRANSIENT_CODES:
            raise TransientError(f"Salesforce {op}: HTTP 400 {code}",
                                 retry_after=retry_after()) from exc
        raise CrmRequestError(f"Salesforce {op}: HTTP 400 {code or 'bad request'}") from exc
    except SalesforceGeneralError as exc:
        code = _first_error(exc.content)[0]
        if exc.status >= 500 or exc.status in (408, 429):
            raise TransientError(f"Salesforce {op}: HTTP {exc.status} {code}".rstrip(),
                                 retry_after=retry_after()) from exc
        raise CrmRequestError(f"Salesforce {op}: HTTP {exc.status} {code}".rstrip()) from exc
    except SalesforceError as exc:  # 300 more-than-one, 404 not found
        code = _first_error(exc.content)[0]
        raise CrmRequestError(f"Salesforce {op}: HTTP {exc.status} {code}".rstrip()) from exc
    except SalesforceOperationError as exc:  # bulk 2.0 job failures
        raise CrmRequestError(f"Salesforce {op}: {type(exc).__name__}") from exc
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError) as exc:
        raise TransientError(f"Salesforce {op}: {type(exc).__name__}") from exc
    except (requests.exceptions.JSONDecodeError, json.JSONDecodeError) as exc:
        # A truncated or non-JSON success body: the connection broke mid-response.
        raise TransientError(f"Salesforce {op}: unreadable response") from exc


# -- SOQL helpers -----------------------------------------------------------------------------


def soql_datetime(moment: datetime) -> str:
    """Return ``moment`` as an unquoted SOQL datetime literal, floored to the second, UTC.

    Flooring keeps ``>=`` from losing rows stored with milliseconds (the caller de-duplicates
    the small overlap it adds).
    """
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def soql_string(value: str) -> str:
    """Return ``value`` as a quoted SOQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def chunk_in_clauses(values: Sequence[str], budget: int) -> Iterator[list[str]]:
    """Split ``values`` so each ``IN (...)`` list stays under ``budget`` URL-encoded characters."""
    chunk: list[str] = []
    used = 0
    for value in values:
        cost = len(quote_plus(soql_string(value) + ","))
        if chunk and used + cost > budget:
            yield chunk
            chunk, used = [], 0
        chunk.append(value)
        used += cost
    if chunk:
        yield chunk


def _relationship(reference_field: str) -> str:
    """Return the SOQL relationship name of a lookup field (``ContactId`` -> ``Contact``)."""
    if reference_field.endswith("__c"):
        return reference_field[:-3] + "__r"
    return reference_field[:-2] if reference_field.endswith("Id") else reference_field



def _unique(names: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(name.lower(), name)
    return list(seen.values())


# -- crmsync's own fields ---------------------------------------------------------------------

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


# -- the connector ----------------------------------------------------------------------------


class SalesforceConnector:
    """Reads Leads and Contacts and writes crmsync's fields and tasks in one Salesforce org.

    Not thread-safe: give each worker thread its own connector.

    Args:
        fieldmap: The Salesforce field map (``connectors/salesforce.json``).
        auth: How to authenticate (see :class:`SalesforceAuth`).
        objects: Objects to sync (``Lead``, ``Contact``); default: every object in the field map.
        api_version: REST API version, pinned so a client upgrade cannot change behaviour.
        policy: Retry policy for transient failures.
        sleep: Sleep function used between retries (tests pass a recorder).
        bulk_threshold: When one ``write_fields`` call carries at least this many records of
            one object, they go through one Bulk API 2.0 ingest job (about 5-7 calls however
            many records) instead of Collections (one call per 200). ``None``: never.
        quota_reserve: Fraction of the org's daily API allocation left untouched: once the
            ``Sforce-Limit-Info`` header shows fewer calls remaining, the connector stops with
            QuotaExhausted before making another call (other integrations share the quota).
        timeout: (connect, read) timeout in seconds of every HTTP call.
    """

    crm = "salesforce"
    limits = ApiLimits(read_page=QUERY_PAGE, write_batch=COLLECTION_BATCH,
                       task_batch=COLLECTION_BATCH)

    def __init__(
        self,
        fieldmap: FieldMap,
        *,
        auth: SalesforceAuth,
        objects: Sequence[str] | None = None,
        api_version: str = "59.0",
        policy: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        bulk_threshold: int | None = None,
        quota_reserve: float = 0.02,
        timeout: tuple[float, float] = (10.0, 120.0),
    ) -> None:
        if fieldmap.crm != "salesforce":
            raise ConfigError(f"{fieldmap.path}: field map is for {fieldmap.crm!r}, not salesforce")
        chosen = list(objects) if objects is not None else list(fieldmap.objects)
        unknown = [name for name in chosen if name not in fieldmap.objects]
        if unknown:
            raise ConfigError(f"objects {', '.join(unknown)} are not in the field map "
                              f"{fieldmap.path} (mapped: {', '.join(fieldmap.objects)})")
        auth.validate()
        self.fieldmap = fieldmap
        self.auth = auth
        self.objects = chosen
        self.api_version = api_version
        self.policy = policy
        self.sleep = sleep
        self.bulk_threshold = bulk_threshold
        self.quota_reserve = quota_reserve
        self.timeout = timeout
        self._sf: Salesforce | None = None
        self._calls = 0
        self._calls_lock = threading.Lock()
        self._last = threading.local()
        self._retry: Retrying | None = None

    # -- plumbing ----------------------------------------------------------------------------

    def _client(self) -> Salesforce:
        if self._sf is None:
            def connect() -> Salesforce:
                with _translated("login", self._last_retry_after):
                    # The hook goes in first so that login calls are counted too.
                    return self.auth.connect(self.api_version, on_response=self._on_response)

            self._sf = self._retrying(connect)
        return self._sf

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        with self._calls_lock:
            self._calls += 1
        self._last.retry_after = _retry_after(response.headers.get("Retry-After"))

    def _last_retry_after(self) -> float | None:
        return getattr(self._last, "retry_after", None)

    def _retrying(self, fn: Callable[[], T]) -> T:
        if self._retry is None:
            self._retry = retrying(self.policy, sleep=self.sleep)
        return self._retry(fn)

    def _call(self, op: str, fn: Callable[[Salesforce], T]) -> T:
        """Run one API call with quota guard, error translation and the retry policy."""

        # Logging in has its own retries (inside _client): keep them out of this loop.
        sf = self._client()

        def attempt() -> T:
            self._guard_quota(sf, op)
            self._last.retry_after = None
            with _translated(op, self._last_retry_after):
                return fn(sf)

        return self._retrying(attempt)

    def _guard_quota(self, sf: Salesforce, op: str) -> None:
        usage = sf.api_usage.get("api-usage")
        if usage is None or not usage.total:
            return
        reserve = math.ceil(usage.total * self.quota_reserve)
        if usage.total - usage.used <= reserve:
            raise QuotaExhausted(
                f"Salesforce {op}: daily API requests at {usage.used}/{usage.total}, within the "
                f"reserve of {reserve} kept for other integrations; the run stops and resumes "
                "next time")

    def _query_pages(self, op: str, soql: str) -> Iterator[list[dict[str, Any]]]:
        """Yield the record lists of every page of a query, one HTTP call per page."""
        headers = {"Sforce-Query-Options": f"batchSize={QUERY_PAGE}"}
        result = self._call(op, lambda sf: sf.query(soql, headers=headers, timeout=self.timeout))
        seen: set[str] = set()
        while True:
            yield list(result.get("records") or [])
            next_url = result.get("nextRecordsUrl")
            if result.get("done", True) or not next_url:
                return
            if next_url in seen:  # a server bug would otherwise loop forever
                raise CrmRequestError(f"Salesforce {op}: query locator repeated")
            seen.add(next_url)
            result = self._call(op, lambda sf, url=next_url: sf.query_more(
                url, identifier_is_url=True, headers=headers, timeout=self.timeout))

    def _in_budget(self, soql_without_ids: str) -> int:
        sf = self._client()
        fixed = len(sf.base_url) + len("query/?q=") + len(quote_plus(soql_without_ids))
        return max(200, MAX_URL_CHARS - fixed)

    def _query_in(
        self, op: str, select_from: str, in_field: str, ids: Sequence[str], tail: str = ""
    ) -> Iterator[list[dict[str, Any]]]:
        """Query ``select_from WHERE in_field IN (<ids>) tail``, chunking ids to keep URLs short."""
        template = f"{select_from} WHERE {in_field} IN ({{}}){tail}"
        budget = self._in_budget(template.format(""))
        # Ids are case-sensitive (15-character form): de-duplicate exactly.
        for chunk in chunk_in_clauses(list(dict.fromkeys(ids)), budget):
            yield from self._query_pages(op, template.format(",".join(map(soql_string, chunk))))

    def _stream_object(self, stream: str) -> str:
        prefix, _, name = stream.partition(":")
        if prefix != "salesforce" or name not in self.objects:
            raise ConfigError(f"unknown stream {stream!r}; this connector reads "
                              f"{', '.join(self.streams())}")
        return name

    def _select(self, obj: str) -> list[str]:
        mapped = self.fieldmap.objects[obj]
        return _unique(["Id", *mapped.fields(), *self.fieldmap.output_fields(), "SystemModstamp"])

    def _base_where(self, obj: str) -> list[str]:
        # Converted leads are read-only and live on as Contacts: never evaluate them twice.
        return ["IsConverted = false"] if obj == "Lead" else []

    def _has_deals(self, obj: str) -> bool:
        deals = self.fieldmap.deals
        return obj == "Contact" and deals is not None and "contact" in deals.fields

    def _to_contact(
        self, obj: str, record: Mapping[str, Any], deals: Mapping[str, Any] | None
    ) -> Contact:
        facts, outputs = self.fieldmap.to_contact_facts(obj, record)
        if deals is not None:
            facts.update(deals)
        mapped = self.fieldmap.objects[obj]
        return Contact(
            id=str(record["Id"]),
            facts=facts,
            outputs=outputs,
            object_type=obj,
            modified_at=coerce(get_field(record, mapped.modified_field), "datetime"),
            owner_id=coerce(get_field(record, mapped.owner_field), "str"),
        )

    # -- deals -------------------------------------------------------------------------------

    def _deal_select(self) -> tuple[str, str]:
        deals = self.fieldmap.deals
        assert deals is not None
        return f"SELECT {', '.join(_unique(['Id', *deals.fields.values()]))} FROM {deals.object}", \
            deals.fields["contact"]

    def _rollups(self, rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        """Roll deal rows up per contact (rows grouped by contact, or any order)."""
        deals = self.fieldmap.deals
        assert deals is not None
        contact_field = deals.fields["contact"]
        grouped: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows:
            contact_id = get_field(row, contact_field)
            if contact_id:
                grouped.setdefault(str(contact_id), []).append(row)
        return {cid: rollup_deals(deals, group) for cid, group in grouped.items()}

    def _upfront_rollups(self, since: datetime | None) -> dict[str, dict[str, Any]]:
        """Read the Opportunities of every contact a read will return, in one paged query.

        For an incremental read the filter is the contact's own ``SystemModstamp`` (a parent
        field), so the query returns exactly the deals of the contacts about to be read. Rows
        come sorted by contact and only each contact's rollup is kept, never the raw rows.
        A contact that changes after this query has a ``SystemModstamp`` after the run's start,
        so the next run reads it again with fresh deal facts.
        """
        deals = self.fieldmap.deals
        assert deals is not None
        select, contact_field = self._deal_select()
        where = f"{contact_field} != null"
        if since is not None:
            where += f" AND {_relationship(contact_field)}.SystemModstamp >= {soql_datetime(since)}"
        soql = f"{select} WHERE {where} ORDER BY {contact_field} ASC, Id ASC"
        out: dict[str, dict[str, Any]] = {}
        current: str | None = None
        group: list[Mapping[str, Any]] = []
        for page in self._query_pages(f"query {deals.object}", soql):
            for row in page:
                contact_id = str(get_field(row, contact_field))
                if contact_id != current:
                    if current is not None:
                        out[current] = rollup_deals(deals, group)
                    current, group = contact_id, []
                group.append(row)
        if current is not None:
            out[current] = rollup_deals(deals, group)
        return out

    def _rollups_for(self, contact_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Read the Opportunities of some contacts (``ContactId IN (...)``, chunked)."""
        if not contact_ids:
            return {}
        deals = self.fieldmap.deals
        assert deals is not None
        select, contact_field = self._deal_select()
        rows = [row for page in self._query_in(f"query {deals.object}", select, contact_field,
                                               contact_ids) for row in page]
        return self._rollups(rows)

    def _empty_rollup(self) -> dict[str, Any]:
        assert self.fieldmap.deals is not None
        return rollup_deals(self.fieldmap.deals, ())

    def _contacts(
        self, obj: str, records: Sequence[Mapping[str, Any]],
        rollups: Mapping[str, dict[str, Any]] | None,
    ) -> list[Contact]:
        if rollups is None and self._has_deals(obj):
            rollups = self._rollups_for([str(r["Id"]) for r in records])
        empty = self._empty_rollup() if rollups is not None else None
        return [
            self._to_contact(obj, r, None if rollups is None else rollups.get(str(r["Id"]), empty))
            for r in records
        ]

    # -- Connector protocol: reads -----------------------------------------------------------

    def streams(self) -> list[str]:
        """Return ``salesforce:<Object>`` for every configured object."""
        return [f"salesforce:{name}" for name in self.objects]

    def read(
        self, stream: str, since: datetime | None, until: datetime | None = None
    ) -> Iterator[Page]:
        """Yield pages of records modified at or after ``since`` (every record when ``None``).

        Pages are in ``SystemModstamp, Id`` order (``ordered=True``). For Contacts, deal facts
        come from one upfront paged Opportunity query over the same contacts; on an incremental
        read, contacts whose Opportunities changed since ``since`` come first, in ``related``
        pages (they never move the cursor, so a stopped run re-checks them next time). A query
        locator is a snapshot, so ``until`` needs no filter here: writes made while paging do
        not shift the pages.
        """
        obj = self._stream_object(stream)
        where = self._base_where(obj)
        if since is not None:
            where.append(f"SystemModstamp >= {soql_datetime(since)}")
        soql = f"SELECT {', '.join(self._select(obj))} FROM {obj}"
        if where:
            soql += " WHERE " + " AND ".join(where)
        soql += " ORDER BY SystemModstamp ASC, Id ASC"
        if since is not None and self._has_deals(obj):
            yield from self._related_pages(stream, obj, since, set())
        rollups = self._upfront_rollups(since) if self._has_deals(obj) else None
        for records in self._query_pages(f"query {obj}", soql):
            if not records:
                continue
            yield Page(stream, self._contacts(obj, records, rollups), related=False, ordered=True)

    def _related_pages(
        self, stream: str, obj: str, since: datetime, yielded: set[str]
    ) -> Iterator[Page]:
        deals = self.fieldmap.deals
        assert deals is not None
        contact_field = deals.fields["contact"]
        modified = deals.fields.get("modified", "SystemModstamp")
        soql = (f"SELECT {contact_field} FROM {deals.object} WHERE {modified} >= "
                f"{soql_datetime(since)} AND {contact_field} != null")
        changed: dict[str, None] = {}
        for page in self._query_pages(f"query {deals.object}", soql):
            for row in page:
                contact_id = str(get_field(row, contact_field))
                if contact_id not in yielded:
                    changed.setdefault(contact_id, None)
        ids = list(changed)
        for batch in chunks(ids, QUERY_PAGE):
            contacts = self._read_ids(obj, batch)
            if contacts:
                yield Page(stream, contacts, related=True, ordered=True)

    def read_ids(self, stream: str, ids: Sequence[str]) -> list[Contact]:
        """Read specific records by id (``WHERE Id IN (...)``, chunked); unknown ids are skipped."""
        return self._read_ids(self._stream_object(stream), ids)

    def _read_ids(self, obj: str, ids: Sequence[str]) -> list[Contact]:
        out: list[Contact] = []
        select = f"SELECT {', '.join(self._select(obj))} FROM {obj}"
        tail = "".join(f" AND {condition}" for condition in self._base_where(obj))
        for page in self._query_in(f"query {obj}", select, "Id", ids, tail):
            out.extend(self._contacts(obj, page, None))
        return out

    # -- Connector protocol: writes ----------------------------------------------------------

    def _collection(
        self, op: str, records: list[dict[str, Any]], path: str = "composite/sobjects"
    ) -> list[Mapping[str, Any]]:
        """PATCH one Collections batch; re-send records that only failed on a row lock.

        Lock contention (``UNABLE_TO_LOCK_ROW``: another process is writing the same record or
        its parent Account) clears within seconds, so those records are sent again, alone, up
        to :data:`LOCK_RETRIES` times before being reported as retryable failures. Every write
        here is an update or an upsert by key, so re-sending is safe.
        """
        results = self._patch_collection(op, records, path)
        for attempt in range(LOCK_RETRIES):
            locked = [i for i, saved in enumerate(results) if _error_code(saved) in _LOCK_CODES]
            if not locked:
                break
            self.sleep(self.policy.initial_wait_s * 2**attempt)
            again = self._patch_collection(op, [records[i] for i in locked], path)
            for i, saved in zip(locked, again, strict=True):
                results[i] = saved
        return results

    def _patch_collection(
        self, op: str, records: list[dict[str, Any]], path: str
    ) -> list[Mapping[str, Any]]:
        body = {"allOrNone": False, "records": records}
        results = self._call(op, lambda sf: sf.restful(path, method="PATCH", json=body,
                                                      timeout=self.timeout))
        if not isinstance(results, list) or len(results) != len(records):
            raise CrmRequestError(f"Salesforce {op}: unexpected SaveResult list")
        return results

    @staticmethod
    def _result(
        record_id: str, saved: Mapping[str, Any], *, key: str | None = None,
        task_id: str | None = None,
    ) -> WriteResult:
        if saved.get("success"):
            return WriteResult(record_id, True, task_id=task_id or saved.get("id"), key=key)
        errors = saved.get("errors") or [{}]
        first = errors[0] if isinstance(errors[0], Mapping) else {}
        code = str(first.get("statusCode") or "UNKNOWN_ERROR")
        fields = [str(f) for f in first.get("fields") or []]
        # The CRM's own message can quote record data ("data value too large: <value>"):
        # keep only the code and the field names.
        message = f"fields: {', '.join(fields)}" if fields else None
        return WriteResult(record_id, False, error_code=code, message=message,
                           retryable=code in RETRYABLE_CODES, task_id=task_id, key=key)

    def write_fields(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        """Write output fields with sObject Collections, 200 records a call; input order kept.

        Updates are idempotent, so a batch is safely re-sent after a transient failure.
        """
        results: list[WriteResult | None] = [None] * len(updates)
        # Collections allow at most 10 runs of one type per call: group by object first.
        by_type: dict[str, list[int]] = {}
        for index, update in enumerate(updates):
            by_type.setdefault(update.object_type, []).append(index)
        for obj, indexes in by_type.items():
            if self.bulk_threshold is not None and len(indexes) >= self.bulk_threshold:
                bulk = self._bulk_update(obj, [updates[i] for i in indexes])
                for i, result in zip(indexes, bulk, strict=True):
                    results[i] = result
                continue
            for batch in chunks(indexes, COLLECTION_BATCH):
                records = [self._update_record(updates[i]) for i in batch]
                saved = self._collection(f"update {obj}", records)
                for i, result in zip(batch, saved, strict=True):
                    results[i] = self._result(updates[i].record_id, result)
        return [r for r in results if r is not None]

    def _bulk_update(self, obj: str, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        """Update records with one Bulk API 2.0 ingest job; one result per update, in order.

        Re-running the job after a transient failure is safe: updates are idempotent.
        """
        rows = [self._bulk_row(update) for update in updates]
        jobs = self._call(f"bulk update {obj}",
                          lambda sf: getattr(sf.bulk2, obj).update(records=rows, wait=0))
        failed: dict[str, str] = {}
        for job in jobs:
            job_id = job["job_id"]
            if job["numberRecordsFailed"]:
                text = self._call(f"bulk results {obj}",
                                  lambda sf, j=job_id: getattr(sf.bulk2, obj).get_failed_records(j))
                for row in csv.DictReader(io.StringIO(text)):
                    # sf__Error is "CODE:message:fields"; the message may quote record data.
                    code = (row.get("sf__Error") or "UNKNOWN_ERROR").split(":", 1)[0]
                    failed[row.get("Id") or row.get("sf__Id") or ""] = code
            if job["numberRecordsProcessed"] < job["numberRecordsTotal"]:
                text = self._call(f"bulk results {obj}", lambda sf, j=job_id: getattr(
                    sf.bulk2, obj).get_unprocessed_records(j))
                for row in csv.DictReader(io.StringIO(text)):
                    failed[row.get("Id") or ""] = "UNPROCESSED_RECORD"
        out = []
        for update in updates:
            code = failed.get(update.record_id)
            out.append(WriteResult(update.record_id, True) if code is None else WriteResult(
                update.record_id, False, error_code=code,
                retryable=code in RETRYABLE_CODES or code == "UNPROCESSED_RECORD"))
        return out

    def _bulk_row(self, update: RecordUpdate) -> dict[str, str]:
        row = {"Id": update.record_id}
        for name, value in self._update_record(update).items():
            if name in ("attributes", "id"):
                continue
            # In Bulk CSV an empty cell leaves a field unchanged; #N/A clears it.
            if value is None:
                row[name] = "#N/A"
            elif isinstance(value, bool):
                row[name] = "true" if value else "false"
            else:
                row[name] = str(value)
        return row

    def _update_record(self, update: RecordUpdate) -> dict[str, Any]:
        record: dict[str, Any] = {"attributes": {"type": update.object_type},
                                  "id": update.record_id}
        for output, value in update.values.items():
            target = self.fieldmap.outputs.get(output)
            if target is None:
                raise ConfigError(f"output {output!r} has no field in {self.fieldmap.path}")
            record[target.field] = target.encode(value)
        return record

    def find_tasks(self, contact_ids: Sequence[str], keys: Sequence[str]) -> dict[str, str]:
        """Return ``{key: task id}`` of open tasks carrying any of ``keys`` (by external id)."""
        key_field = self._task_key_field()
        if not keys:
            return {}
        found: dict[str, str] = {}
        select = f"SELECT Id, {key_field}, IsClosed FROM {self.fieldmap.tasks.object}"
        for page in self._query_in("query Task", select, key_field, keys):
            for row in page:
                if not row.get("IsClosed") and row.get(key_field):
                    found[str(row[key_field])] = str(row["Id"])
        return found

    def _task_key_field(self) -> str:
        key_field = self.fieldmap.tasks.key_field
        if not key_field:
            raise ConfigError(f"{self.fieldmap.path}: tasks.key_field is required for "
                              "Salesforce (idempotent task upserts)")
        return key_field

    def create_tasks(self, creates: Sequence[TaskCreate]) -> list[WriteResult]:
        """Upsert tasks by crmsync's key field, 200 a call; one result per task, input order.

        An upsert by key cannot duplicate, so a batch is safely re-sent after a timeout or 5xx.
        """
        tasks = self.fieldmap.tasks
        key_field = self._task_key_field()
        path = f"composite/sobjects/{tasks.object}/{key_field}"
        out: list[WriteResult] = []
        for batch in chunks(list(creates), COLLECTION_BATCH):
            records = [self._task_record(create, key_field) for create in batch]
            saved = self._collection(f"upsert {tasks.object}", records, path)
            out.extend(self._result(c.contact_id, s, key=c.key) for c, s in
                       zip(batch, saved, strict=True))
        return out

    def _task_record(self, create: TaskCreate, key_field: str) -> dict[str, Any]:
        tasks = self.fieldmap.tasks
        f = tasks.fields
        spec = create.spec
        values: dict[str, Any] = {
            f.get("contact", "WhoId"): create.contact_id,
            f.get("subject", "Subject"): spec.subject[:255],
            f.get("body", "Description"): spec.body[:32_000],
            f.get("due", "ActivityDate"): spec.due.isoformat(),
            f.get("status", "Status"): tasks.open_status,
            f.get("priority", "Priority"): tasks.priority_values.get(spec.priority, spec.priority),
            key_field: create.key,
        }
        if create.owner_id:
            values[f.get("owner", "OwnerId")] = create.owner_id
        # No WhatId ever: Salesforce refuses one on a task whose WhoId is a Lead.
        return {"attributes": {"type": tasks.object}, **values}

    def close_tasks(self, closes: Sequence[TaskClose]) -> list[WriteResult]:
        """Set tasks' status to the closed status with Collections; one result per task."""
        tasks = self.fieldmap.tasks
        status_field = tasks.fields.get("status", "Status")
        out: list[WriteResult] = []
        for batch in chunks(list(closes), COLLECTION_BATCH):
            records = [{"attributes": {"type": tasks.object}, "id": c.task_id,
                        status_field: tasks.closed_status} for c in batch]
            saved = self._collection(f"update {tasks.object}", records)
            out.extend(self._result(c.task_id, s, key=c.key, task_id=c.task_id)
                       for c, s in zip(batch, saved, strict=True))
        return out

    # -- Connector protocol: setup and checks ------------------------------------------------

    def _crmsync_fields(self) -> dict[str, dict[str, Mapping[str, Any]]]:
        """Return ``{object: {field: tooling metadata}}`` of every field crmsync owns."""
        wanted: dict[str, dict[str, Mapping[str, Any]]] = {}
        for obj in self.objects:
            fields: dict[str, Mapping[str, Any]] = {}
            for name, target in self.fieldmap.outputs.items():
                meta = _OUTPUT_METADATA.get(name) or {**_KIND_METADATA[target.kind],
                                                      "label": _label(target.field)}
                fields[target.field] = meta
            for source in self.fieldmap.objects[obj].sources:
                # The rep's override field is crmsync's to create (reps fill it in).
                if source.fact == "status_override" and source.field and source.field.endswith("__c"):
                    fields[source.field] = _OVERRIDE_METADATA
            wanted[obj] = fields
        key_field = self.fieldmap.tasks.key_field
        if key_field:
            wanted.setdefault(self.fieldmap.tasks.object, {})[key_field] = _TASK_KEY_METADATA
        return wanted

    def _describe_fields(self, obj: str) -> set[str]:
        described = self._call(f"describe {obj}", lambda sf: sf.restful(
            f"sobjects/{obj}/describe", timeout=self.timeout))
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
        if deals is not None and any(self._has_deals(obj) for obj in self.objects):
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
                                  timeout=self.timeout)
            except SalesforceMalformedRequest as exc:
                if _first_error(exc.content)[0] == "DUPLICATE_DEVELOPER_NAME":
                    return False
                raise
            return True

        return self._call(f"create field {full_name}", post)

    # -- accounting --------------------------------------------------------------------------

    def api_calls(self) -> int:
        """Return the HTTP calls made so far (retries and re-logins included)."""
        return self._calls

    def close(self) -> None:
        """Close the HTTP session."""
        if self._sf is not None:
            self._sf.session.close()
