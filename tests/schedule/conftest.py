"""Fixtures for schedule and connection tests: sandboxes, a fake clock, both state stores."""

from __future__ import annotations

import json
import os
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crmsync.sandbox.launch import build_sandbox
from crmsync.sandbox.server import SandboxServer

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


def postgres_url() -> Iterator[str]:
    """Yield a URL whose connections see only a fresh schema, dropped afterwards.

    Fails (does not skip) under CI=true when PostgreSQL is unreachable.
    """
    schema = f"crmsync_sched_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        reason = f"PostgreSQL unreachable at {sa.make_url(PG_URL).render_as_string()}: {exc.orig}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason + " (set CRMSYNC_TEST_POSTGRES_URL; fails instead of skipping in CI)")
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One shared state store, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'state.db').as_posix()}"
    else:
        yield from postgres_url()


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
