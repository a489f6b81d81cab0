"""The HTTP stack under the sandbox: cheroot serving one WSGI app.

cheroot (CherryPy's maintained, threaded HTTP/1.1 server) does the protocol: keep-alive
connections parked in a selector between calls, a pool of worker threads, chunked request
bodies, ``Expect: 100-continue``, response header names sent as spelled. Each call is read,
answered and written by one worker thread, so a scripted fault can cut the connection at an
exact point; that is the one extension made here, through cheroot's gateway class:

* ``Drop.MID_RESPONSE`` (``disconnect``): headers promising 4096 bytes, a few of them, then the
  socket is shut: the client sees a broken read;
* ``Drop.BEFORE_RESPONSE`` (``lost_response``): the socket is shut before any byte of the
  answer: the client sees the connection closed without a response.
"""

from __future__ import annotations

import contextlib
import http
import socket
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cheroot import wsgi as cheroot_wsgi

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]

#: The environ key an application sets to ``"mid"`` or ``"before"`` to have its call cut.
DROP_KEY = "crmsync.sandbox.drop"


class _Gateway(cheroot_wsgi.Gateway_10):  # type: ignore[misc]
    """cheroot's WSGI 1.0 gateway, plus connection cuts on the application's request."""

    def respond(self) -> None:
        how = None
        response = self.req.server.wsgi_app(self.env, self.start_response)
        how = self.env.get(DROP_KEY)
        if how is None:
            try:
                for chunk in response:
                    if chunk:
                        self.write(chunk)
            finally:
                self.req.ensure_headers_sent()
            return
        conn = self.req.conn
        if how == "mid":
            for chunk in response:
                self.write(chunk)
            with contextlib.suppress(OSError):
                conn.wfile.flush()
        # Nothing more is written on this connection, and cheroot closes it after the call.
        self.req.ready = False
        self.req.close_connection = True
        with contextlib.suppress(OSError):
            conn.socket.shutdown(socket.SHUT_RDWR)


class _Server(cheroot_wsgi.Server):  # type: ignore[misc]
    def error_log(self, msg: str = "", level: int = 20, traceback: bool = False) -> None:
        """Stay quiet: the sandbox never logs (a request line may carry data)."""


def make_server(app: WsgiApp, *, host: str, port: int, threads: int) -> Any:
    """Bind and listen on ``host:port`` for ``app``; ``serve()`` then answers, in any thread."""
    server = _Server(
        (host, port), app, numthreads=threads, server_name="crmsync-sandbox",
        # A sync may pause between calls; clients reuse their connections when it goes on.
        timeout=300,
    )
    server.gateway = _Gateway
    server.version = "crmsync-sandbox"
    # cheroot keeps only 10 idle keep-alive connections by default; tests and benchmarks
    # hold more (one per client thread and SDK pool).
    server.keep_alive_conn_limit = None
    server.prepare()
    return server


def request_parts(
    environ: Mapping[str, Any],
) -> tuple[str, str, dict[str, list[str]], dict[str, str], bytes]:
    """Return (method, raw path, query, lower-cased headers, body) of one WSGI request."""
    # The raw request target, not PATH_INFO: PATH_INFO is percent-decoded, and emulators decode
    # ids themselves (an email as a HubSpot id holds '@' and may hold '/').
    split = urlsplit(environ.get("REQUEST_URI") or environ.get("PATH_INFO", "/"))
    headers = {
        key[5:].replace("_", "-").lower(): value
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    # wsgi.input ends where the body ends, whether it came with a length or chunked.
    stream = environ.get("wsgi.input")
    body = stream.read() if stream is not None else b""
    return (
        str(environ["REQUEST_METHOD"]).upper(),
        split.path or "/",
        parse_qs(split.query, keep_blank_values=True),
        headers,
        body,
    )


def status_line(status: int) -> str:
    """``200 OK`` for 200."""
    try:
        return f"{status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"{status} Unknown"


def cut(
    environ: dict[str, Any], start_response: Callable[..., Any], *, before: bool
) -> list[bytes]:
    """Answer a call by cutting its connection: before any byte, or after part of a body."""
    environ[DROP_KEY] = "before" if before else "mid"
    if before:
        return []
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "4096")])
    return [b'{"partial": ']
