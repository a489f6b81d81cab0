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
from urllib.parse import urlsplit

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


def _host_name(host: str) -> str:
    """The name or address of a ``Host`` header value, port and IPv6 brackets dropped."""
    return urlsplit(f"//{host}").hostname or ""


class TokenAuth:
    """ASGI middleware: who may use the console, checked before any page runs.

    * With ``token``, every request must present it.
    * Without, the ``Host`` a request names must be loopback: a web page the admin visits cannot
      point its own host name at 127.0.0.1 (DNS rebinding) and read or post to the console.
    * A POST whose ``Origin`` is another site is refused whatever the login (forms also carry
      tokens, :mod:`crmsync.console.forms`; this is a second lock).
    """

    def __init__(self, app: ASGIApp, token: Secret | None) -> None:
        """Wrap ``app``; with ``token`` ``None`` only loopback host names pass."""
        self.app = app
        self._token = token.reveal().encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        host = headers.get(b"host", b"").decode("latin-1")
        origin = headers.get(b"origin", b"").decode("latin-1")
        if scope.get("method") not in ("GET", "HEAD") and origin and origin != "null" \
                and urlsplit(origin).netloc != host:
            await _refuse(send, 403, b"refused: this form was sent from another site\n")
            return
        if self._token is None:
            if is_loopback(_host_name(host)):
                await self.app(scope, receive, send)
            else:
                await _refuse(send, 403, b"refused: without a [console] token the console "
                                         b"answers only to http://127.0.0.1 (or localhost)\n")
            return
        given = presented_token(headers.get(b"authorization", b"").decode("latin-1"))
        if given is not None and hmac.compare_digest(given.encode(), self._token):
            await self.app(scope, receive, send)
            return
        await _refuse(send, 401, b"login required: the console's [console] token (as a Bearer "
                                 b"token or the password of HTTP basic auth)\n",
                      (b"www-authenticate", f'Basic realm="{REALM}", charset="UTF-8"'.encode()))


async def _refuse(send: Send, status: int, body: bytes, *extra: tuple[bytes, bytes]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()), *extra]})
    await send({"type": "http.response.body", "body": body})
