"""The loopback HTTP server every emulator runs in, with the ``/_sandbox/`` admin API.

An emulator is a plain object that turns a :class:`Request` into a :class:`Response`; this module
does the HTTP, the fault injection, the call accounting and persistence around it, the same way
for Salesforce and HubSpot.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from crmsync.sandbox.faults import CallLog, FaultInjector, FaultPlan, FaultPlanError, FaultRule
from crmsync.sandbox.seed import Org

ADMIN_PREFIX = "/_sandbox/"


@dataclass
class Request:
    """One HTTP request as an emulator sees it.

    Attributes:
        method: Upper-case HTTP method.
        path: URL path, percent-decoding left to the emulator (ids never need it).
        query: Query parameters; repeated keys keep every value in order.
        headers: Header names lower-cased.
        body: Raw request body.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""

    def json(self) -> Any:
        """Parse the body as JSON (raises ``ValueError`` when it is not)."""
        return json.loads(self.body.decode("utf-8")) if self.body else None

    def param(self, name: str, default: str | None = None) -> str | None:
        """Return the first value of a query parameter."""
        values = self.query.get(name)
        return values[0] if values else default

    def param_list(self, name: str) -> list[str]:
        """Return a list parameter sent repeated (``a=1&a=2``) or comma-joined (``a=1,2``)."""
        out: list[str] = []
        for value in self.query.get(name, []):
            out.extend(part for part in value.split(",") if part)
        return out


@dataclass
class Response:
    """One HTTP response; ``body`` is JSON-encoded unless it is already bytes or str."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=UTF-8"
    #: Set by an emulator when its own quota refused the call (the policy's name, e.g.
    #: ``TEN_SECONDLY_ROLLING``), so the call log can count refusals apart from scripted faults.
    throttled: str | None = None

    def encode(self) -> bytes:
        """Return the body as bytes."""
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body, separators=(",", ":")).encode("utf-8")


class HttpError(Exception):
    """Raised inside an emulator to answer with an error response right away."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


class Emulator(Protocol):
    """What an emulator provides to the server."""

    #: ``salesforce`` or ``hubspot``.
    crm: str
    #: The bearer token clients must send.
    token: str

    def handle(self, request: Request) -> Response:
        """Answer one (authorised, fault-free) API call."""

    def classify(self, request: Request) -> tuple[str, bool]:
        """Return (folded endpoint like ``GET /sobjects/{type}/{id}``, whether it writes)."""

    def fault_response(self, rule: FaultRule, request: Request) -> Response:
        """Render a scripted request-level fault in the CRM's own error shape."""

    def snapshot(self) -> dict[str, Any]:
        """Return all data as JSON-ready dicts (for ``--state FILE``)."""

    def restore(self, data: Mapping[str, Any]) -> None:
        """Load data saved by :meth:`snapshot`."""

    def admin(self, request: Request) -> Response | None:
        """Handle emulator-specific ``/_sandbox/`` calls (e.g. reading records); None if unknown."""


class SandboxServer:
    """Serve one emulator on 127.0.0.1; usable as a context manager in tests.

    Example:
        >>> with SandboxServer(emulator) as server:   # doctest: +SKIP
        ...     server.base_url
    """

    def __init__(
        self,
        emulator: Emulator,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: Path | None = None,
        org: Org | None = None,
    ) -> None:
        self.emulator = emulator
        #: The generated data the emulator was seeded with, when known (for benchmarks/demo).
        self.org = org
        self.faults = FaultInjector()
        # Per-record faults (reject_record) are decided inside batch writes, so the emulator
        # needs the injector too.
        emulator.faults = self.faults  # type: ignore[attr-defined]
        self.calls = CallLog()
        self.state_file = state_file
        # One lock around the emulator's data: correctness over throughput. Latency is slept
        # outside it, so concurrent clients still overlap their waiting like on the real wire.
        self.data_lock = threading.RLock()
        if state_file is not None and state_file.exists():
            emulator.restore(json.loads(state_file.read_text("utf-8")))
        self._httpd = ThreadingHTTPServer((host, port), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return int(self._httpd.server_address[1])

    @property
    def token(self) -> str:
        """The bearer token the emulator accepts."""
        return self.emulator.token

    def start(self) -> SandboxServer:
        """Serve in a background thread and return self."""
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"sandbox-{self.emulator.crm}", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted."""
        self._httpd.serve_forever()

    def stop(self) -> None:
        """Stop serving, close the socket and save the data if a state file was given."""
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.save()

    def close(self) -> None:
        """Release the listening socket of a server that was never started."""
        self._httpd.server_close()

    def save(self) -> None:
        """Write the emulator's data to the state file (atomically), if one was given."""
        if self.state_file is None:
            return
        with self.data_lock:
            data = self.emulator.snapshot()
        tmp = self.state_file.with_suffix(self.state_file.suffix + ".tmp")
        tmp.write_text(json.dumps(data), "utf-8")
        tmp.replace(self.state_file)

    def install_faults(self, plan: FaultPlan | Mapping[str, Any]) -> None:
        """Install a fault plan (object or its JSON form)."""
        self.faults.install(plan if isinstance(plan, FaultPlan) else FaultPlan.from_json(plan))

    def reset(self) -> None:
        """Clear faults and call counts (data stays)."""
        self.faults.clear()
        self.calls.reset()

    def call_counts(self) -> dict[str, Any]:
        """Return the per-endpoint call counts (``GET /_sandbox/calls``)."""
        return self.calls.snapshot()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- request handling -------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response | None:
        """Run one request through admin routing, faults, accounting and the emulator.

        Returns ``None`` when the connection must be dropped mid-response (``disconnect``).
        """
        if request.path.startswith(ADMIN_PREFIX):
            return self._admin(request)
        endpoint, write = self.emulator.classify(request)
        latency_ms, rule = self.faults.next_fault(request.method, request.path)
        if latency_ms:
            time.sleep(latency_ms / 1000)
        self.calls.record(endpoint, write=write)
        if rule is not None and rule.kind == "disconnect":
            self.calls.answered(None)
            return None
        if rule is not None:
            response = self.emulator.fault_response(rule, request)
        else:
            # The emulator's quota counters are read and bumped under this lock too, so
            # concurrent clients are admitted exactly up to a limit, never past it.
            with self.data_lock:
                try:
                    response = self.emulator.handle(request)
                except HttpError as error:
                    response = error.response
        self.calls.answered(response.status, throttled=response.throttled)
        return response

    def _admin(self, request: Request) -> Response:
        name = request.path[len(ADMIN_PREFIX) :].strip("/")
        if name == "calls" and request.method == "GET":
            return Response(200, self.calls.snapshot())
        if name == "faults" and request.method == "GET":
            return Response(200, self.faults.plan.to_json())
        if name == "faults" and request.method in ("POST", "PUT"):
            try:
                self.install_faults(request.json() or {})
            except (ValueError, FaultPlanError) as error:
                return Response(400, {"error": str(error)})
            return Response(200, self.faults.plan.to_json())
        if name == "reset" and request.method == "POST":
            self.reset()
            return Response(200, {"reset": True})
        if name == "save" and request.method == "POST":
            self.save()
            return Response(200, {"saved": self.state_file is not None})
        with self.data_lock:
            answer = self.emulator.admin(request)
        return answer if answer is not None else Response(404, {"error": f"no admin call {name!r}"})


def _make_handler(server: SandboxServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.1 keep-alive: the SDKs reuse connections, and so should the emulator.
        protocol_version = "HTTP/1.1"
        server_version = "crmsync-sandbox"
        # Headers and body go out in two writes; with Nagle on, the body waits for the client's
        # delayed ACK (~40 ms per call on keep-alive connections).
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            """Stay quiet: the sandbox never logs request lines (they may carry data)."""

        def _serve(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Request(
                method=self.command.upper(),
                path=split.path,
                query=parse_qs(split.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            response = server.dispatch(request)
            if response is None:
                self._drop_mid_response()
                return
            payload = response.encode()
            self.send_response(response.status)
            if response.body is not None:
                self.send_header("Content-Type", response.content_type)
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if payload and self.command != "HEAD":
                self.wfile.write(payload)

        def _drop_mid_response(self) -> None:
            # Promise a body, send half of nothing, and hang up: the client sees a broken read.
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "4096")
            self.end_headers()
            self.wfile.write(b'{"partial": ')
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _serve

    return Handler
