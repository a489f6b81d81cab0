"""The one retry policy for every CRM call (DESIGN.md §5, STYLE.md item 9).

Only :class:`~crmsync.errors.TransientError` is retried. The wait honours the server's
``Retry-After`` (or rate-limit reset) when it gave one, plus jittered exponential backoff; the
attempt count and a total time budget both cap it. ``sleep`` is injectable so tests run instantly.
Creates are never passed through here unless they are idempotent (upsert by key): a retried
create after a timeout could duplicate a record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from crmsync.errors import TransientError

log = logging.getLogger("crmsync.retry")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try before giving up on a transient failure.

    Attributes:
        attempts: Total tries, the first included.
        budget_s: Give up once this much time has passed since the first try.
        initial_wait_s: First backoff step (doubles each time, with jitter).
        max_wait_s: Largest single backoff step (a server's ``Retry-After`` may exceed it).
    """

    attempts: int = 6
    budget_s: float = 300.0
    initial_wait_s: float = 0.5
    max_wait_s: float = 30.0


def _server_wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    return float(getattr(error, "retry_after", None) or 0.0)


def retrying(
    policy: RetryPolicy = RetryPolicy(),
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[TransientError, float], None] | None = None,
) -> Retrying:
    """Return a tenacity ``Retrying`` that implements ``policy``.

    Args:
        policy: Attempts, budget and backoff.
        sleep: Called with the seconds to wait; tests pass a recorder.
        on_retry: Told about each retry (the error and the wait), e.g. to count them.
    """
    backoff = wait_exponential_jitter(multiplier=policy.initial_wait_s, max=policy.max_wait_s)

    def wait(state: RetryCallState) -> float:
        # The server knows best: when it says how long, wait at least that long.
        return max(_server_wait(state), backoff(state))

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        seconds = state.upcoming_sleep
        # Only the error's class and status reach the log: no bodies, no data.
        log.info("retrying after %s (attempt %d, waiting %.1fs)", type(error).__name__,
                 state.attempt_number, seconds)
        if on_retry is not None and isinstance(error, TransientError):
            on_retry(error, seconds)

    return Retrying(
        retry=retry_if_exception_type(TransientError),
        wait=wait,
        stop=stop_after_attempt(policy.attempts) | stop_after_delay(policy.budget_s),
        reraise=True,
        sleep=sleep,
        before_sleep=before_sleep,
    )
