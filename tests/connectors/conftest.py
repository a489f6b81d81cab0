"""Shared fixtures for the connector tests.

Each connector's fixtures live in their own block below, prefixed with the CRM's name.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crmsync.sandbox.seed import Org, generate_org
from crmsync.sandbox.server import SandboxServer

ROOT = Path(__file__).resolve().parents[2]


# =============================================================================================
# Salesforce (tests/connectors/test_salesforce_connector.py)
# =============================================================================================

SALESFORCE_ANCHOR = datetime(2026, 11, 23, tzinfo=UTC)
SALESFORCE_USERNAME = "integration@crmsync-demo.example"
SALESFORCE_PASSWORD = "s3cret-pw"
SALESFORCE_SECURITY_TOKEN = "TOKEN123"

#: ``admin(method, path, body)`` -> (status, parsed JSON body) against ``/_sandbox/...``.
SalesforceAdmin = Callable[..., tuple[int, Any]]


class SalesforceClock:
    """The emulator's settable clock (aware UTC datetimes)."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        """Move time forward by ``timedelta(**delta)``; return the new now."""
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture(scope="session")
def salesforce_org() -> Org:
    """A small seeded org (a few hundred Leads and Contacts, Opportunities on some Contacts)."""
    return generate_org(450, 11, SALESFORCE_ANCHOR)


@pytest.fixture(scope="session")
def salesforce_login() -> dict[str, str]:
    """The username, password and security token the emulator's SOAP login accepts."""
    return {"username": SALESFORCE_USERNAME, "password": SALESFORCE_PASSWORD,
            "security_token": SALESFORCE_SECURITY_TOKEN}


@pytest.fixture(scope="session")
def salesforce_fieldmap() -> Any:
    """The shipped Salesforce field map."""
    from crmsync.connectors.fieldmap import load_fieldmap

    return load_fieldmap(ROOT / "connectors" / "salesforce.json")


@pytest.fixture
def salesforce_clock() -> SalesforceClock:
    """The emulator clock, one hour after the seed anchor."""
    return SalesforceClock(SALESFORCE_ANCHOR + timedelta(hours=1))


@pytest.fixture(scope="session")
def _salesforce_shared_server() -> Iterator[SandboxServer]:
    # One listening server per session (stopping one costs serve_forever's poll interval);
    # each test swaps a freshly seeded emulator in.
    from crmsync.sandbox.salesforce import SalesforceEmulator

    with SandboxServer(SalesforceEmulator()) as server:
        yield server


def _salesforce_swap(server: SandboxServer, emulator: Any) -> SandboxServer:
    server.reset()
    server.emulator = emulator
    emulator.faults = server.faults
    return server


@pytest.fixture
def salesforce_bare_server(
    _salesforce_shared_server: SandboxServer, salesforce_org: Org, salesforce_clock: SalesforceClock
) -> SandboxServer:
    """A seeded emulator without crmsync's custom fields (``crmsync setup`` not yet run)."""
    from crmsync.sandbox.salesforce import SalesforceEmulator

    emulator = SalesforceEmulator(
        salesforce_org, clock=salesforce_clock, username=SALESFORCE_USERNAME,
        password=SALESFORCE_PASSWORD + SALESFORCE_SECURITY_TOKEN,
    )
    return _salesforce_swap(_salesforce_shared_server, emulator)


@pytest.fixture
def salesforce_server(salesforce_bare_server: SandboxServer, salesforce_fieldmap: Any) -> SandboxServer:
    """A seeded emulator with crmsync's fields set up; no faults, call counts zeroed."""
    from crmsync.connectors.salesforce import SalesforceAuth, SalesforceConnector

    auth = SalesforceAuth.with_session(salesforce_bare_server.base_url, salesforce_bare_server.token)
    connector = SalesforceConnector(salesforce_fieldmap, auth=auth)
    connector.setup()
    connector.close()
    salesforce_bare_server.reset()
    return salesforce_bare_server


@pytest.fixture
def salesforce_sleeps() -> list[float]:
    """Every retry wait a connector asked for (its injected ``sleep``)."""
    return []


@pytest.fixture
def salesforce_connector(
    salesforce_server: SandboxServer, salesforce_fieldmap: Any, salesforce_sleeps: list[float]
) -> Iterator[Any]:
    """A SalesforceConnector in session mode against the emulator; retries sleep into a list."""
    from crmsync.connectors.salesforce import SalesforceAuth, SalesforceConnector
    from crmsync.retry import RetryPolicy

    connector = SalesforceConnector(
        salesforce_fieldmap,
        auth=SalesforceAuth.with_session(salesforce_server.base_url, salesforce_server.token),
        policy=RetryPolicy(attempts=4, budget_s=600),
        sleep=salesforce_sleeps.append,
    )
    yield connector
    connector.close()


@pytest.fixture
def salesforce_admin(_salesforce_shared_server: SandboxServer) -> SalesforceAdmin:
    """Call the sandbox admin API (``/_sandbox/...``) over HTTP, as a test harness would."""
    server = _salesforce_shared_server

    def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(server.base_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
            error.close()
        return status, json.loads(raw) if raw else None

    return call


# =============================================================================================
