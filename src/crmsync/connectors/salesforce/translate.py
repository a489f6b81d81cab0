"""Error translation: the one place simple-salesforce and requests exceptions become crmsync's.

Messages carry an HTTP status and an error code only: simple-salesforce puts response bodies
(contact data) in its exceptions' ``str``, so those stay in ``__cause__``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import requests
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceOperationError,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from crmsync.connectors.transport import describe_network_error
from crmsync.errors import (
    AuthError,
    ConfigError,
    CrmRequestError,
    CrmsyncError,
    QuotaExhausted,
    TransientError,
)


class _SessionExpired(AuthError):
    """A 401 INVALID_SESSION_ID the SDK did not (or could not) refresh."""


class _Throttled(TransientError):
    """Salesforce refused the call for load (concurrent-request limit, 429): the org, not the
    record, is busy, so every caller of the connection should hold back."""


#: Request-level error codes worth retrying even though they come as 400s.
_TRANSIENT_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"})


def _first_error(content: Any) -> tuple[str, str]:
    """Return (errorCode, message) from a Salesforce error body (a JSON list), best effort."""
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        first = content[0]
        return str(first.get("errorCode") or first.get("statusCode") or ""), str(
            first.get("message") or "")
    if isinstance(content, Mapping):
        return str(content.get("errorCode") or content.get("error") or ""), str(
            content.get("message") or content.get("error_description") or "")
    return "", ""


def _error_code(saved: Mapping[str, Any]) -> str | None:
    """Return the first ``statusCode`` of a failed SaveResult (None when it succeeded)."""
    if saved.get("success"):
        return None
    errors = saved.get("errors") or [{}]
    first = errors[0] if isinstance(errors[0], Mapping) else {}
    return str(first.get("statusCode") or "UNKNOWN_ERROR")


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP date: rare from Salesforce; fall back to our own backoff


@contextmanager
def _translated(
    op: str, retry_after: Callable[[], float | None] = lambda: None, url: str | None = None,
) -> Iterator[None]:
    """Turn simple-salesforce and requests exceptions into crmsync errors.

    Args:
        op: What was being done (``query Contact``), for the message.
        retry_after: Returns the ``Retry-After`` of the failed response, if it had one
            (simple-salesforce drops response headers from its exceptions).
        url: The address being called (the org's base URL is enough), used to name host and
            port when a network error does not carry them.
    """
    try:
        yield
    except CrmsyncError:
        raise
    except SalesforceExpiredSession as exc:
        # With password/JWT auth simple-salesforce has already logged in again and retried.
        raise _SessionExpired(f"Salesforce {op}: HTTP 401 "
                              f"{_first_error(exc.content)[0] or 'refused'}; "
                              "the session is invalid or expired") from exc
    except SalesforceAuthenticationFailed as exc:
        if exc.code is None:
            # No Salesforce fault code in the answer: whatever answered is not a Salesforce
            # login endpoint, so the address is wrong, not the credentials.
            raise ConfigError(f"Salesforce {op}: check [crm] domain / base_url: the login "
                              "endpoint did not answer like Salesforce") from exc
        raise AuthError(f"Salesforce {op}: login failed ({exc.code})") from exc
    except SalesforceRefusedRequest as exc:
        # 403 is a permission problem OR an API limit: the errorCode and message say which.
        code, text = _first_error(exc.content)
        lowered = text.lower()
        if code == "REQUEST_LIMIT_EXCEEDED" and "concurrent" in lowered:
            raise _Throttled(f"Salesforce {op}: HTTP 403 {code} (concurrent requests)",
                             retry_after=retry_after()) from exc
        if code == "REQUEST_LIMIT_EXCEEDED":
            raise QuotaExhausted(f"Salesforce {op}: HTTP 403 {code} (daily API requests used "
                                 "up); the run stops and resumes next time") from exc
        raise AuthError(f"Salesforce {op}: HTTP 403 {code or 'refused'}") from exc
    except SalesforceMalformedRequest as exc:
        code = _first_error(exc.content)[0]
        if code in _TRANSIENT_CODES:
            raise TransientError(f"Salesforce {op}: HTTP 400 {code}",
                                 retry_after=retry_after()) from exc
        raise CrmRequestError(f"Salesforce {op}: HTTP 400 {code or 'bad request'}") from exc
    except SalesforceGeneralError as exc:
        code = _first_error(exc.content)[0]
        if exc.status == 429:
            raise _Throttled(f"Salesforce {op}: HTTP 429 {code}".rstrip(),
                             retry_after=retry_after()) from exc
        if exc.status >= 500 or exc.status == 408:
            raise TransientError(f"Salesforce {op}: HTTP {exc.status} {code}".rstrip(),
                                 retry_after=retry_after()) from exc
        raise CrmRequestError(f"Salesforce {op}: HTTP {exc.status} {code}".rstrip()) from exc
    except SalesforceResourceNotFound as exc:
        code = _first_error(exc.content)[0]
        parts = urlsplit(str(exc.url or ""))
        if _RECORD_PATH.search(parts.path):
            # One record is missing (deleted meanwhile): the request itself was fine.
            raise CrmRequestError(f"Salesforce {op}: HTTP 404 {code}".rstrip()) from exc
        # A 404 on a collection-level endpoint (query, describe, composite...) means the base
        # URL does not point at Salesforce or the API version is not served: retrying cannot
        # help. The query string (SOQL) stays out of the message.
        answered = f"404 {code}" if code else "404"
        raise ConfigError(f"Salesforce {op}: check [crm] base_url / api_version: "
                          f"{parts.netloc or 'the server'} answered {answered} for "
                          f"{parts.path or '/'}") from exc
    except SalesforceError as exc:  # 300 more-than-one
        code = _first_error(exc.content)[0]
        raise CrmRequestError(f"Salesforce {op}: HTTP {exc.status} {code}".rstrip()) from exc
    except SalesforceOperationError as exc:  # bulk 2.0 job failures
        raise CrmRequestError(f"Salesforce {op}: {type(exc).__name__}") from exc
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError) as exc:
        raise TransientError(f"Salesforce {op}: {describe_network_error(exc, url)}") from exc
    except (requests.exceptions.JSONDecodeError, json.JSONDecodeError) as exc:
        # A truncated or non-JSON success body: the connection broke mid-response.
        raise TransientError(f"Salesforce {op}: unreadable response") from exc
    except requests.exceptions.InvalidHeader:
        # requests quotes the offending header value, which is the access token: drop the
        # whole chain (``from None``) so no log or traceback can carry it.
        raise ConfigError(f"Salesforce {op}: the access token (or another header value) holds "
                          "characters HTTP headers cannot carry, such as a line break; check "
                          "the token in the environment or secrets file") from None


#: A URL path addressing one record or Bulk 2.0 job by id (or a job's batches and results):
#: a 404 there is that record or job missing (deleted, expired), not a wrong base URL.
_RECORD_PATH = re.compile(r"/(?:sobjects/[^/]+/(?=[A-Za-z0-9]*\d)[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?"
                          r"|jobs/(?:ingest|query)/(?=[A-Za-z0-9]*\d)[A-Za-z0-9]{15}"
                          r"(?:[A-Za-z0-9]{3})?(?:/[A-Za-z]+)?)/?$")
