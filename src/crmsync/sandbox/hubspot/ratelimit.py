"""HubSpot's rate limits, driven by the emulator clock: 10 s rolling, search per second, daily.

Defaults are a Free/Starter private app (100 per 10 s, 250,000 a day) and the search API's own
5 per second (§3.3). A rejected call is not counted, like on the real service. Tests raise the
limits for speed or move the injected clock instead of sleeping.

The knobs (JSON keys of ``{"rate_limits": {...}}`` in ``POST /_sandbox/config``, of
``build_sandbox(config=...)`` and of ``crmsync sandbox serve`` options):

* ``per_10s``: calls admitted per rolling window (``TEN_SECONDLY_ROLLING``), default 100;
* ``window_s``: that window's length in seconds, default 10 (HubSpot's; shorten it in tests);
* ``search_per_s``: search calls per second (``SECONDLY``), default 5;
* ``daily``: calls per UTC day (``DAILY``), default 250,000;
* ``enabled``: false admits everything (headers still sent);
* ``retry_after``: false leaves ``Retry-After`` off limiter 429s.

The limiter is called under the server's data lock, so concurrent clients (threads or
processes, one connection each) are admitted exactly up to the limit. Every refusal is counted
in ``GET /_sandbox/calls`` under ``rate_limited`` (total) and ``rate_limited_by_policy``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

WINDOW_MS = 10_000
SEARCH_WINDOW_MS = 1_000
DAY_MS = 86_400_000


@dataclass
class RateLimits:
    """The knobs; ``enabled=False`` switches every bucket off (headers are still sent).

    ``retry_after=False`` leaves ``Retry-After`` off limiter 429s: HubSpot does not promise it.
    """

    per_10s: int = 100
    search_per_s: int = 5
    daily: int = 250_000
    enabled: bool = True
    retry_after: bool = True
    window_s: float = WINDOW_MS / 1000

    def update(self, raw: dict[str, Any]) -> None:
        """Apply ``{"per_10s", "window_s", "search_per_s", "daily", "enabled", "retry_after"}``.

        Any subset; unknown keys and bad values raise ``ValueError`` before anything changes.
        """
        unknown = set(raw) - {"per_10s", "window_s", "search_per_s", "daily", "enabled",
                              "retry_after"}
        if unknown:
            raise ValueError(f"unknown rate_limits keys {sorted(unknown)}")
        for key in ("per_10s", "search_per_s", "daily"):
            value = raw.get(key, 1)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"rate_limits.{key} must be a positive integer")
        window = raw.get("window_s", 1)
        if isinstance(window, bool) or not isinstance(window, int | float) or window <= 0:
            raise ValueError("rate_limits.window_s must be a positive number of seconds")
        for key in ("per_10s", "search_per_s", "daily"):
            if key in raw:
                setattr(self, key, raw[key])
        if "window_s" in raw:
            self.window_s = float(window)
        if "enabled" in raw:
            self.enabled = bool(raw["enabled"])
        if "retry_after" in raw:
            self.retry_after = bool(raw["retry_after"])

    def to_json(self) -> dict[str, Any]:
        """Return the knobs as JSON-ready data."""
        return {
            "per_10s": self.per_10s,
            "search_per_s": self.search_per_s,
            "daily": self.daily,
            "enabled": self.enabled,
            "retry_after": self.retry_after,
            "window_s": self.window_s,
        }

    @property
    def window_ms(self) -> int:
        """The rolling window in milliseconds."""
        return round(self.window_s * 1000)


class RateLimiter:
    """Counts calls per bucket and says which policy, if any, a new call breaks."""

    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits
        self._window: deque[int] = deque()
        self._search: deque[int] = deque()
        self._day = -1
        self._daily_used = 0

    def admit(self, now_ms: int, *, search: bool) -> str | None:
        """Count one call at ``now_ms``; return the broken policy name instead when over."""
        self._roll(now_ms)
        if not self.limits.enabled:
            self._count(now_ms, search)
            return None
        if self._daily_used >= self.limits.daily:
            return "DAILY"
        if search and len(self._search) >= self.limits.search_per_s:
            return "SECONDLY"
        if not search and len(self._window) >= self.limits.per_10s:
            return "TEN_SECONDLY_ROLLING"
        self._count(now_ms, search)
        return None

    def retry_after_s(self, now_ms: int, policy: str) -> int | None:
        """Seconds until the oldest call leaves the broken bucket (None for the daily limit)."""
        bucket, width = (
            (self._search, SEARCH_WINDOW_MS) if policy == "SECONDLY"
            else (self._window, self.limits.window_ms)
        )
        if policy == "DAILY" or not bucket:
            return None
        return max(1, -(-(bucket[0] + width - now_ms) // 1000))

    def headers(self, now_ms: int) -> dict[str, str]:
        """Return the ``X-HubSpot-RateLimit-*`` headers for a non-search response."""
        self._roll(now_ms)
        return {
            "X-HubSpot-RateLimit-Max": str(self.limits.per_10s),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.limits.per_10s - len(self._window))),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.limits.window_ms),
            "X-HubSpot-RateLimit-Daily": str(self.limits.daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(
                max(0, self.limits.daily - self._daily_used)
            ),
        }

    def reset(self) -> None:
        """Forget every counted call."""
        self._window.clear()
        self._search.clear()
        self._daily_used = 0

    def _count(self, now_ms: int, search: bool) -> None:
        (self._search if search else self._window).append(now_ms)
        self._daily_used += 1  # search calls count towards the daily total too

    def _roll(self, now_ms: int) -> None:
        while self._window and self._window[0] <= now_ms - self.limits.window_ms:
            self._window.popleft()
        while self._search and self._search[0] <= now_ms - SEARCH_WINDOW_MS:
            self._search.popleft()
        day = now_ms // DAY_MS  # the account's time zone is UTC in the sandbox
        if day != self._day:
            self._day = day
            self._daily_used = 0
