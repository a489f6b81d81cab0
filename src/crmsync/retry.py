"""The one retry policy for every CRM call (DESIGN.md §5, STYLE.md item 9).

Only :class:`~crmsync.errors.TransientError` is retried. The wait honours the server's
``Retry-After`` (or rate-limit reset) when it gave one, plus jittered exponential backoff; the
attempt count and a total time budget both cap it. ``sleep`` is injectable so tests run instantly.
Creates are never passed through here unless they are idempotent (upsert by key): a retried
create after a timeout could duplicate a record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from crmsync import stopping
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
    sleep: Callable[[float], None] = stopping.sleep,
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
        # The error's own message names the call, status and host; never a body or data.
        log.warning("retrying in %s (%d/%d): %s", _seconds_text(seconds), state.attempt_number,
                    policy.attempts - 1, error)
        if on_retry is not None and isinstance(error, TransientError):
            on_retry(error, seconds)

    def give_up(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        asked = _server_wait(state)
        left = policy.budget_s - state.seconds_since_start
        if isinstance(error, TransientError) and asked and asked > left:
            # Sleeping through a server's long Retry-After would hold the run (and its lease)
            # far past the budget the admin set: stop now and say when trying again can work.
            at = datetime.now(UTC) + timedelta(seconds=asked)  # noqa: TID251 - a wall-clock hint
            raise TransientError(
                f"{error}; the CRM asked to wait {_seconds_text(asked)}, more than the "
                f"{_seconds_text(max(0.0, left))} left of the retry budget "
                f"([sync] retry_budget_s = {policy.budget_s:g}): retry after {at:%H:%M:%S}Z",
                retry_after=asked,
            ) from error
        assert error is not None
        raise error

    return Retrying(
        retry=retry_if_exception_type(TransientError),
        wait=wait,
        # Stop *before* a wait that would end past the budget, not after sleeping through it.
        stop=stop_after_attempt(policy.attempts) | stop_before_delay(policy.budget_s),
        retry_error_callback=give_up,
        sleep=sleep,
        before_sleep=before_sleep,
    )


def _seconds_text(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"
