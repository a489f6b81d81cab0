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
    from crmsync.connectors.fieldmap_load import load_fieldmap

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
def salesforce_server(
    salesforce_bare_server: SandboxServer, salesforce_fieldmap: Any
) -> SandboxServer:
    """A seeded emulator with crmsync's fields set up; no faults, call counts zeroed."""
    from crmsync.connectors.salesforce import SalesforceAuth, SalesforceConnector

    auth = SalesforceAuth.with_session(salesforce_bare_server.base_url,
                                       salesforce_bare_server.token)
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
# HubSpot (tests/connectors/test_hubspot_connector.py)
# =============================================================================================

HUBSPOT_ANCHOR = datetime(2026, 11, 23, tzinfo=UTC)

#: ``hubspot_admin(method, path, body)`` -> (status, parsed JSON body) against ``/_sandbox/...``.
HubSpotAdmin = Callable[..., tuple[int, Any]]


class HubSpotClock:
    """A fake clock shared by the emulator (epoch seconds) and the connector (pacing, sleeps).

    ``sleep`` records each wait and moves time on, so rate-limit windows pass instantly.
    """

    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        """Record a wait and advance the clock by it."""
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        """Move time forward without recording a sleep."""
        self.now += seconds


@pytest.fixture(scope="session")
def hubspot_org() -> Org:
    """A small seeded account: 300 contacts, deals on about a fifth of them."""
    return generate_org(300, 5, HUBSPOT_ANCHOR)


@pytest.fixture(scope="session")
def hubspot_fieldmap() -> Any:
    """The shipped HubSpot field map."""
    from crmsync.connectors.fieldmap_load import load_fieldmap

    return load_fieldmap(ROOT / "connectors" / "hubspot.json")


@pytest.fixture
def hubspot_clock() -> HubSpotClock:
    """The emulator and connector clock, one hour after the seed anchor."""
    return HubSpotClock(HUBSPOT_ANCHOR + timedelta(hours=1))


@pytest.fixture(scope="session")
def _hubspot_shared_server() -> Iterator[SandboxServer]:
    # One listening server per session; each test swaps a freshly seeded emulator in.
    from crmsync.sandbox.hubspot import HubSpotEmulator

    with SandboxServer(HubSpotEmulator()) as server:
        yield server


def _hubspot_swap(server: SandboxServer, emulator: Any) -> SandboxServer:
    server.reset()
    server.emulator = emulator
    emulator.faults = server.faults
    return server


@pytest.fixture
def hubspot_serve(_hubspot_shared_server: SandboxServer) -> Callable[[Any], SandboxServer]:
    """``hubspot_serve(emulator)`` serves another emulator (faults and call counts cleared)."""
    return lambda emulator: _hubspot_swap(_hubspot_shared_server, emulator)


@pytest.fixture
def hubspot_bare_server(
    _hubspot_shared_server: SandboxServer, hubspot_org: Org, hubspot_clock: HubSpotClock
) -> SandboxServer:
    """A seeded account without crmsync's properties (``crmsync setup`` not yet run)."""
    from crmsync.sandbox.hubspot import HubSpotEmulator

    return _hubspot_swap(_hubspot_shared_server, HubSpotEmulator(hubspot_org, clock=hubspot_clock))


@pytest.fixture
def hubspot_server(
    hubspot_bare_server: SandboxServer, hubspot_fieldmap: Any, hubspot_clock: HubSpotClock
) -> SandboxServer:
    """A seeded account with crmsync's properties set up; no faults, call counts zeroed."""
    from crmsync.connectors.hubspot import HubSpotConnector

    connector = HubSpotConnector(hubspot_fieldmap, token=hubspot_bare_server.token,
                                 base_url=hubspot_bare_server.base_url)
    connector.setup()
    connector.close()
    hubspot_bare_server.reset()
    return hubspot_bare_server


@pytest.fixture
def hubspot_connector(
    hubspot_server: SandboxServer, hubspot_fieldmap: Any, hubspot_clock: HubSpotClock
) -> Iterator[Any]:
    """A HubSpotConnector against the emulator; waits go to ``hubspot_clock.sleeps``."""
    from crmsync.connectors.hubspot import HubSpotConnector
    from crmsync.retry import RetryPolicy

    connector = HubSpotConnector(
        hubspot_fieldmap, token=hubspot_server.token, base_url=hubspot_server.base_url,
        policy=RetryPolicy(attempts=4, budget_s=600), sleep=hubspot_clock.sleep,
        clock=hubspot_clock,
    )
    yield connector
    connector.close()


@pytest.fixture
def hubspot_admin(_hubspot_shared_server: SandboxServer) -> HubSpotAdmin:
    """Call the sandbox admin API (``/_sandbox/...``) over HTTP, as a test harness would."""
    server = _hubspot_shared_server

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
