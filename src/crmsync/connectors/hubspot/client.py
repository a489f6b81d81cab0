"""The HubSpot client: SDK calls with pacing, counting, error translation and the retry policy.

Every HTTP call of the connector goes through :meth:`HubSpotClient.call`: it paces by the
``X-HubSpot-RateLimit-*`` headers and a 5-per-second search budget, counts the call, translates
vendor errors (:func:`~crmsync.connectors.hubspot.errors.translate`) and retries transient ones
through :func:`crmsync.retry.retrying`. urllib3's own retries are off (``Retry(total=0)``) so
exactly one policy applies and every HTTP call is counted. Response bodies are taken raw and
parsed as JSON here: the SDK's model layer (two dateutil parses per record) cost half a read's
CPU.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

from hubspot import HubSpot
from tenacity import Retrying
from urllib3.util.retry import Retry

from crmsync.connectors.hubspot.errors import _RateLimited, _Rejected, _Unsure, translate
from crmsync.connectors.hubspot.wire import SEARCH_PER_SECOND, WINDOW_RESERVE, _json
from crmsync.errors import ConfigError, QuotaExhausted, TransientError
from crmsync.retry import RetryPolicy, retrying

log = logging.getLogger("crmsync.connectors.hubspot")
# The SDK's rest.py logs whole response bodies (contact data) at DEBUG; urllib3 logs URLs.
for _name in ("hubspot", "urllib3"):
    logging.getLogger(_name).setLevel(logging.WARNING)

T = TypeVar("T")

#: The real HubSpot API origin (the SDK's default host).
DEFAULT_ORIGIN = "https://api.hubapi.com"


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
    """

    def __init__(
        self,
        *,
        token: str,
        base_url: str | None,
        policy: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        timeout: tuple[float, float] = (10.0, 120.0),
        on_retry: Callable[[TransientError, float], None] | None = None,
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
        self._retry: Retrying | None = None
        self._calls = 0
        self._lock = threading.Lock()
        # Pacing state: our recent calls per bucket, and what the last response said is left.
        self._window: deque[float] = deque()
        self._searches: deque[float] = deque()
        self._remaining: int | None = None
        self._daily_remaining: int | None = None
        self._interval_s = 10.0

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
                "tasks.search": lambda: crm.objects.tasks.search_api,
                "associations.batch": lambda: crm.associations.v4.batch_api,
                "properties.core": lambda: crm.properties.core_api,
                "properties.batch": lambda: crm.properties.batch_api,
                "properties.groups": lambda: crm.properties.groups_api,
            }[name]()
            self._apis[name] = api
        return api

    def _retrying(self, fn: Callable[[], T]) -> T:
        if self._retry is None:
            self._retry = retrying(self.policy, sleep=self.sleep, on_retry=self._retried)
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

        def attempt() -> dict[str, Any]:
            self._pace(search)
            with self._lock:
                self._calls += 1
            try:
                # Reading the body is part of the call: a connection dropped mid-body fails it.
                result = _json(fn(api))
            except Exception as exc:  # noqa: BLE001 - translated below, or re-raised as is
                error = translate(op, exc, self.base_url)
                if error is None:
                    raise
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
                self.wait(bucket[0] + width - now)
                now = self.clock()
        else:
            bucket, width = self._window, self._interval_s
            while bucket and bucket[0] <= now - width:
                bucket.popleft()
            if self._remaining is not None and self._remaining <= WINDOW_RESERVE:
                # The oldest of our calls leaving the window frees a slot; with no call of ours
                # in it (another app used the budget), wait a whole window.
                self.wait(bucket[0] + width - now if bucket else width)
                self._remaining = None
                now = self.clock()
        bucket.append(now)

    def wait(self, seconds: float) -> None:
        if seconds > 0:
            log.debug("pacing: waiting %.2fs for the rate limit", seconds)
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
