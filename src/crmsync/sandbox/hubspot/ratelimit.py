"""HubSpot's rate limits, driven by the emulator clock: 10 s rolling, search per second, daily.

Defaults are a Free/Starter private app (100 per 10 s, 250,000 a day) and the search API's own
5 per second (§3.3). A rejected call is not counted, like on the real service. Tests raise the
limits for speed or move the injected clock instead of sleeping.
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

    def update(self, raw: dict[str, Any]) -> None:
        """Apply ``{"per_10s", "search_per_s", "daily", "enabled"}`` (any subset)."""
        for key in ("per_10s", "search_per_s", "daily"):
            if key in raw:
                value = raw[key]
                if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                    raise ValueError(f"rate_limits.{key} must be a positive integer")
                setattr(self, key, value)
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
        }


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
            (self._search, SEARCH_WINDOW_MS) if policy == "SECONDLY" else (self._window, WINDOW_MS)
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
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(WINDOW_MS),
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
        while self._window and self._window[0] <= now_ms - WINDOW_MS:
            self._window.popleft()
        while self._search and self._search[0] <= now_ms - SEARCH_WINDOW_MS:
            self._search.popleft()
        day = now_ms // DAY_MS  # the account's time zone is UTC in the sandbox
        if day != self._day:
            self._day = day
            self._daily_used = 0
