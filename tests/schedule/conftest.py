"""Fixtures for schedule and connection tests: sandboxes, a fake clock, both state stores."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crmsync.sandbox.launch import build_sandbox
from crmsync.sandbox.server import SandboxServer
from pgschema import state_url_for

ROOT = Path(__file__).resolve().parents[2]
ANCHOR = datetime(2026, 11, 23, tzinfo=UTC)
PG_URL = os.environ.get(
    "CRMSYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
RULES = (ROOT / "rules/default.json").as_posix()


class FakeClock:
    """A clock the test moves by hand (aware UTC)."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One shared state store, on each backend."""
    yield from state_url_for(request.param, tmp_path)


def admin(server: SandboxServer, method: str, path: str, body: Any = None) -> Any:
    """Call the sandbox's admin API (``/_sandbox/...``)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"{server.base_url}/_sandbox/{path}", data=data, method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def start_sandbox(crm: str, *, contacts: int = 60, seed: int = 3) -> SandboxServer:
    """Start a seeded sandbox with its rate limits lifted (these tests are not about pacing)."""
    server = build_sandbox(crm, contacts=contacts, seed=seed, anchor=ANCHOR)
    server.start()
    if crm == "hubspot":
        admin(server, "POST", "config", {"rate_limits": {"enabled": False}})
    return server


@pytest.fixture
def hubspot() -> Iterator[SandboxServer]:
    server = start_sandbox("hubspot")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def salesforce() -> Iterator[SandboxServer]:
    server = start_sandbox("salesforce")
    try:
        yield server
    finally:
        server.stop()
