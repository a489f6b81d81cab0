"""Who may use the console: anyone on loopback by default; the ``[console] token`` otherwise.

The token is accepted as ``Authorization: Bearer <token>`` (scripts) or as the password of HTTP
basic auth (browsers prompt for it; the user name is ignored). It never travels in a URL, so it
cannot end up in an access log, and it is compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send

from crmsync.config import Secret
from crmsync.errors import ConfigError

#: What a browser shows in its login prompt.
REALM = "crmsync console"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (``127.0.0.1``, ``::1``...)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def check_bind(host: str, token: Secret | None) -> None:
    """Refuse to listen beyond loopback without a token.

    Raises:
        ConfigError: ``host`` is not loopback and no ``[console] token`` is set (exit 2).
    """
    if is_loopback(host) or token:
        return
    error = ConfigError(
        f"refusing to serve the console on {host} without a login: anyone who can reach that "
        "address could undo runs")
    # The CLI prints it as `hint: ...` (crmsync.cli.failures reads the attribute).
    error.hint = ("set [console] token (env CRMSYNC_CONSOLE__TOKEN or the secrets file), or "  # type: ignore[attr-defined]
                  "serve on 127.0.0.1 and reach it through an SSH tunnel")
    raise error


def presented_token(authorization: str) -> str | None:
    """The token in an ``Authorization`` header value (Bearer, or basic auth's password)."""
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


class TokenAuth:
    """ASGI middleware: every HTTP request must present ``token`` (when one is set)."""

    def __init__(self, app: ASGIApp, token: Secret | None) -> None:
        """Wrap ``app``; with ``token`` ``None`` every request passes."""
        self.app = app
        self._token = token.reveal().encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._token is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or ()).get(b"authorization", b"")
        given = presented_token(header.decode("latin-1"))
        if given is not None and hmac.compare_digest(given.encode(), self._token):
            await self.app(scope, receive, send)
            return
        body = b"login required: the console's [console] token (as a Bearer token or the " \
               b"password of HTTP basic auth)\n"
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", f'Basic realm="{REALM}", charset="UTF-8"'.encode()),
        ]})
        await send({"type": "http.response.body", "body": body})
