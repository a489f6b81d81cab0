"""The SDK seam: one simple-salesforce client with pacing, retries, accounting and paging.

Every HTTP call of the connector goes through :meth:`SalesforceClient.call`: it logs in lazily,
asks the connection's :class:`~crmsync.connectors.pacing.Pacer` (bucket ``api``), which stops the
run before it dips into the reserved share of the daily quota (fed by every response's
``Sforce-Limit-Info``) and holds every caller after a concurrent-request refusal that said how
long to wait; then it runs the call under :func:`crmsync.retry.retrying` (simple-salesforce never
retries) and translates vendor errors with
:func:`~crmsync.connectors.salesforce.translate._translated`.

Thread safety: one client serves any number of threads, sharing one simple-salesforce client and
its ``requests`` session (urllib3's pool is thread-safe and keeps 10 connections per host).
Per-call state lives in the call (the
response hook keeps ``Retry-After`` per thread), the call counter is locked, and logging in,
first or again, happens under one lock: when a call the SDK does not refresh (Bulk 2.0) meets an
expired session, one thread logs in again and the others use its session.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar
from urllib.parse import quote_plus

import requests
from simple_salesforce import Salesforce

from crmsync import stopping
from crmsync.connectors.pacing import LocalPacer, Pacer
from crmsync.connectors.salesforce.auth import SalesforceAuth
from crmsync.connectors.salesforce.soql import chunk_in_clauses, soql_string
from crmsync.connectors.salesforce.translate import (
    _retry_after,
    _SessionExpired,
    _Throttled,
    _translated,
)
from crmsync.errors import CrmRequestError, QuotaExhausted
from crmsync.retry import RetryPolicy, retrying

T = TypeVar("T")

#: Largest query page Salesforce serves (``Sforce-Query-Options: batchSize``).
QUERY_PAGE = 2000
#: Keep request URLs (SOQL travels in the query string) under this many characters.
MAX_URL_CHARS = 16_000
#: The retry policy used when none is given (frozen, so one shared instance is safe).
DEFAULT_POLICY = RetryPolicy()
#: The pacer bucket of every Salesforce call (the org's API requests).
API = "api"
#: The org's own figure: ``api-usage=U/L``, not ``per-app-api-usage=…`` (a connected app's
#: share), whichever order a real org sends the parts in.
_USAGE = re.compile(r"(?<![\w-])api-usage=(\d+)/(\d+)")


def daily_usage(limit_info: str) -> tuple[int, int] | None:
    """Return (used, limit) of the org's daily API requests from ``Sforce-Limit-Info``."""
    found = _USAGE.search(limit_info or "")
    return (int(found.group(1)), int(found.group(2))) if found else None
_PAGE_HEADERS = {"Sforce-Query-Options": f"batchSize={QUERY_PAGE}"}


class SalesforceClient:
    """One org's simple-salesforce client, connected on first use; thread-safe.

    Args:
        auth: How to authenticate.
        api_version: REST API version, pinned so a client upgrade cannot change behaviour.
        policy: Retry policy for transient failures.
        sleep: Sleep function used between retries.
        quota_reserve: Fraction of the daily API allocation left to other integrations (for
            the default pacer; a given pacer has its own reserve).
        timeout: (connect, read) timeout in seconds of every HTTP call.
        pacer: The org's pacer, shared by every client of the org; default: a
            :class:`LocalPacer` of this client's own.
    """

    def __init__(
        self,
        auth: SalesforceAuth,
        *,
        api_version: str = "59.0",
        policy: RetryPolicy = DEFAULT_POLICY,
        sleep: Callable[[float], None] = stopping.sleep,
        quota_reserve: float = 0.02,
        timeout: tuple[float, float] = (10.0, 120.0),
        pacer: Pacer | None = None,
    ) -> None:
        self.auth = auth
        self.api_version = api_version
        self.policy = policy
        self.sleep = sleep
        self.quota_reserve = quota_reserve
        self.timeout = timeout
        self.pacer: Pacer = pacer if pacer is not None else LocalPacer(
            reserve_daily_percent=quota_reserve * 100, sleep=sleep)
        self._sf: Salesforce | None = None
        self._login_lock = threading.Lock()
        self._calls = 0
        self._calls_lock = threading.Lock()
        self._last = threading.local()
        # Separate Retrying objects: a re-login runs inside a call's retry loop, and tenacity's
        # per-thread state must not be shared by nested loops.
        self._retry = retrying(self.policy, sleep=self.sleep)
        self._login_retry = retrying(self.policy, sleep=self.sleep)

    def sf(self) -> Salesforce:
        """Return the simple-salesforce client, logging in (with retries) on first use."""
        sf = self._sf
        if sf is None:
            with self._login_lock:
                if self._sf is None:
                    self._sf = self._connect()
                sf = self._sf
        return sf

    def _connect(self) -> Salesforce:
        def connect() -> Salesforce:
            with _translated("login", self._last_retry_after, self._base_url()):
                # The hook goes in first so that login calls are counted too.
                return self.auth.connect(self.api_version, on_response=self._on_response)

        return self._login_retry(connect)

    def _relogin(self, stale: Salesforce) -> Salesforce:
        """Log in again after ``stale``'s session expired; one login for all threads."""
        with self._login_lock:
            if self._sf is stale:
                self._sf = self._connect()
            assert self._sf is not None
            return self._sf

    def _base_url(self) -> str:
        """Where calls go before login tells otherwise (the instance, or the login host)."""
        return self.auth.instance_url or f"https://{self.auth.domain}.salesforce.com"

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        with self._calls_lock:
            self._calls += 1
        self._last.retry_after = _retry_after(response.headers.get("Retry-After"))
        usage = daily_usage(response.headers.get("Sforce-Limit-Info") or "")
        if usage:
            used, total = usage
            self.pacer.observe(API, daily_remaining=total - used, daily_limit=total)

    def _last_retry_after(self) -> float | None:
        return getattr(self._last, "retry_after", None)

    def _retrying(self, fn: Callable[[], T]) -> T:
        return self._retry(fn)

    def call(self, op: str, fn: Callable[[Salesforce], T]) -> T:
        """Run one API call with pacing, quota guard, error translation and the retry policy.

        A 401 the SDK did not refresh (Bulk 2.0 calls; password and JWT auth only) logs in
        again once and repeats the call.
        """
        # Logging in has its own retries (inside sf()): keep them out of this loop.
        self.sf()

        def attempt() -> T:
            stopping.check()  # every call is a safe point for a SIGTERM to stop a run
            sf = self.sf()
            for fresh in (False, True):
                try:
                    self.pacer.acquire(API)
                except QuotaExhausted as exc:
                    raise QuotaExhausted(f"Salesforce {op}: {exc}") from None
                self._last.retry_after = None
                try:
                    with _translated(op, self._last_retry_after, sf.base_url):
                        return fn(sf)
                except _SessionExpired:
                    if fresh or self.auth.mode == "session":
                        raise  # a session id given to us cannot be renewed by us
                    sf = self._relogin(sf)
                except _Throttled as error:
                    if error.retry_after:
                        # The org is busy: hold every caller of this connection, not only us.
                        self.pacer.backoff(API, error.retry_after)
                    raise
            raise AssertionError("unreachable")

        return self._retrying(attempt)

    def query_pages(self, op: str, soql: str) -> Iterator[list[dict[str, Any]]]:
        """Yield the record lists of every page of a query, one HTTP call per page."""
        yield from self.more_pages(op, self.query_first(op, soql))

    def query_first(self, op: str, soql: str) -> dict[str, Any]:
        """Run a query and return its first page (``totalSize`` counts every match)."""
        return self.call(op, lambda sf: sf.query(soql, headers=_PAGE_HEADERS,
                                                 timeout=self.timeout))

    def more_pages(self, op: str, result: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Yield the records of ``result`` (a first page), then of every following page."""
        headers = _PAGE_HEADERS
        seen: set[str] = set()
        while True:
            yield list(result.get("records") or [])
            next_url = result.get("nextRecordsUrl")
            if result.get("done", True) or not next_url:
                return
            if next_url in seen:  # a server bug would otherwise loop forever
                raise CrmRequestError(f"Salesforce {op}: query locator repeated")
            seen.add(next_url)
            result = self.call(op, lambda sf, url=next_url: sf.query_more(
                url, identifier_is_url=True, headers=headers, timeout=self.timeout))

    def _in_budget(self, soql_without_ids: str) -> int:
        sf = self.sf()
        fixed = len(sf.base_url) + len("query/?q=") + len(quote_plus(soql_without_ids))
        return max(200, MAX_URL_CHARS - fixed)

    def query_in(
        self, op: str, select_from: str, in_field: str, ids: Sequence[str], tail: str = ""
    ) -> Iterator[list[dict[str, Any]]]:
        """Query ``select_from WHERE in_field IN (<ids>) tail``, chunking ids to keep URLs short."""
        template = f"{select_from} WHERE {in_field} IN ({{}}){tail}"
        budget = self._in_budget(template.format(""))
        # Ids are case-sensitive (15-character form): de-duplicate exactly.
        for chunk in chunk_in_clauses(list(dict.fromkeys(ids)), budget):
            yield from self.query_pages(op, template.format(",".join(map(soql_string, chunk))))

    def api_calls(self) -> int:
        """Return the HTTP calls made so far (retries and re-logins included)."""
        return self._calls

    def close(self) -> None:
        """Close the HTTP session."""
        if self._sf is not None:
            self._sf.session.close()
