"""Pacing: when may the next CRM call be sent? One answer per CRM connection, for every caller.

Every HTTP call a connector makes first asks its :class:`Pacer` (``acquire``), and tells it what
the CRM's headers said afterwards (``observe``) or that the CRM answered "too many requests"
(``backoff``). Several threads, or several connectors of the same portal or org, share one pacer,
so the connection as a whole stays within the CRM's limits, not each caller on its own.

A *bucket* is one rate limit of the connection: HubSpot has its 10-second rolling bucket
(``burst``) and a separate search bucket (``search``); Salesforce has one (``api``). The daily
allowance is one per connection, whichever bucket's response reported it.

:class:`LocalPacer` is the in-process implementation (threads of one process). A pacer shared by
processes (Celery workers) implements the same three methods over a store they share (Redis):

* ``acquire(bucket)`` blocks until one call may go: no backoff is pending for the bucket, fewer
  than ``limit - reserve`` calls went out in the last ``interval_s``, the last known ``remaining``
  is above the reserve; it raises :class:`~crmsync.errors.QuotaExhausted` once the daily
  allowance, less ``reserve_daily_percent`` of it, is used up. It counts the call it admits.
* ``observe(bucket, ...)`` records the latest figures (``None`` means "not said"): the bucket's
  ``limit`` per ``interval_s``, ``remaining`` in the current interval, the connection's
  ``daily_limit`` and ``daily_remaining``.
* ``backoff(bucket, seconds)`` holds every caller of the bucket for ``seconds`` from now.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from crmsync import stopping
from crmsync.errors import QuotaExhausted

log = logging.getLogger("crmsync.connectors.pacing")

#: Waits for a window slot end this long after the oldest call leaves it: servers count in
#: milliseconds and their clock is not ours.
EDGE_S = 0.005


@runtime_checkable
class Pacer(Protocol):
    """Decides when a CRM call may be sent; shared by every caller of one CRM connection."""

    def acquire(self, bucket: str) -> None:
        """Block (sleeping) until one call in ``bucket`` may be sent, and count it.

        Raises:
            QuotaExhausted: The daily allowance, less the reserve, is used up.
        """
        ...

    def observe(
        self, bucket: str, *, remaining: int | None = None, limit: int | None = None,
        interval_s: float | None = None, daily_remaining: int | None = None,
        daily_limit: int | None = None,
    ) -> None:
        """Record what the CRM's headers said after a call in ``bucket`` (``None``: not said)."""
        ...

    def backoff(self, bucket: str, seconds: float) -> None:
        """The CRM answered 429 (or asked to wait): nobody calls in ``bucket`` for ``seconds``."""
        ...


@dataclass
class _Bucket:
    """What one bucket knows: its limit, the calls admitted in the window, a pending backoff."""

    limit: int | None = None
    interval_s: float = 10.0
    remaining: int | None = None
    paused_until: float = 0.0
    sent: deque[float] = field(default_factory=deque)


class LocalPacer:
    """A thread-safe in-process :class:`Pacer` (one per CRM connection, shared by its threads).

    Args:
        reserve_daily_percent: Share of the daily limit (0-100) left to other integrations:
            ``acquire`` raises QuotaExhausted once the daily remaining is at or below it (at
            zero when the daily limit is not known).
        window_reserve: Calls per window to leave unused, by bucket (other apps share a HubSpot
            portal's 10-second bucket; in-flight calls of other threads land late).
        clock: Monotonic seconds (tests pass a fake shared with the emulator).
        sleep: Sleeps for the given seconds (tests pass the fake clock's).
    """

    def __init__(
        self,
        *,
        reserve_daily_percent: float = 0.0,
        window_reserve: Mapping[str, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = stopping.sleep,
    ) -> None:
        if not 0 <= reserve_daily_percent < 100:
            raise ValueError("reserve_daily_percent must be at least 0 and below 100")
        self.reserve_daily_percent = reserve_daily_percent
        self.window_reserve = dict(window_reserve or {})
        self.clock = clock
        self.sleep = sleep
        self._lock = threading.Lock()
        self._buckets: dict[str, _Bucket] = {}
        self._daily_remaining: int | None = None
        self._daily_limit: int | None = None
        #: Calls admitted so far, by bucket.
        self.admitted: dict[str, int] = {}
        #: ``backoff`` calls so far (the CRM's 429s and limit answers), by bucket.
        self.backoffs: dict[str, int] = {}

    def _bucket(self, name: str) -> _Bucket:
        bucket = self._buckets.get(name)
        if bucket is None:
            bucket = self._buckets[name] = _Bucket()
        return bucket

    def acquire(self, bucket: str) -> None:
        """Block until one call in ``bucket`` may go, and count it (see :class:`Pacer`)."""
        while True:
            with self._lock:
                self._check_daily()
                state = self._bucket(bucket)
                now = self.clock()
                wait = self._wait_s(bucket, state, now)
                if wait <= 0:
                    state.sent.append(now)
                    if state.remaining is not None:
                        state.remaining -= 1
                    if self._daily_remaining is not None:
                        # Until the next response says otherwise, our own calls are what count.
                        self._daily_remaining -= 1
                    self.admitted[bucket] = self.admitted.get(bucket, 0) + 1
                    return
            log.debug("pacing %s: waiting %.2fs for the rate limit", bucket, wait)
            self.sleep(wait)

    def _check_daily(self) -> None:
        if self._daily_remaining is None:
            return
        reserve = (math.ceil(self._daily_limit * self.reserve_daily_percent / 100)
                   if self._daily_limit else 0)
        if self._daily_remaining <= reserve:
            used = (f"{self._daily_limit - self._daily_remaining}/{self._daily_limit}"
                    if self._daily_limit else f"all but {max(0, self._daily_remaining)}")
            kept = f", within the reserve of {reserve} kept for other integrations" if reserve \
                else ""
            raise QuotaExhausted(f"daily API requests at {used}{kept}; the run stops and "
                                 "resumes next time")

    def _wait_s(self, name: str, state: _Bucket, now: float) -> float:
        """Seconds to wait before a call in this bucket may go (0 when it may go now)."""
        while state.sent and state.sent[0] + state.interval_s + EDGE_S <= now:
            state.sent.popleft()
        if state.paused_until > now:
            return state.paused_until - now
        reserve = self.window_reserve.get(name, 0)
        if state.limit is not None and len(state.sent) >= max(1, state.limit - reserve):
            return state.sent[0] + state.interval_s + EDGE_S - now
        if state.remaining is not None and state.remaining <= reserve:
            # The CRM says the window is (nearly) full, maybe by other apps' calls: wait for our
            # oldest call to leave it, or a whole window when none of ours is in it; meanwhile
            # nobody else goes either.
            until = (state.sent[0] if state.sent else now) + state.interval_s + EDGE_S
            state.paused_until = until
            state.remaining = None
            return until - now
        return 0.0

    def observe(
        self, bucket: str, *, remaining: int | None = None, limit: int | None = None,
        interval_s: float | None = None, daily_remaining: int | None = None,
        daily_limit: int | None = None,
    ) -> None:
        """Record what the CRM's headers said (see :class:`Pacer`)."""
        with self._lock:
            state = self._bucket(bucket)
            if limit is not None and limit > 0:
                state.limit = limit
            if interval_s is not None and interval_s > 0:
                state.interval_s = interval_s
            if remaining is not None:
                state.remaining = max(0, remaining)
            if daily_limit is not None and daily_limit > 0:
                self._daily_limit = daily_limit
            if daily_remaining is not None:
                self._daily_remaining = max(0, daily_remaining)

    def backoff(self, bucket: str, seconds: float) -> None:
        """Hold every caller of ``bucket`` for ``seconds`` from now (see :class:`Pacer`)."""
        with self._lock:
            state = self._bucket(bucket)
            state.paused_until = max(state.paused_until, self.clock() + max(0.0, seconds))
            self.backoffs[bucket] = self.backoffs.get(bucket, 0) + 1
