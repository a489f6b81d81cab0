"""HubSpot-shaped error responses: every failure the emulator sends goes through here.

Bodies follow CRM_WIRE_CONTRACT.md §3.2 (``status``/``message``/``correlationId``/``category``)
and §3.3 for 429s, which carry ``errorType``/``policyName`` instead of a category.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from crmsync.sandbox.server import HttpError, Response

#: Default category per HTTP status, used when a caller (or a scripted fault) gives only a status.
CATEGORIES = {
    400: "VALIDATION_ERROR",
    401: "INVALID_AUTHENTICATION",
    403: "MISSING_SCOPES",
    404: "OBJECT_NOT_FOUND",
    409: "CONFLICT",
}

#: 429 policies: (policyName, message).
POLICIES = {
    "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
    "SECONDLY": "You have reached your secondly limit.",
    "DAILY": "You have reached your daily limit.",
}


def correlation_id() -> str:
    """Return a fresh correlation id (a UUID, as HubSpot sends)."""
    return str(uuid.uuid4())


def error_body(
    status: int,
    message: str,
    *,
    category: str | None = None,
    errors: Sequence[Mapping[str, Any]] = (),
    context: Mapping[str, list[str]] | None = None,
) -> dict[str, Any]:
    """Return a standard HubSpot error body."""
    return {
        "status": "error",
        "message": message,
        "correlationId": correlation_id(),
        "category": category
        or CATEGORIES.get(status, "INTERNAL_ERROR" if status >= 500 else "ERROR"),
        "errors": [dict(e) for e in errors],
        "context": dict(context or {}),
        "links": {},
    }


def error_response(status: int, message: str, **kw: Any) -> Response:
    """Return an error :class:`Response` (see :func:`error_body` for keywords)."""
    return Response(status, error_body(status, message, **kw))


def fail(status: int, message: str, **kw: Any) -> NoReturn:
    """Abort the current call with a HubSpot error."""
    raise HttpError(error_response(status, message, **kw))


def rate_limit_response(policy: str, retry_after: float | None = None) -> Response:
    """Return the 429 HubSpot sends when a rate-limit policy is exceeded."""
    body = {
        "status": "error",
        "message": POLICIES[policy],
        "errorType": "RATE_LIMIT",
        "correlationId": correlation_id(),
        "policyName": policy,
        "groupName": "api-calls" if policy != "SECONDLY" else "search-api",
        "requestId": correlation_id(),
    }
    headers = {}
    if retry_after is not None:
        headers["Retry-After"] = retry_after_header(retry_after)
    return Response(429, body, headers)


def retry_after_header(seconds: float) -> str:
    """Render ``Retry-After`` as whole seconds (urllib3 only parses integers or HTTP dates)."""
    whole = int(seconds)
    return str(whole if whole == seconds else whole + 1)


def invalid_properties(problems: Sequence[Mapping[str, str]]) -> NoReturn:
    """Fail with the 400 HubSpot sends for property values it rejects.

    Args:
        problems: ``{"name", "error", "message"}`` per rejected property (``error`` is a code
            such as ``PROPERTY_DOESNT_EXIST`` or ``INVALID_OPTION``).
    """
    details = [
        {"isValid": False, "message": p["message"], "error": p["error"], "name": p["name"]}
        for p in problems
    ]
    fail(
        400,
        f"Property values were not valid: {json.dumps(details)}",
        errors=[
            {
                "message": p["message"],
                "code": p["error"],
                "context": {"propertyName": [p["name"]]},
            }
            for p in problems
        ],
    )
