"""One rate limit for every worker of a CRM connection, kept in Redis.

:class:`RedisPacer` implements :class:`~crmsync.connectors.pacing.Pacer` with the same rules as
the in-process :class:`~crmsync.connectors.pacing.LocalPacer`, but its state lives in Redis, so
four workers on one HubSpot portal send, together, what one process may send. Each decision is
one Lua script (atomic on the server, timed by the server's own clock, so workers on different
hosts agree on "now"):

* a sliding window per bucket (a sorted set of admitted calls) capped at the bucket's limit,
  less a reserve of calls left to other integrations;
* the last ``remaining`` figure the CRM reported (shared: any worker's response tells all);
* a pause per bucket after a 429 or ``Retry-After`` (``backoff``), honoured by every worker;
* the connection's daily allowance: once what is left is within ``reserve_daily_percent`` of the
  daily limit, every worker's ``acquire`` raises :class:`~crmsync.errors.QuotaExhausted`.

Each bucket's hash also counts ``waits`` (acquires told to wait) and ``backoffs``, for
operators and tests: how often the shared limit, not the CRM, held the workers back.

The bucket limits are learnt from the CRM's headers (``observe``); until the first response
says, ``default_limits`` applies (HubSpot's published 10-second burst for private apps).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from crmsync.errors import ConfigError, QuotaExhausted

log = logging.getLogger("crmsync.workers.pacer")

#: Calls are counted by the CRM when they arrive, a little after they were admitted here (a
#: busy worker host adds its scheduling delay); waits for a window slot end this much later
#: than the oldest call leaving it.
EDGE_MS = 250

_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local st = redis.call('HMGET', KEYS[2], 'limit', 'interval_ms', 'remaining', 'paused_until')
local limit = tonumber(st[1])
local interval = tonumber(st[2]) or tonumber(ARGV[5])
local remaining = tonumber(st[3])
local paused = tonumber(st[4]) or 0
local daily = redis.call('HMGET', KEYS[3], 'limit', 'remaining')
local dlimit = tonumber(daily[1])
local dremaining = tonumber(daily[2])
if dremaining then
  local dreserve = 0
  if dlimit then dreserve = math.ceil(dlimit * tonumber(ARGV[3]) / 100) end
  if dremaining <= dreserve then return {-1, dremaining, dlimit or -1, dreserve} end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - interval)
if paused > now then
  redis.call('HINCRBY', KEYS[2], 'waits', 1)
  return {paused - now}
end
local reserve = tonumber(ARGV[2])
local n = redis.call('ZCARD', KEYS[1])
if limit and n >= math.max(1, limit - reserve) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  redis.call('HINCRBY', KEYS[2], 'waits', 1)
  return {math.max(1, tonumber(oldest[2]) + interval + tonumber(ARGV[4]) - now)}
end
if remaining and remaining <= reserve then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  local base = now
  if oldest[2] then base = tonumber(oldest[2]) end
  local resume = base + interval + tonumber(ARGV[4])
  redis.call('HSET', KEYS[2], 'paused_until', resume)
  redis.call('HDEL', KEYS[2], 'remaining')
  redis.call('HINCRBY', KEYS[2], 'waits', 1)
  return {math.max(1, resume - now)}
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], interval * 2 + 1000)
if remaining then redis.call('HSET', KEYS[2], 'remaining', remaining - 1) end
if dremaining then redis.call('HSET', KEYS[3], 'remaining', dremaining - 1) end
return {0}
"""

_BACKOFF = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local resume = now + tonumber(ARGV[1])
local paused = tonumber(redis.call('HGET', KEYS[1], 'paused_until')) or 0
if resume > paused then redis.call('HSET', KEYS[1], 'paused_until', resume) end
redis.call('HINCRBY', KEYS[1], 'backoffs', 1)
return resume
"""


class RedisPacer:
    """A :class:`~crmsync.connectors.pacing.Pacer` shared by processes through Redis.

    Args:
        client: A ``redis.Redis`` client.
        namespace: The CRM connection the limits belong to (keys ``crmsync:pace:NAMESPACE:…``).
        reserve_daily_percent: Share of the daily limit (0-100) left to other integrations.
        window_reserve: Calls per window to leave unused, by bucket.
        default_limits: ``{bucket: (limit, interval_s)}`` until the CRM's headers say.
        sleep: Sleeps for the given seconds.
    """

    def __init__(self, client: Any, namespace: str, *, reserve_daily_percent: float = 0.0,
                 window_reserve: Mapping[str, int] | None = None,
                 default_limits: Mapping[str, tuple[int, float]] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not 0 <= reserve_daily_percent < 100:
            raise ValueError("reserve_daily_percent must be at least 0 and below 100")
        self.redis = client
        self.prefix = f"crmsync:pace:{namespace}"
        self.reserve_daily_percent = reserve_daily_percent
        self.window_reserve = dict(window_reserve or {})
        self.sleep = sleep
        self._acquire = client.register_script(_ACQUIRE)
        self._backoff = client.register_script(_BACKOFF)
        for bucket, (limit, interval_s) in (default_limits or {}).items():
            # Only where nothing is known yet: a worker starting late must not undo what the
            # CRM already told the others.
            client.hsetnx(self._state(bucket), "limit", limit)
            client.hsetnx(self._state(bucket), "interval_ms", int(interval_s * 1000))

    def _state(self, bucket: str) -> str:
        return f"{self.prefix}:{bucket}"

    def acquire(self, bucket: str) -> None:
        """Block until one call in ``bucket`` may go, for every worker together; count it."""
        keys = [f"{self.prefix}:{bucket}:sent", self._state(bucket), f"{self.prefix}:daily"]
        while True:
            answer = self._acquire(keys=keys, args=[
                uuid.uuid4().hex, self.window_reserve.get(bucket, 0),
                self.reserve_daily_percent, EDGE_MS, 10_000])
            wait_ms = int(answer[0])
            if wait_ms == 0:
                return
            if wait_ms < 0:
                remaining, limit, reserve = (int(v) for v in answer[1:4])
                used = f"{limit - remaining}/{limit}" if limit > 0 else f"all but {remaining}"
                kept = (f", within the reserve of {reserve} kept for other integrations"
                        if reserve else "")
                raise QuotaExhausted(f"daily API requests at {used}{kept}; the run stops and "
                                     "resumes next time")
            log.debug("pacing %s: waiting %.2fs for the shared rate limit", bucket, wait_ms / 1000)
            self.sleep(wait_ms / 1000)

    def observe(
        self, bucket: str, *, remaining: int | None = None, limit: int | None = None,
        interval_s: float | None = None, daily_remaining: int | None = None,
        daily_limit: int | None = None,
    ) -> None:
        """Record what the CRM's headers said, for every worker of the connection."""
        state: dict[str, int] = {}
        if limit is not None and limit > 0:
            state["limit"] = limit
        if interval_s is not None and interval_s > 0:
            state["interval_ms"] = int(interval_s * 1000)
        if remaining is not None:
            state["remaining"] = max(0, remaining)
        daily: dict[str, int] = {}
        if daily_limit is not None and daily_limit > 0:
            daily["limit"] = daily_limit
        if daily_remaining is not None:
            daily["remaining"] = max(0, daily_remaining)
        if not state and not daily:
            return
        with self.redis.pipeline() as pipe:
            if state:
                pipe.hset(self._state(bucket), mapping=state)
            if daily:
                pipe.hset(f"{self.prefix}:daily", mapping=daily)
                pipe.expire(f"{self.prefix}:daily", 86_400)
            pipe.execute()

    def backoff(self, bucket: str, seconds: float) -> None:
        """Hold every worker's calls in ``bucket`` for ``seconds`` from now."""
        self._backoff(keys=[self._state(bucket)], args=[int(max(0.0, seconds) * 1000)])

    def reset(self) -> None:
        """Forget everything this connection's pacer knows (tests, or a new daily period)."""
        keys = list(self.redis.scan_iter(f"{self.prefix}:*"))
        if keys:
            self.redis.delete(*keys)


def redis_pacer(url: str, namespace: str, *, crm: str,
                reserve_daily_percent: float = 0.0) -> RedisPacer:
    """Return the shared pacer of one connection, with its CRM's window reserve.

    HubSpot: :data:`~crmsync.connectors.hubspot.wire.WINDOW_RESERVE` calls of every 10-second
    window stay unused (other apps share the portal's limit), as the in-process pacer does, and
    one search of every second: across processes, a search admitted late in one second can
    arrive early in the next.
    """
    try:
        import redis
    except ImportError:
        raise ConfigError("[workers] redis_url needs the Redis client: "
                          "pip install 'crmsync[workers]'") from None
    reserve: dict[str, int] = {}
    if crm == "hubspot":
        from crmsync.connectors.hubspot.client import BURST, SEARCH
        from crmsync.connectors.hubspot.wire import WINDOW_RESERVE

        reserve[BURST] = WINDOW_RESERVE
        reserve[SEARCH] = 1
    return RedisPacer(redis.Redis.from_url(url), namespace,
                      reserve_daily_percent=reserve_daily_percent, window_reserve=reserve)
