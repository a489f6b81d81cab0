"""HubSpot errors: vendor and network exceptions become crmsync errors here, and only here.

Messages carry the operation, status, category and correlation id; never a response body, which
can hold contact data (it stays in ``__cause__``).
"""

from __future__ import annotations

import http.client
import json
from typing import Any

import urllib3

from crmsync.connectors.transport import describe_network_error
from crmsync.errors import (
    AuthError,
    CrmRequestError,
    CrmsyncError,
    QuotaExhausted,
    TransientError,
)


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


def translate(op: str, exc: BaseException, url: str | None = None) -> CrmsyncError | None:
    """Return the crmsync error for a vendor/network exception, or None if it is not one.

    Every generated hubspot package has its own ``ApiException`` with no common base, so the
    status is read by attribute. The message names the operation, status, category and
    correlation id; never the body, which can hold contact data. A network failure names host,
    port and cause (``connection refused to 127.0.0.1:8765``); ``url`` is the API origin, used
    when the exception does not say where it was going.
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
        return TransientError(f"HubSpot {op}: {describe_network_error(exc, url)}")
    return None
