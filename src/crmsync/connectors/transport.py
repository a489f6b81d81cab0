"""HTTP plumbing that lets the real SDKs reach a CRM at a plain-http base URL (the sandbox).

simple-salesforce always builds ``https://`` URLs from its instance; to reach a loopback
emulator served over plain HTTP we mount a ``requests`` adapter that rewrites the scheme for that
one origin only (CRM_WIRE_CONTRACT.md §1.1). Real orgs never go through it.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter


class HttpsToHttpAdapter(HTTPAdapter):
    """Send requests addressed to ``https://host:port`` over plain HTTP instead."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Rewrite the scheme, then send as usual."""
        if request.url and request.url.startswith("https://"):
            request.url = "http://" + request.url[len("https://") :]
        return super().send(request, **kwargs)


def salesforce_session(base_url: str, *, pool_size: int = 10) -> tuple[requests.Session, str]:
    """Return a session and the ``instance_url`` to give simple-salesforce for ``base_url``.

    For an ``https://`` URL the session is a plain one. For ``http://host:port`` (the sandbox)
    the session carries :class:`HttpsToHttpAdapter` for that origin, and ignores proxy and CA
    settings from the environment, which must not apply to loopback.
    """
    parts = urlsplit(base_url)
    session = requests.Session()
    if parts.scheme == "http":
        session.trust_env = False
        session.mount(
            f"https://{parts.netloc}/",
            HttpsToHttpAdapter(pool_connections=pool_size, pool_maxsize=pool_size),
        )
    else:
        session.mount("https://", HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size))
    return session, f"https://{parts.netloc}"


def describe_network_error(exc: BaseException, url: str | None = None) -> str:
    """Say what went wrong on the network, naming host, port and cause, never a body or header.

    ``exc`` is whatever requests, urllib3 or http.client raised (the cause chain and urllib3's
    ``reason`` are followed to the root); ``url`` is the address the call was for, used when the
    exception does not carry one. Examples: ``connection refused to 127.0.0.1:8765``,
    ``name not resolved: api.hubapi.invalid``, ``timed out talking to 10.0.0.1:443``.
    """
    chain = _cause_chain(exc)
    where = _where(chain, url)
    for error in chain:
        if isinstance(error, socket.gaierror) or "NameResolution" in type(error).__name__:
            host = where.rsplit(":", 1)[0] if where else "the CRM host"
            return f"name not resolved: {host}"
        if isinstance(error, ConnectionRefusedError):
            return f"connection refused to {where or 'the CRM'}"
        if isinstance(error, TimeoutError) or "Timeout" in type(error).__name__:
            return f"timed out talking to {where or 'the CRM'}"
        if isinstance(error, ConnectionResetError | http.client.RemoteDisconnected):
            return f"connection dropped by {where or 'the CRM'}"
        if isinstance(error, ssl.SSLError):
            return f"TLS failed with {where or 'the CRM'} ({type(error).__name__})"
    return f"{type(chain[-1]).__name__} talking to {where or 'the CRM'} (no response)"


def _cause_chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 12:
        seen.append(current)
        reason = getattr(current, "reason", None)  # urllib3 MaxRetryError / ProtocolError
        if isinstance(reason, BaseException):
            current = reason
            continue
        nested = next((a for a in getattr(current, "args", ()) if isinstance(a, BaseException)),
                      None)
        current = nested or current.__cause__ or current.__context__
    return seen


def _where(chain: list[BaseException], url: str | None) -> str:
    for error in chain:
        pool = (getattr(error, "conn", None) or getattr(error, "_pool", None)
                or error.__dict__.get("pool"))
        host, port = getattr(pool, "host", None), getattr(pool, "port", None)
        if isinstance(host, str) and host:
            return f"{host}:{port}" if port else host
        request = getattr(error, "request", None)
        if request is not None and getattr(request, "url", None):
            url = url or str(request.url)
    if not url:
        return ""
    parts = urlsplit(url)
    if not parts.hostname:
        return ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"
