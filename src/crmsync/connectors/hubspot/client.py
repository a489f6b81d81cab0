"""The HubSpot client: SDK calls with pacing, counting, error translation and the retry policy.

Every HTTP call of the connector goes through :meth:`HubSpotClient.call`: it asks the
connection's :class:`~crmsync.connectors.pacing.Pacer` first (the ``burst`` bucket: HubSpot's
10-second rolling limit, learnt from the ``X-HubSpot-RateLimit-*`` headers; the ``search``
bucket: 5 per second), counts the call, translates vendor errors
(:func:`~crmsync.connectors.hubspot.errors.translate`), tells the pacer about 429s and the
headers, and retries transient errors through :func:`crmsync.retry.retrying`. urllib3's own
retries are off (``Retry(total=0)``) so exactly one policy applies and every HTTP call is counted.
Response bodies are taken raw and parsed as JSON here: the SDK's model layer (two dateutil
parses per record) cost half a read's CPU.

Thread safety: one client serves any number of threads. The SDK's API objects are built once
under a lock; their only shared mutable state used per call, ``api_client.last_response``, is
never read: the rate-limit headers come from the response each call returns. The call counter
is locked, tenacity keeps its retry state per thread, and urllib3's connection pool is
thread-safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from hubspot import HubSpot
from urllib3.util.retry import Retry

from crmsync import stopping
from crmsync.connectors.hubspot.errors import _RateLimited, _Rejected, _Unsure, translate
from crmsync.connectors.hubspot.wire import SEARCH_PER_SECOND, WINDOW_RESERVE, _json
from crmsync.connectors.pacing import LocalPacer, Pacer
from crmsync.errors import ConfigError, QuotaExhausted, TransientError
from crmsync.retry import RetryPolicy, retrying

log = logging.getLogger("crmsync.connectors.hubspot")
# The SDK's rest.py logs whole response bodies (contact data) at DEBUG; urllib3 logs URLs.
for _name in ("hubspot", "urllib3"):
    logging.getLogger(_name).setLevel(logging.WARNING)

T = TypeVar("T")

#: The real HubSpot API origin (the SDK's default host).
DEFAULT_ORIGIN = "https://api.hubapi.com"
#: Pacer bucket of HubSpot's 10-second rolling limit (every call but searches).
BURST = "burst"
#: Pacer bucket of the CRM search endpoints (5 per second, exempt from the 10-second limit).
SEARCH = "search"


def hubspot_pacer(
    *, reserve_daily_percent: float = 0.0, window_reserve: int = WINDOW_RESERVE,
    clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = stopping.sleep,
) -> LocalPacer:
    """Return a :class:`LocalPacer` for one HubSpot portal, to share between its connectors.

    It keeps ``window_reserve`` calls of each 10-second window unused (other apps share the
    portal's limit, and calls already in flight land after the pacer counted them: keep it at
    least the number of calls sent at once, e.g. ``[sync] concurrency``) and knows the search
    bucket's 5 per second; the 10-second limit and the daily figures it learns from HubSpot's
    headers.
    """
    pacer = LocalPacer(reserve_daily_percent=reserve_daily_percent,
                       window_reserve={BURST: window_reserve}, clock=clock, sleep=sleep)
    pacer.observe(SEARCH, limit=SEARCH_PER_SECOND, interval_s=1.0)
    return pacer


class HubSpotClient:
    """The SDK client of one HubSpot account, with pacing, call counting and retries.

    Args:
        token: Private-app access token.
        base_url: API origin; ``None`` for the real HubSpot.
        policy: Retry policy for transient failures.
        sleep: Sleep function used between retries and for pacing.
        clock: Monotonic seconds, for client-side pacing.
        timeout: (connect, read) timeout in seconds of every HTTP call.
        on_retry: Told about each retry (the error and the wait) before it waits.
        pacer: The portal's pacer, shared with other clients of the same portal; default: a
            :func:`hubspot_pacer` of this client's own.
        reserve_daily_percent: Share of the daily limit left to other integrations (only for
            the default pacer; a given pacer has its own).
    """

    def __init__(
        self,
        *,
        token: str,
        base_url: str | None,
        policy: RetryPolicy,
        sleep: Callable[[float], None] = stopping.sleep,
        clock: Callable[[], float] = time.monotonic,
        timeout: tuple[float, float] = (10.0, 120.0),
        on_retry: Callable[[TransientError, float], None] | None = None,
        pacer: Pacer | None = None,
        reserve_daily_percent: float = 0.0,
    ) -> None:
        self.policy = policy
        self.on_retry = on_retry
        self.sleep = sleep
        self.clock = clock
        self.timeout = timeout
        #: Per-call SDK options: our timeout, and the raw body (parsed in :meth:`call`).
        self.raw: dict[str, Any] = {"_request_timeout": timeout, "_preload_content": False}
        #: The API origin, named in network and wrong-URL errors.
        self.base_url = base_url.rstrip("/") if base_url else DEFAULT_ORIGIN
        # Retry(total=0): urllib3 must not retry on its own (uncounted calls, a second policy,
        # and re-sent creates); connection failures surface at once and retry.py decides.
        self._client = HubSpot(access_token=token, host=base_url.rstrip("/") if base_url else None,
                               retry=Retry(total=0, redirect=0, raise_on_status=False))
        self._apis: dict[str, Any] = {}
        self._retry = retrying(self.policy, sleep=self.sleep, on_retry=self._retried)
        self._calls = 0
        self._lock = threading.Lock()
        if pacer is None:
            pacer = hubspot_pacer(reserve_daily_percent=reserve_daily_percent, clock=clock,
                                  sleep=sleep)
        else:
            # What every HubSpot portal allows searches, whoever built the pacer.
            pacer.observe(SEARCH, limit=SEARCH_PER_SECOND, interval_s=1.0)
        self.pacer: Pacer = pacer

    def _api(self, name: str) -> Any:
        """Return one generated API object, built once (each SDK access builds a new client)."""
        api = self._apis.get(name)
        if api is not None:
            return api
        with self._lock:
            api = self._apis.get(name)
            if api is not None:
                return api
            crm = self._client.crm
            api = {
                "contacts.basic": lambda: crm.contacts.basic_api,
                "contacts.batch": lambda: crm.contacts.batch_api,
                "contacts.search": lambda: crm.contacts.search_api,
                "deals.batch": lambda: crm.deals.batch_api,
                "companies.batch": lambda: crm.companies.batch_api,
                "deals.search": lambda: crm.deals.search_api,
                "tasks.batch": lambda: crm.objects.tasks.batch_api,
                "tasks.search": lambda: crm.objects.tasks.search_api,
                "associations.batch": lambda: crm.associations.v4.batch_api,
                "properties.core": lambda: crm.properties.core_api,
                "properties.batch": lambda: crm.properties.batch_api,
                "properties.groups": lambda: crm.properties.groups_api,
            }[name]()
            self._apis[name] = api
        return api

    def _retrying(self, fn: Callable[[], T]) -> T:
        # One Retrying for every thread: tenacity keeps each call's state thread-local.
        return self._retry(fn)

    def _retried(self, error: TransientError, seconds: float) -> None:
        """Log each retry as it waits (the CLI shows this logger), then tell ``on_retry``.

        The message is the translated error (operation, status or network cause): no body.
        """
        log.info("%s; retrying in %.1fs", error, seconds)
        if self.on_retry is not None:
            self.on_retry(error, seconds)

    def call(
        self, op: str, api_name: str, fn: Callable[[Any], Any], *, search: bool = False,
        idempotent: bool = True, records_may_be_gone: bool = False,
    ) -> dict[str, Any]:
        """Make one API call with pacing, counting, error translation and the retry policy.

        ``fn`` calls one generated SDK method with ``_preload_content=False``: the SDK builds
        and sends the request and raises its exceptions, and the JSON body is parsed here. (Its
        model layer parses two timestamps per record with dateutil: half the CPU of a read.)
        With ``idempotent=False`` only 429s (not processed) are retried; any other transient
        failure raises :class:`_Unsure`, because the call may have taken effect.

        A 404 means the endpoint is not there (a wrong ``base_url`` or path prefix, a server that
        is not HubSpot): a :class:`ConfigError`, not a per-record rejection. Only calls that name
        records by id (``records_may_be_gone=True``: batch updates) may see HubSpot's
        ``OBJECT_NOT_FOUND`` 404 for records deleted meanwhile; that one stays a rejection.
        """
        api = self._api(api_name)
        bucket = SEARCH if search else BURST

        def attempt() -> dict[str, Any]:
            stopping.check()  # every call is a safe point for a SIGTERM to stop a run
            try:
                self.pacer.acquire(bucket)
            except QuotaExhausted as exc:
                raise QuotaExhausted(f"HubSpot {op}: {exc}") from None
            with self._lock:
                self._calls += 1
            try:
                # Reading the body is part of the call: a connection dropped mid-body fails it.
                response = fn(api)
                result = _json(response)
            except Exception as exc:  # noqa: BLE001 - translated below, or re-raised as is
                error = translate(op, exc, self.base_url)
                if error is None:
                    raise
                if isinstance(error, _RateLimited):
                    # Hold every caller of this portal's bucket, not just this retry loop.
                    self.pacer.backoff(bucket, error.retry_after or 0.0)
                if (isinstance(error, _Rejected) and error.status == 404
                        and not (records_may_be_gone and error.category == "OBJECT_NOT_FOUND")):
                    raise ConfigError(
                        f"HubSpot {op}: check [crm] base_url: {self.base_url} answered 404 "
                        "(not found) for this HubSpot endpoint; it should be the API origin "
                        f"with no path, e.g. {DEFAULT_ORIGIN}") from exc
                if (not idempotent and isinstance(error, TransientError)
                        and not isinstance(error, _RateLimited)):
                    raise _Unsure(error) from exc
                raise error from exc
            if not search:
                self._observe(response)
            return result

        return self._retrying(attempt)

    def _observe(self, response: Any) -> None:
        """Tell the pacer what this response's ``X-HubSpot-RateLimit-*`` headers said."""
        getheader = getattr(response, "getheader", None)
        if getheader is None:
            return

        def number(name: str) -> int | None:
            raw = getheader(name)
            try:
                return int(raw) if raw is not None else None
            except ValueError:
                return None  # an odd header is treated as missing, never a crash

        interval = number("X-HubSpot-RateLimit-Interval-Milliseconds")
        self.pacer.observe(
            BURST, remaining=number("X-HubSpot-RateLimit-Remaining"),
            limit=number("X-HubSpot-RateLimit-Max"),
            interval_s=interval / 1000 if interval else None,
            daily_remaining=number("X-HubSpot-RateLimit-Daily-Remaining"),
            daily_limit=number("X-HubSpot-RateLimit-Daily"))

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` (through the injected sleep), e.g. to let a lost create land."""
        if seconds > 0:
            self.sleep(seconds)

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
