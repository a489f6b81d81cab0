"""The HubSpot connector: contacts, their deals and crmsync's tasks over hubspot-api-client.

Reads: a first (full) read pages the contacts list at 100 with deals associated inline; an
incremental read searches ``lastmodifieddate >= since`` in ascending order at 200 a page and
starts a new search window (``GTE`` the last timestamp seen, boundary ids de-duplicated) before
HubSpot's 10,000-result cap. Deals are batch-read at 100 and rolled up by the field map; deal
ids are pooled across a few pages so that deal reads run at full batches (memory stays bounded
by :data:`MAX_PENDING_PAGES`, not by the org). Contacts whose deals changed since the cursor
come first, in ``related`` pages.

Writes: ``batch/update`` at 100 (idempotent, so retried on 429/5xx/timeouts); tasks through
``batch/create`` with the contact association inline and the task key hidden at the end of the
body (``<!-- crmsync-key:KEY -->``). A create whose outcome is unknown (5xx, timeout, dropped
connection) is never re-sent blindly: the connector first looks for the keys it sent and only
re-creates the missing ones. A batch HubSpot rejects as a whole (400: one bad value fails all
100) is split in halves until the bad record is alone, so neighbours still get written.

Every HTTP call goes through :func:`crmsync.retry.retrying` and :meth:`HubSpotConnector._call`,
the one place vendor errors become crmsync errors. The SDK builds, authenticates and sends each
request and raises its exceptions; response bodies are taken raw and parsed as JSON here, because
the SDK's model layer (two dateutil parses per record) cost half of a read's CPU. urllib3's own
retries are switched off (``Retry(total=0)``) so exactly one policy applies and every HTTP call
is counted. Calls are paced by the ``X-HubSpot-RateLimit-*`` headers and a 5-per-second search
budget, so a healthy run rarely sees a 429. Error messages carry status, category and
correlation id only: response bodies can hold contact data and stay in ``__cause__``.
"""

from __future__ import annotations

import http.client
import json
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as dtime
from typing import Any, TypeVar

import urllib3
from hubspot import HubSpot
from tenacity import Retrying
from urllib3.util.retry import Retry

from crmsync.connectors.base import ApiLimits, Page, RecordUpdate, SetupReport, WriteResult, chunks
from crmsync.connectors.fieldmap import FieldMap, coerce
from crmsync.errors import (
    AuthError,
    ConfigError,
    CrmRequestError,
    CrmsyncError,
    QuotaExhausted,
    TransientError,
)
from crmsync.model import MISS_TYPES, STATUSES, Contact, TaskClose, TaskCreate
from crmsync.retry import RetryPolicy, retrying

log = logging.getLogger("crmsync.connectors.hubspot")
# The SDK's rest.py logs whole response bodies (contact data) at DEBUG; urllib3 logs URLs.
for _name in ("hubspot", "urllib3"):
    logging.getLogger(_name).setLevel(logging.WARNING)

T = TypeVar("T")

#: Largest contacts-list page and batch size HubSpot accepts.
BATCH = 100
#: Largest search page.
SEARCH_PAGE = 200
#: Search results HubSpot serves for one query (``after + limit`` beyond it is a 400).
SEARCH_CAP = 10_000
#: Inputs per v4 association batch read.
ASSOCIATION_BATCH = 1000
#: Search requests per second (a separate bucket from the 10-second one).
SEARCH_PER_SECOND = 5
#: Contact pages held back while their deal ids are pooled into full deal batch reads.
MAX_PENDING_PAGES = 8
#: Association type ids (HUBSPOT_DEFINED).
TASK_TO_CONTACT = 204
#: The property group crmsync's properties live in.
GROUP = "crmsync"
#: Where the task key hides in the task body (reps see the body, not the comment).
KEY_MARK = "<!-- crmsync-key:{key} -->"
_KEY_RE = re.compile(r"<!-- crmsync-key:(\S+?) -->")
#: Seconds to let a create whose response was lost land before looking for what it made.
SETTLE_S = 2.0
#: Keep this many calls of the 10-second window unused (other apps share the account's limit).
WINDOW_RESERVE = 2
#: Categories and codes of per-record errors worth sending again on a later run.
RETRYABLE = frozenset({"RATE_LIMITS", "INTERNAL_ERROR", "TIMEOUT", "SERVICE_UNAVAILABLE",
                       "MISSING_FROM_RESPONSE", "LOCKED"})
_OUTPUT_LABELS = {
    "status": "Funnel status", "miss_type": "Miss type", "score": "Lead score",
    "reason": "Why (crmsync)", "ruleset": "Rule set version", "evaluated_at": "Evaluated at",
    "status_since": "Status since",
}


# -- errors ------------------------------------------------------------------------------------


class _RateLimited(TransientError):
    """A 429: HubSpot did not process the request, so even a create may be re-sent."""


class _Rejected(CrmRequestError):
    """A 4xx for the whole request; ``code`` is HubSpot's first error code, if any."""

    def __init__(self, message: str, *, status: int, category: str | None, code: str | None):
        super().__init__(message)
        self.status = status
        self.category = category
        self.code = code


class _Unsure(CrmsyncError):
    """A non-idempotent call failed in a way that may have left it applied (5xx, timeout)."""

    def __init__(self, error: TransientError) -> None:
        super().__init__(str(error))
        self.error = error


_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    urllib3.exceptions.HTTPError,  # ProtocolError, MaxRetryError, timeouts, NewConnectionError
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
)


def _body_fields(exc: Any) -> dict[str, Any]:
    """Return the JSON error body of a vendor exception as a dict ({} when not JSON)."""
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if not isinstance(body, str) or not body:
        return {}
    try:
        parsed = json.loads(body)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _header(exc: Any, name: str) -> str | None:
    headers = getattr(exc, "headers", None)
    if headers is None:
        return None
    try:
        value = headers.get(name)
    except AttributeError:
        return None
    return str(value) if value is not None else None


def _seconds(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None  # an HTTP date: rare for HubSpot; fall back to the policy's window


def translate(op: str, exc: BaseException) -> CrmsyncError | None:
    """Return the crmsync error for a vendor/network exception, or None if it is not one.

    Every generated hubspot package has its own ``ApiException`` with no common base, so the
    status is read by attribute. The message names the operation, status, category and
    correlation id; never the body, which can hold contact data.
    """
    if isinstance(exc, CrmsyncError):
        return exc
    status = getattr(exc, "status", None)
    if isinstance(status, int) and hasattr(exc, "reason"):
        body = _body_fields(exc)
        category = body.get("category") or body.get("errorType")
        correlation = body.get("correlationId") or _header(exc, "X-HubSpot-Correlation-Id")
        text = f"HubSpot {op}: HTTP {status}"
        if category:
            text += f" {category}"
        if correlation:
            text += f" (correlation id {correlation})"
        if status == 429:
            policy = str(body.get("policyName") or "")
            if policy == "DAILY":
                return QuotaExhausted(text + ": daily API limit reached; the next run resumes")
            wait = _seconds(_header(exc, "Retry-After"))
            if wait is None:
                # No Retry-After: wait out the bucket that was hit.
                interval = _seconds(_header(exc, "X-HubSpot-RateLimit-Interval-Milliseconds"))
                wait = 1.0 if policy == "SECONDLY" else (interval / 1000 if interval else 10.0)
            return _RateLimited(text, retry_after=wait)
        if status == 0 or status >= 500:
            return TransientError(text, retry_after=_seconds(_header(exc, "Retry-After")))
        if status == 401:
            return AuthError(text + ": the private-app token was refused")
        if status == 403:
            return AuthError(text + ": the private-app token lacks a required scope")
        errors = body.get("errors")
        code = None
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            code = errors[0].get("code")
        return _Rejected(text + (f" {code}" if code else ""), status=status,
                         category=category, code=code)
    if isinstance(exc, _NETWORK_ERRORS):
        return TransientError(f"HubSpot {op}: {type(exc).__name__} (no response)")
    return None


# -- small helpers -----------------------------------------------------------------------------



def _ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(response: Any) -> dict[str, Any]:
    """Parse a raw (``_preload_content=False``) SDK response body; read errors surface here."""
    raw = response.data
    parsed = json.loads(raw) if raw else {}
    return parsed if isinstance(parsed, dict) else {}


def _props(obj: Mapping[str, Any]) -> dict[str, Any]:
    return dict(obj.get("properties") or {})


def _results(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [r for r in answer.get("results") or [] if isinstance(r, dict)]


def _next_after(page: Mapping[str, Any]) -> str | None:
    after = ((page.get("paging") or {}).get("next") or {}).get("after")
    return str(after) if after not in (None, "") else None


def _modified_ms(obj: Any, name: str) -> int | None:
    moment = coerce(_props(obj).get(name), "datetime") or coerce(obj.get("updatedAt"), "datetime")
    return _ms(moment) if isinstance(moment, datetime) else None


def task_key(body: str | None) -> str | None:
    """Return the crmsync task key hidden at the end of a task body, if it carries one."""
    if not body:
        return None
    found = _KEY_RE.findall(body)
    return found[-1] if found else None


@dataclass
class _Pending:
    """A page of contacts waiting for its deals to be read."""

    records: list[Any]
    links: dict[str, list[str]]
    related: bool
    ordered: bool


# -- the connector -----------------------------------------------------------------------------


class HubSpotConnector:
    """Reads contacts (with deals) and writes crmsync's properties and tasks in one HubSpot account.

    Not thread-safe: give each worker thread its own connector.

    Args:
        fieldmap: The HubSpot field map (``connectors/hubspot.json``).
        token: Private-app access token (needs contacts, deals, tasks and schema scopes).
        base_url: API origin; ``None`` for the real HubSpot, ``http://127.0.0.1:PORT`` for the
            sandbox.
        policy: Retry policy for transient failures.
        sleep: Sleep function used between retries and for pacing (tests pass a recorder).
        owner_fallback: Owner id for tasks of contacts that have no owner.
        clock: Monotonic seconds, for client-side pacing (tests share a fake with ``sleep``).
        timeout: (connect, read) timeout in seconds of every HTTP call.
    """

    crm = "hubspot"
    limits = ApiLimits(read_page=BATCH, write_batch=BATCH, task_batch=BATCH)

    def __init__(
        self,
        fieldmap: FieldMap,
        *,
        token: str,
        base_url: str | None = None,
        policy: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
        owner_fallback: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        timeout: tuple[float, float] = (10.0, 120.0),
    ) -> None:
        if fieldmap.crm != "hubspot":
            raise ConfigError(f"{fieldmap.path}: field map is for {fieldmap.crm!r}, not hubspot")
        if "contacts" not in fieldmap.objects:
            raise ConfigError(f"{fieldmap.path}: a HubSpot field map needs objects.contacts")
        if not token:
            raise ConfigError("HubSpot needs a private-app token (crm token), and it is empty")
        self.fieldmap = fieldmap
        self.policy = policy
        self.sleep = sleep
        self.clock = clock
        self.owner_fallback = owner_fallback
        self.timeout = timeout
        #: Per-call SDK options: our timeout, and the raw body (parsed in :meth:`_call`).
        self._raw: dict[str, Any] = {"_request_timeout": timeout, "_preload_content": False}
        # Retry(total=0): urllib3 must not retry on its own (uncounted calls, a second policy,
        # and re-sent creates); connection failures surface at once and retry.py decides.
        self._client = HubSpot(access_token=token, host=base_url.rstrip("/") if base_url else None,
                               retry=Retry(total=0, redirect=0, raise_on_status=False))
        self._apis: dict[str, Any] = {}
        self._retry: Retrying | None = None
        self._calls = 0
        self._lock = threading.Lock()
        # Pacing state: our recent calls per bucket, and what the last response said is left.
        self._window: deque[float] = deque()
        self._searches: deque[float] = deque()
        self._remaining: int | None = None
        self._daily_remaining: int | None = None
        self._interval_s = 10.0
        contacts = fieldmap.objects["contacts"]
        self._modified = contacts.modified_field
        self._owner_field = contacts.owner_field
        self._properties = list(dict.fromkeys([*contacts.fields(), *fieldmap.output_fields()]))
        override = next((s.field for s in contacts.sources if s.fact == "status_override"), None)
        self._override_field = override

    # -- plumbing -----------------------------------------------------------------------------

    def _api(self, name: str) -> Any:
        """Return one generated API object, built once (each SDK access builds a new client)."""
        api = self._apis.get(name)
        if api is None:
            crm = self._client.crm
            api = {
                "contacts.basic": lambda: crm.contacts.basic_api,
                "contacts.batch": lambda: crm.contacts.batch_api,
                "contacts.search": lambda: crm.contacts.search_api,
                "deals.batch": lambda: crm.deals.batch_api,
                "deals.search": lambda: crm.deals.search_api,
                "tasks.batch": lambda: crm.objects.tasks.batch_api,
                "associations.batch": lambda: crm.associations.v4.batch_api,
                "properties.core": lambda: crm.properties.core_api,
                "properties.batch": lambda: crm.properties.batch_api,
                "properties.groups": lambda: crm.properties.groups_api,
            }[name]()
            self._apis[name] = api
        return api

    def _retrying(self, fn: Callable[[], T]) -> T:
        if self._retry is None:
            self._retry = retrying(self.policy, sleep=self.sleep)
        return self._retry(fn)

    def _call(
        self, op: str, api_name: str, fn: Callable[[Any], Any], *, search: bool = False,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """Make one API call with pacing, counting, error translation and the retry policy.

        ``fn`` calls one generated SDK method with ``_preload_content=False``: the SDK builds
        and sends the request and raises its exceptions, and the JSON body is parsed here. (Its
        model layer parses two timestamps per record with dateutil: half the CPU of a read.)
        With ``idempotent=False`` only 429s (not processed) are retried; any other transient
        failure raises :class:`_Unsure`, because the call may have taken effect.
        """
        api = self._api(api_name)

        def attempt() -> dict[str, Any]:
            self._pace(search)
            with self._lock:
                self._calls += 1
            try:
                # Reading the body is part of the call: a connection dropped mid-body fails it.
                result = _json(fn(api))
            except Exception as exc:  # noqa: BLE001 - translated below, or re-raised as is
                error = translate(op, exc)
                if error is None:
                    raise
                if (not idempotent and isinstance(error, TransientError)
                        and not isinstance(error, _RateLimited)):
                    raise _Unsure(error) from exc
                raise error from exc
            if not search:
                self._observe(api)
            return result

        return self._retrying(attempt)

    def _observe(self, api: Any) -> None:
        """Note the 10-second bucket's remaining calls from the last response's headers."""
        response = getattr(api.api_client, "last_response", None)
        if response is None:
            return
        remaining = response.getheader("X-HubSpot-RateLimit-Remaining")
        interval = response.getheader("X-HubSpot-RateLimit-Interval-Milliseconds")
        daily = response.getheader("X-HubSpot-RateLimit-Daily-Remaining")
        try:
            self._remaining = int(remaining) if remaining is not None else None
            self._daily_remaining = int(daily) if daily is not None else None
            if interval is not None:
                self._interval_s = max(0.001, int(interval) / 1000)
        except ValueError:
            self._remaining = self._daily_remaining = None

    def _pace(self, search: bool) -> None:
        """Wait before a call that would break a rate limit, so a healthy run rarely sees 429.

        When the last response said the daily allowance is used up, stop without calling.
        """
        if self._daily_remaining is not None and self._daily_remaining <= 0:
            raise QuotaExhausted("HubSpot: daily API limit used up (X-HubSpot-RateLimit-Daily-"
                                 "Remaining is 0); the next run resumes")
        now = self.clock()
        if search:
            bucket, width, room = self._searches, 1.0, SEARCH_PER_SECOND
            while bucket and bucket[0] <= now - width:
                bucket.popleft()
            if len(bucket) >= room:
                self._wait(bucket[0] + width - now)
                now = self.clock()
        else:
            bucket, width = self._window, self._interval_s
            while bucket and bucket[0] <= now - width:
                bucket.popleft()
            if self._remaining is not None and self._remaining <= WINDOW_RESERVE:
                # The oldest of our calls leaving the window frees a slot; with no call of ours
                # in it (another app used the budget), wait a whole window.
                self._wait(bucket[0] + width - now if bucket else width)
                self._remaining = None
                now = self.clock()
        bucket.append(now)

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            log.debug("pacing: waiting %.2fs for the rate limit", seconds)
            self.sleep(seconds)

    def _check_stream(self, stream: str) -> None:
        if stream != "hubspot:contacts":
            raise ConfigError(f"unknown stream {stream!r}: HubSpot has only hubspot:contacts")

    # -- reading ------------------------------------------------------------------------------

    def streams(self) -> list[str]:
        """Return the one contact stream, ``hubspot:contacts``."""
        return ["hubspot:contacts"]

    def read(
        self, stream: str, since: datetime | None, until: datetime | None = None
    ) -> Iterator[Page]:
        """Yield pages of contacts modified at or after ``since`` (every contact when ``None``).

        ``since=None`` pages the contacts list in id order (``ordered=False``); otherwise a
        search in ascending ``lastmodifieddate`` order (``ordered=True``), windowed around the
        10,000-result cap, bounded above by ``until`` (the run's start). On incremental reads,
        contacts whose deals changed since ``since`` come first, in ``related`` pages.
        """
        self._check_stream(stream)
        if since is None:
            yield from self._with_deals(stream, self._list_pages())
            return
        yielded: set[str] = set()
        deals = self.fieldmap.deals

        def searched() -> Iterator[_Pending]:
            pages = self._search_windows("contacts", "contacts.search", self._modified,
                                         _ms(since), self._properties,
                                         _ms(until) if until is not None else None)
            if deals is None:
                for records in pages:
                    yielded.update(str(r["id"]) for r in records)
                    yield _Pending(records, {}, False, True)
                return
            # Search results carry no associations: v4 reads find the deals.
            for records, links in self._linked(pages, "contacts", deals.object):
                yielded.update(str(r["id"]) for r in records)
                yield _Pending(records, links, False, True)

        if deals is not None:
            # Deal-driven re-reads come first: they never move the cursor, so a run stopped
            # half-way re-checks them next time instead of losing them behind a moved cursor.
            yield from self._with_deals(stream, self._related(since, yielded))
        yield from self._with_deals(stream, searched())

    def read_ids(self, stream: str, ids: Sequence[str]) -> list[Contact]:
        """Read specific contacts by id (batch read, with deals); unknown ids are skipped."""
        self._check_stream(stream)
        out: list[Contact] = []
        for page in self._with_deals(stream, self._read_batches(list(dict.fromkeys(ids)), False)):
            out.extend(page.contacts)
        return out

    def _list_pages(self) -> Iterator[_Pending]:
        after: str | None = None
        with_deals = self.fieldmap.deals is not None
        while True:
            kwargs: dict[str, Any] = {"limit": BATCH, "properties": self._properties,
                                      "archived": False, **self._raw}
            if with_deals:
                kwargs["associations"] = [self.fieldmap.deals.object]  # type: ignore[union-attr]
            if after is not None:
                kwargs["after"] = after
            page = self._call("list contacts", "contacts.basic",
                              lambda api, kw=kwargs: api.get_page(**kw))
            records = _results(page)
            links: dict[str, list[str]] = {}
            if with_deals:
                for record in records:
                    links[str(record["id"])] = self._inline_ids(record)
            if records:
                yield _Pending(records, links, False, False)
            following = _next_after(page)
            if not following or following == after:
                return
            after = following

    def _inline_ids(self, record: Any) -> list[str]:
        associations = record.get("associations") or {}
        deals_key = self.fieldmap.deals.object if self.fieldmap.deals else "deals"
        found = associations.get(deals_key) or associations.get(deals_key.rstrip("s"))
        ids = [str(a["id"]) for a in _results(found or {})]
        return list(dict.fromkeys(ids))

    def _search_windows(
        self, what: str, api_name: str, field: str, since_ms: int, properties: list[str],
        until_ms: int | None = None,
    ) -> Iterator[list[Any]]:
        """Yield search result pages (ascending ``field``), keyset-paged.

        Every page is a fresh search ``GTE`` the last timestamp seen (records at exactly that
        timestamp already yielded are dropped), never an offset into a moving result set:
        records written meanwhile (by crmsync itself, between pages) jump to the end of the
        order, and an offset would then skip as many unread ones. ``until_ms`` bounds the
        search (``LT``) so records changed after the run started wait for the next run. Only a
        page whose records all share one timestamp is followed by offset, within that
        timestamp (nothing written now can land on an old timestamp); more than the result cap
        on one timestamp cannot be windowed.
        """
        start, skip, offset = since_ms, set[str](), 0
        while True:
            filters = [{"propertyName": field, "operator": "GTE", "value": str(start)}]
            if until_ms is not None:
                filters.append({"propertyName": field, "operator": "LT", "value": str(until_ms)})
            body: dict[str, Any] = {
                "filterGroups": [{"filters": filters}],
                "sorts": [{"propertyName": field, "direction": "ASCENDING"}],
                "properties": properties,
                "limit": SEARCH_PAGE,
                "after": str(offset),
            }
            page = self._call(f"search {what}", api_name,
                              lambda api, b=body: api.do_search(
                                  public_object_search_request=b, **self._raw),
                              search=True)
            results = _results(page)
            fresh = []
            last_ms: int | None = None
            at_last: set[str] = set()
            for record in results:
                stamp = _modified_ms(record, field)
                if stamp is not None and stamp <= start and str(record["id"]) in skip:
                    continue
                fresh.append(record)
                if stamp is not None and (last_ms is None or stamp > last_ms):
                    last_ms, at_last = stamp, set()
                if stamp is not None and stamp == last_ms:
                    at_last.add(str(record["id"]))
            if fresh:
                yield fresh
            if not _next_after(page):
                return
            if last_ms is None or last_ms <= start:
                # The whole page sits on the window's first timestamp: step through it.
                skip |= {str(r["id"]) for r in fresh}
                offset += len(results)
                if offset + SEARCH_PAGE > SEARCH_CAP:
                    raise CrmRequestError(
                        f"HubSpot search {what}: more than {SEARCH_CAP} records share one "
                        f"{field} value; they cannot be windowed (run with --full)")
                continue
            start, skip, offset = last_ms, at_last, 0

    def _associated(self, from_type: str, to_type: str, ids: Sequence[str]) -> dict[str, list[str]]:
        """Return ``{from id: [to ids]}`` through v4 batch association reads (1000 a call)."""
        out: dict[str, list[str]] = {}
        for chunk in chunks(list(dict.fromkeys(ids)), ASSOCIATION_BATCH):
            body = {"inputs": [{"id": i} for i in chunk]}
            answer = self._call(
                f"read {from_type} to {to_type} associations", "associations.batch",
                lambda api, b=body: api.get_page(
                    from_type, to_type, batch_input_public_fetch_associations_batch_request=b,
                    **self._raw))
            # Ids with no associations come back as 207 errors; they simply have none.
            for result in _results(answer):
                from_id = str((result.get("from") or {}).get("id", ""))
                # v4 ids are JSON numbers on the real API, strings in v3: normalise.
                targets = [str(t.get("toObjectId")) for t in result.get("to") or []]
                out.setdefault(from_id, []).extend(t for t in targets
                                                   if t not in out.get(from_id, []))
        return out

    def _linked(
        self, pages: Iterable[list[dict[str, Any]]], from_type: str, to_type: str
    ) -> Iterator[tuple[list[dict[str, Any]], dict[str, list[str]]]]:
        """Pair pages with their associations, pooling pages into full v4 batch reads.

        Holds back at most :data:`ASSOCIATION_BATCH` records (5 search pages), so memory stays
        bounded while an incremental read makes one association call per 1000 records, not 200.
        """
        held: list[list[dict[str, Any]]] = []
        count = 0

        def flush() -> Iterator[tuple[list[dict[str, Any]], dict[str, list[str]]]]:
            ids = [str(r["id"]) for records in held for r in records]
            links = self._associated(from_type, to_type, ids)
            for records in held:
                yield records, {str(r["id"]): links.get(str(r["id"]), []) for r in records}
            held.clear()

        for records in pages:
            if count + len(records) > ASSOCIATION_BATCH and held:
                yield from flush()
                count = 0
            held.append(records)
            count += len(records)
        if held:
            yield from flush()

    def _read_batches(self, ids: Sequence[str], related: bool) -> Iterator[_Pending]:
        for chunk in chunks(list(ids), BATCH):
            body = {"inputs": [{"id": i} for i in chunk], "properties": self._properties}
            answer = self._call("batch read contacts", "contacts.batch",
                                lambda api, b=body: api.read(
                                    batch_read_input_simple_public_object_id=b, archived=False,
                                    **self._raw))
            records = _results(answer)
            if not records:
                continue
            links = (self._associated("contacts", self.fieldmap.deals.object,
                                      [str(r["id"]) for r in records])
                     if self.fieldmap.deals is not None else {})
            yield _Pending(records, links, related, True)

    def _related(self, since: datetime, yielded: set[str]) -> Iterator[_Pending]:
        """Contacts (not yet yielded) whose deals changed at or after ``since``."""
        deals = self.fieldmap.deals
        assert deals is not None
        field = deals.fields.get("modified", "hs_lastmodifieddate")
        waiting: list[str] = []
        pages = self._search_windows(deals.object, "deals.search", field, _ms(since), [field])
        for _found, links in self._linked(pages, deals.object, "contacts"):
            for contact_ids in links.values():
                for contact_id in contact_ids:
                    if contact_id not in yielded:
                        yielded.add(contact_id)
                        waiting.append(contact_id)
            while len(waiting) >= BATCH:
                yield from self._read_batches(waiting[:BATCH], True)
                waiting = waiting[BATCH:]
        if waiting:
            yield from self._read_batches(waiting, True)

    def _with_deals(self, stream: str, pages: Iterable[_Pending]) -> Iterator[Page]:
        """Turn pending pages into Pages, reading their deals at full batches where possible.

        Deal ids are pooled over up to :data:`MAX_PENDING_PAGES` pages: a page is released as
        soon as all its deals are read; partial deal batches are read only when the pool of
        pages is full or the stream ends.
        """
        pending: deque[_Pending] = deque()
        queued: list[str] = []  # deal ids to read, in page order
        known: dict[str, dict[str, Any]] = {}  # deal id -> properties (read, not yet released)
        wanted: set[str] = set()

        def release() -> Iterator[Page]:
            while pending:
                head = pending[0]
                needed = {d for ids in head.links.values() for d in ids}
                if not needed <= known.keys():
                    return
                pending.popleft()
                yield self._page(stream, head, known)
                still = {d for p in pending for ids in p.links.values() for d in ids}
                for deal_id in needed - still:
                    known.pop(deal_id, None)
                    wanted.discard(deal_id)

        for item in pages:
            pending.append(item)
            for ids in item.links.values():
                for deal_id in ids:
                    if deal_id not in wanted:
                        wanted.add(deal_id)
                        queued.append(deal_id)
            while len(queued) >= BATCH:
                known.update(self._read_deals(queued[:BATCH]))
                queued = queued[BATCH:]
            yield from release()
            if len(pending) >= MAX_PENDING_PAGES and queued:
                known.update(self._read_deals(queued))
                queued = []
                yield from release()
        if queued:
            for chunk in chunks(queued, BATCH):
                known.update(self._read_deals(chunk))
        yield from release()

    def _read_deals(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        deals = self.fieldmap.deals
        if deals is None or not ids:
            return {}
        names = list(dict.fromkeys(deals.fields.values()))
        body = {"inputs": [{"id": i} for i in ids], "properties": names}
        answer = self._call("batch read deals", "deals.batch",
                            lambda api: api.read(batch_read_input_simple_public_object_id=body,
                                                 archived=False, **self._raw))
        found = {str(d["id"]): _props(d) for d in _results(answer)}
        # A deal deleted since it was linked is simply gone: roll up without it.
        for deal_id in ids:
            found.setdefault(deal_id, {})
        return found

    def _page(self, stream: str, item: _Pending, deals: Mapping[str, dict[str, Any]]) -> Page:
        contacts = []
        for record in item.records:
            record_id = str(record["id"])
            props = _props(record)
            props.setdefault("hs_object_id", record_id)
            related = [deals[d] for d in item.links.get(record_id, ()) if deals.get(d)]
            facts, outputs = self.fieldmap.to_contact_facts("contacts", props, related)
            facts.setdefault("id", record_id)
            moment = coerce(props.get(self._modified) or record.get("updatedAt"), "datetime")
            owner = coerce(props.get(self._owner_field), "str") if self._owner_field else None
            contacts.append(Contact(record_id, facts, outputs, object_type="contacts",
                                    modified_at=moment, owner_id=owner))
        return Page(stream, contacts, related=item.related, ordered=item.ordered)

    # -- writing ------------------------------------------------------------------------------

    def _encode(self, output: str, value: Any) -> str:
        target = self.fieldmap.outputs.get(output)
        if target is None:
            raise ConfigError(f"output {output!r} has no HubSpot property in {self.fieldmap.path}")
        if value is None:
            return ""  # HubSpot clears a property written as ""
        if isinstance(value, date) and not isinstance(value, datetime):
            value = datetime.combine(value, dtime.min, tzinfo=UTC)
        encoded = target.encode(value)
        if isinstance(encoded, datetime):
            return _iso(encoded)
        if isinstance(encoded, bool):
            return "true" if encoded else "false"
        return str(encoded)

    def write_fields(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        """Write output properties with ``batch/update`` (100 a call); one result per record.

        Several updates of one record are merged (HubSpot rejects duplicate ids in a batch).
        """
        merged: dict[str, dict[str, str]] = {}
        for update in updates:
            values = merged.setdefault(update.record_id, {})
            for output, value in update.values.items():
                values[self.fieldmap.outputs[output].field if output in self.fieldmap.outputs
                       else output] = self._encode(output, value)
        inputs = [{"id": rid, "properties": props} for rid, props in merged.items()]
        results: list[WriteResult] = []
        for chunk in chunks(inputs, BATCH):
            results.extend(self._update("contacts", "contacts.batch", list(chunk)))
        return results

    def _update(self, what: str, api_name: str, inputs: list[dict[str, Any]]) -> list[WriteResult]:
        """Batch-update ``inputs``; a batch rejected as a whole is halved until the culprit."""
        body = {"inputs": inputs}
        try:
            answer = self._call(f"batch update {what}", api_name,
                                lambda api: api.update(
                                    batch_input_simple_public_object_batch_input=body,
                                    **self._raw))
        except _Rejected as error:
            if error.code == "PROPERTY_DOESNT_EXIST":
                # Every record would fail the same way, on every run: a setup problem, not a
                # bad record. Halving down to single records would only multiply the calls.
                raise ConfigError(f"HubSpot batch update {what}: a crmsync property does not "
                                  "exist in this portal; run `crmsync setup`") from error
            if len(inputs) == 1:
                return [WriteResult(str(inputs[0]["id"]), False, error.code or error.category
                                    or f"HTTP_{error.status}", str(error), retryable=False)]
            half = len(inputs) // 2
            return (self._update(what, api_name, inputs[:half])
                    + self._update(what, api_name, inputs[half:]))
        ids = [str(i["id"]) for i in inputs]
        ok = {str(r["id"]) for r in _results(answer)}
        failed = self._batch_errors(answer, [i for i in ids if i not in ok])
        out = []
        for record_id in ids:
            if record_id in ok:
                out.append(WriteResult(record_id, True))
            else:
                code, message = failed.get(record_id, ("MISSING_FROM_RESPONSE",
                                                       "HubSpot did not report this record"))
                out.append(WriteResult(record_id, False, code, message,
                                       retryable=code in RETRYABLE))
        return out

    @staticmethod
    def _batch_errors(answer: Any, unmatched: list[str]) -> dict[str, tuple[str, str]]:
        """Map a 207's errors onto record ids (``context.ids``); the rest by elimination."""
        failed: dict[str, tuple[str, str]] = {}
        loose: list[tuple[str, str]] = []
        for error in answer.get("errors") or []:
            details = [d for d in error.get("errors") or [] if isinstance(d, dict)]
            category = str(error.get("category") or "ERROR")
            code = (details[0].get("code") if details else None) or category
            # Category and code only: HubSpot's messages can quote the values sent.
            message = category + (f" {code}" if code != category else "")
            context = error.get("context") or {}
            ids = [str(i) for i in (context.get("ids") or context.get("id") or [])]
            if ids:
                for record_id in ids:
                    failed[record_id] = (str(code), message)
            else:
                loose.append((str(code), message))
        rest = [i for i in unmatched if i not in failed]
        if loose:
            for index, record_id in enumerate(rest):
                failed[record_id] = loose[min(index, len(loose) - 1)]
        return failed

    # -- tasks --------------------------------------------------------------------------------

    def _task_input(self, create: TaskCreate) -> dict[str, Any]:
        tasks = self.fieldmap.tasks
        f = tasks.fields
        spec = create.spec
        due = datetime.combine(spec.due, dtime(12, 0), tzinfo=UTC)
        values: dict[str, str] = {
            f.get("subject", "hs_task_subject"): spec.subject,
            f.get("body", "hs_task_body"): f"{spec.body}\n{KEY_MARK.format(key=create.key)}",
            f.get("due", "hs_timestamp"): _iso(due),
            f.get("status", "hs_task_status"): tasks.open_status,
            f.get("priority", "hs_task_priority"): tasks.priority_values.get(spec.priority,
                                                                             spec.priority),
        }
        if "type" in f:
            values[f["type"]] = "TODO"
        owner = create.owner_id or self.owner_fallback
        if owner:
            values[f.get("owner", "hubspot_owner_id")] = owner
        return {
            "properties": values,
            "associations": [{"to": {"id": create.contact_id}, "types": [
                {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": TASK_TO_CONTACT}]}],
        }

    def create_tasks(self, creates: Sequence[TaskCreate]) -> list[WriteResult]:
        """Create tasks with ``batch/create`` (100 a call), associated with their contacts.

        After a failure that may have created them (5xx, timeout, dropped connection) the
        connector looks the keys up and re-creates only the missing ones.
        """
        results: list[WriteResult] = []
        unique = list({c.key: c for c in creates}.values())
        for chunk in chunks(unique, BATCH):
            results.extend(self._create(list(chunk), self.policy.attempts))
        by_key = {r.key: r for r in results}
        return [by_key[c.key] for c in creates]

    def _create(self, batch: list[TaskCreate], rounds: int) -> list[WriteResult]:
        if not batch:
            return []
        body = {"inputs": [self._task_input(c) for c in batch]}
        try:
            answer = self._call("batch create tasks", "tasks.batch",
                                lambda api: api.create(
                                    batch_input_simple_public_object_batch_input_for_create=body,
                                    **self._raw),
                                idempotent=False)
        except _Unsure as unsure:
            log.info("task create outcome unknown (%s); checking what exists", unsure.error)
            # A timed-out request may still be running on HubSpot's side: give it time to land,
            # or the lookup misses its tasks and the re-create duplicates them.
            self._wait(SETTLE_S)
            found = self.find_tasks([c.contact_id for c in batch], [c.key for c in batch])
            done = [WriteResult(c.contact_id, True, task_id=found[c.key], key=c.key)
                    for c in batch if c.key in found]
            missing = [c for c in batch if c.key not in found]
            if missing and rounds <= 1:
                raise unsure.error from unsure
            return done + self._create(missing, rounds - 1)
        except _Rejected as error:
            if len(batch) == 1:
                c = batch[0]
                return [WriteResult(c.contact_id, False, error.code or error.category
                                    or f"HTTP_{error.status}", str(error), key=c.key)]
            half = len(batch) // 2
            return self._create(batch[:half], rounds) + self._create(batch[half:], rounds)
        body_field = self.fieldmap.tasks.fields.get("body", "hs_task_body")
        made = {}
        for result in _results(answer):
            key = task_key(_props(result).get(body_field))
            if key is not None:
                made[key] = str(result["id"])
        unmatched = [c.key for c in batch if c.key not in made]
        failed = self._batch_errors(answer, unmatched)
        out = []
        for c in batch:
            if c.key in made:
                out.append(WriteResult(c.contact_id, True, task_id=made[c.key], key=c.key))
            else:
                code, message = failed.get(c.key, ("MISSING_FROM_RESPONSE",
                                                   "HubSpot did not report this task"))
                out.append(WriteResult(c.contact_id, False, code, message,
                                       retryable=code in RETRYABLE, key=c.key))
        return out

    def find_tasks(self, contact_ids: Sequence[str], keys: Sequence[str]) -> dict[str, str]:
        """Return ``{key: task id}`` for open crmsync tasks of these contacts carrying ``keys``.

        One v4 association read per 1000 contacts, then one task batch read per 100 tasks.
        """
        wanted = set(keys)
        if not wanted or not contact_ids:
            return {}
        links = self._associated("contacts", "tasks", list(dict.fromkeys(contact_ids)))
        task_ids = list(dict.fromkeys(t for ids in links.values() for t in ids))
        f = self.fieldmap.tasks.fields
        body_field = f.get("body", "hs_task_body")
        status_field = f.get("status", "hs_task_status")
        found: dict[str, str] = {}
        for chunk in chunks(task_ids, BATCH):
            body = {"inputs": [{"id": t} for t in chunk], "properties": [body_field, status_field]}
            answer = self._call("batch read tasks", "tasks.batch",
                                lambda api, b=body: api.read(
                                    batch_read_input_simple_public_object_id=b, archived=False,
                                    **self._raw))
            for task in _results(answer):
                props = _props(task)
                key = task_key(props.get(body_field))
                closed = props.get(status_field) == self.fieldmap.tasks.closed_status
                if key not in wanted or closed:
                    continue
                # Two open tasks for one key (should not happen): report the oldest, stably.
                current = found.get(key)
                if current is None or int(str(task["id"])) < int(current):
                    found[key] = str(task["id"])  # type: ignore[index]
        return found

    def close_tasks(self, closes: Sequence[TaskClose]) -> list[WriteResult]:
        """Set the tasks' status to the field map's closed status (``batch/update``, 100 a call)."""
        status_field = self.fieldmap.tasks.fields.get("status", "hs_task_status")
        keys = {c.task_id: c.key for c in closes}
        inputs = [{"id": task_id, "properties": {status_field: self.fieldmap.tasks.closed_status}}
                  for task_id in keys]
        out: list[WriteResult] = []
        for chunk in chunks(inputs, BATCH):
            for result in self._update("tasks", "tasks.batch", list(chunk)):
                out.append(WriteResult(result.record_id, result.ok, result.error_code,
                                       result.message, result.retryable,
                                       key=keys.get(result.record_id)))
        return out

    # -- setup and check ----------------------------------------------------------------------

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
            kind = kinds.get(output, {"type": "string", "fieldType": "text"})
            wanted[target.field] = {
                "name": target.field, "label": _OUTPUT_LABELS.get(output, output),
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

    def _existing_properties(self, names: Sequence[str]) -> set[str]:
        body = {"inputs": [{"name": n} for n in names], "archived": False}
        answer = self._call("read properties", "properties.batch",
                            lambda api: api.read("contacts", batch_read_input_property_name=body,
                                                 **self._raw))
        return {str(p["name"]) for p in _results(answer)}

    def check(self) -> None:
        """One call: proves the token works and that every crmsync property exists.

        Raises:
            AuthError: The token was refused or lacks a scope.
            ConfigError: Properties are missing (named), with the command that creates them.
        """
        wanted = list(self._wanted_properties())
        existing = self._existing_properties(wanted)
        missing = [n for n in wanted if n not in existing]
        if missing:
            raise ConfigError(f"HubSpot contact properties missing: {', '.join(missing)}; "
                              "run `crmsync setup` to create them")

    def setup(self) -> SetupReport:
        """Create the ``crmsync`` property group and crmsync's contact properties; idempotent.

        Reads what exists first (one call), creates the group if needed and the missing
        properties in one batch; a 409 (created meanwhile) counts as existing.
        """
        wanted = self._wanted_properties()
        existing = self._existing_properties(list(wanted))
        missing = [name for name in wanted if name not in existing]
        report = SetupReport(created=[], existing=[n for n in wanted if n in existing])
        if not missing:
            return report
        group = {"name": GROUP, "label": "CRM Sync", "displayOrder": -1}
        try:
            self._call("create property group", "properties.groups",
                       lambda api: api.create("contacts", property_group_create=group,
                                              **self._raw))
        except _Rejected as error:
            if error.status != 409:
                raise
        body = {"inputs": [wanted[name] for name in missing]}
        try:
            answer = self._call("create properties", "properties.batch",
                                lambda api: api.create("contacts", batch_input_property_create=body,
                                                       **self._raw))
            made = {str(p["name"]) for p in _results(answer)}
        except _Rejected as error:
            if error.status != 409:
                raise
            made = set()
        for name in missing:
            if name in made:
                report.created.append(name)
                continue
            # Not in the batch answer (409 for the batch, or a 207 error): one by one.
            try:
                self._call("create property", "properties.core",
                           lambda api, n=name: api.create("contacts", property_create=wanted[n],
                                                          **self._raw))
                report.created.append(name)
            except _Rejected as error:
                if error.status != 409:
                    raise
                report.existing.append(name)
        return report

    # -- accounting ---------------------------------------------------------------------------

    def api_calls(self) -> int:
        """Return the HTTP calls made so far, retries included."""
        return self._calls

    def close(self) -> None:
        """Release the HTTP connection pools."""
        for api in self._apis.values():
            pool = getattr(getattr(api.api_client, "rest_client", None), "pool_manager", None)
            if pool is not None:
                pool.clear()
        self._apis.clear()


__all__ = ["HubSpotConnector", "task_key", "translate"]
