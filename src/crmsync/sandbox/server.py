"""The loopback HTTP server every emulator runs in, with the ``/_sandbox/`` admin API.

An emulator is a plain object that turns a :class:`Request` into a :class:`Response`; this module
does the fault injection, the call accounting and persistence around it, the same way for
Salesforce and HubSpot, as one WSGI application served by cheroot (see :mod:`.wsgi`).

The admin API (never counted as API calls, no token needed):

* ``GET /_sandbox/calls``: ``{"total", "reads", "writes", "by_endpoint", "by_status",
  "rate_limited", "rate_limited_by_policy"}`` (see :meth:`CallLog.snapshot`);
* ``GET|POST /_sandbox/faults``: the fault plan (:meth:`FaultPlan.from_json`);
* ``POST /_sandbox/reset``: clear faults and counts; ``POST /_sandbox/save``: write the state file;
* ``GET|POST /_sandbox/config`` and ``/_sandbox/records/...``: the emulator's own knobs and data.

Connection-level faults (``FaultRule.kind``): ``disconnect`` answers headers that promise a body,
sends part of it and closes the connection (nothing is applied); ``lost_response`` applies the
call (a create lands) and then closes the connection before any byte of the answer is sent.
"""

from __future__ import annotations

import enum
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from crmsync.sandbox import wsgi
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


class Drop(enum.Enum):
    """How a connection-level fault ends a call instead of a :class:`Response`."""

    #: ``disconnect``: headers promising a body, part of it, then the connection closes.
    MID_RESPONSE = "disconnect"
    #: ``lost_response``: the call was applied; the connection closes before any answer byte.
    BEFORE_RESPONSE = "lost_response"


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

    The port is bound when the object is made (``port=0`` picks a free one), so ``base_url`` is
    known before :meth:`start`. ``threads`` worker threads answer calls at once (latency faults
    sleep in them, outside the data lock).

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
        threads: int = 16,
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
        self._httpd = wsgi.make_server(self.wsgi_app, host=host, port=port, threads=threads)
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        host, port = self._httpd.bind_addr[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        """The bound TCP port."""
        return int(self._httpd.bind_addr[1])

    @property
    def token(self) -> str:
        """The bearer token the emulator accepts."""
        return self.emulator.token

    def start(self) -> SandboxServer:
        """Serve in a background thread and return self."""
        self._thread = threading.Thread(
            target=self._httpd.serve, name=f"sandbox-{self.emulator.crm}", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted (Ctrl-C, or :meth:`stop`)."""
        self._httpd.serve()

    def stop(self) -> None:
        """Stop serving, close every connection and save the data if a state file was given."""
        self.close()
        self.save()

    def close(self) -> None:
        """Stop serving and release the port (without saving); safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._httpd.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)

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

    def dispatch(self, request: Request) -> Response | Drop:
        """Run one request through admin routing, faults, accounting and the emulator.

        Returns a :class:`Drop` when the connection must be cut instead of answered:
        ``disconnect`` (nothing applied) and ``lost_response`` (applied, answer lost).
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
            return Drop.MID_RESPONSE
        if rule is not None and rule.kind != "lost_response":
            response = self.emulator.fault_response(rule, request)
        else:
            # The emulator's quota counters are read and bumped under this lock too, so
            # concurrent clients are admitted exactly up to a limit, never past it.
            with self.data_lock:
                try:
                    response = self.emulator.handle(request)
                except HttpError as error:
                    response = error.response
        if rule is not None and rule.kind == "lost_response":  # applied; the answer is lost
            self.calls.answered(None)
            return Drop.BEFORE_RESPONSE
        self.calls.answered(response.status, throttled=response.throttled)
        return response

    def wsgi_app(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """The WSGI application: one :class:`Request` in, one :class:`Response` out."""
        method, path, query, headers, body = wsgi.request_parts(environ)
        request = Request(method=method, path=path, query=query, headers=headers, body=body)
        response = self.dispatch(request)
        if isinstance(response, Drop):
            return wsgi.cut(environ, start_response, before=response is Drop.BEFORE_RESPONSE)
        payload = response.encode()
        out = list(response.headers.items())
        if response.body is not None:
            out.append(("Content-Type", response.content_type))
        out.append(("Content-Length", str(len(payload))))
        start_response(wsgi.status_line(response.status), out)
        return [b"" if method == "HEAD" else payload]

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

