"""HTTP plumbing that lets the real SDKs reach a CRM at a plain-http base URL (the sandbox).

simple-salesforce always builds ``https://`` URLs from its instance; to reach a loopback
emulator served over plain HTTP we mount a ``requests`` adapter that rewrites the scheme for that
one origin only (CRM_WIRE_CONTRACT.md §1.1). Real orgs never go through it.
"""

from __future__ import annotations

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
