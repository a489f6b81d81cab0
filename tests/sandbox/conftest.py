"""Shared fixtures for the sandbox emulator tests (HubSpot ones are prefixed ``hubspot_``)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from crmsync.sandbox.hubspot import HubSpotEmulator, RateLimits
from crmsync.sandbox.seed import Org, generate_org
from crmsync.sandbox.server import SandboxServer

HUBSPOT_ANCHOR = datetime(2026, 11, 23, tzinfo=UTC)


class FakeClock:
    """A settable clock in epoch seconds: the emulator's "now" for timestamps and rate limits."""

    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@pytest.fixture(scope="session")
def hubspot_org() -> Org:
    """A small seeded org: enough contacts for three list pages of 100."""
    return generate_org(250, 7, HUBSPOT_ANCHOR)


@pytest.fixture
def hubspot_clock() -> FakeClock:
    """The emulator clock, one hour after the seed anchor."""
    return FakeClock(datetime(2026, 11, 23, 1, 0, tzinfo=UTC))


@pytest.fixture
def hubspot_emulator(hubspot_org: Org, hubspot_clock: FakeClock) -> HubSpotEmulator:
    """A seeded emulator with rate limits raised so functional tests never hit them."""
    return HubSpotEmulator(
        hubspot_org,
        clock=hubspot_clock,
        rate_limits=RateLimits(per_10s=100_000, search_per_s=100_000),
    )


@pytest.fixture(scope="session")
def _hubspot_shared_server() -> Iterator[SandboxServer]:
    # One listening server for the session: stopping one waits out serve_forever's 0.5 s poll,
    # which would dominate the suite. Each test swaps its own fresh emulator in (below).
    with SandboxServer(HubSpotEmulator()) as server:
        yield server


@pytest.fixture
def hubspot_server(
    _hubspot_shared_server: SandboxServer, hubspot_emulator: HubSpotEmulator
) -> SandboxServer:
    """The seeded emulator served on loopback, with no faults and zeroed call counts."""
    server = _hubspot_shared_server
    server.reset()
    server.emulator = hubspot_emulator
    hubspot_emulator.faults = server.faults
    return server


@pytest.fixture
def hubspot_api(hubspot_server: SandboxServer) -> Any:
    """The real hubspot-api-client aimed at the emulator (no retries)."""
    from hubspot import HubSpot

    return HubSpot(access_token=hubspot_server.token, host=hubspot_server.base_url)


HttpCall = Callable[..., tuple[int, Any, dict[str, str]]]


@pytest.fixture
def hubspot_http(hubspot_server: SandboxServer) -> HttpCall:
    """Raw HTTP against the emulator: ``call(method, path, body=None, token=...)``.

    Returns (status, parsed JSON body or None, headers). Used where the SDK hides the wire
    (exact status codes, headers, admin calls).
    """

    def call(
        method: str, path: str, body: Any = None, *, token: str | None = hubspot_server.token
    ) -> tuple[int, Any, dict[str, str]]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(hubspot_server.base_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, raw, headers = response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            status, raw, headers = error.code, error.read(), dict(error.headers)
            error.close()
        return status, json.loads(raw) if raw else None, headers

    return call


# -- Salesforce (fixtures prefixed ``sf_``) ----------------------------------------------------

SF_ANCHOR = datetime(2026, 11, 23, tzinfo=UTC)
SF_USERNAME = "sync@crmsync-demo.example"
SF_PASSWORD = "s3cret"
SF_SECURITY_TOKEN = "TOKEN123"


@pytest.fixture(scope="session")
def sf_org() -> Org:
    """A small seeded org (about 280 Contacts and 320 Leads)."""
    return generate_org(600, 3, SF_ANCHOR)


@pytest.fixture
def sf_credentials() -> tuple[str, str, str]:
    """(username, password, security token) the seeded emulator's SOAP login accepts."""
    return SF_USERNAME, SF_PASSWORD, SF_SECURITY_TOKEN


@pytest.fixture
def sf_clock() -> FakeClock:
    """The Salesforce emulator clock, one hour after the seed anchor."""
    return FakeClock(datetime(2026, 11, 23, 1, 0, tzinfo=UTC))


@pytest.fixture
def sf_emulator(sf_org: Org, sf_clock: FakeClock) -> Any:
    """A freshly seeded Salesforce emulator that accepts one username/password for SOAP login."""
    from crmsync.sandbox.salesforce import SalesforceEmulator

    return SalesforceEmulator(
        sf_org, clock=sf_clock, username=SF_USERNAME, password=SF_PASSWORD + SF_SECURITY_TOKEN
    )


@pytest.fixture(scope="session")
def _sf_shared_server() -> Iterator[SandboxServer]:
    # One listening server per session, as for HubSpot; each test swaps its emulator in.
    from crmsync.sandbox.salesforce import SalesforceEmulator

    with SandboxServer(SalesforceEmulator()) as server:
        yield server


@pytest.fixture
def sf_server(_sf_shared_server: SandboxServer, sf_emulator: Any) -> SandboxServer:
    """The seeded Salesforce emulator on loopback, with no faults and zeroed call counts."""
    server = _sf_shared_server
    server.reset()
    server.emulator = sf_emulator
    sf_emulator.faults = server.faults
    return server


@pytest.fixture
def sf(sf_server: SandboxServer) -> Any:
    """The real simple-salesforce client in direct-session mode, aimed at the emulator."""
    from simple_salesforce import Salesforce

    from crmsync.connectors.transport import salesforce_session

    session, instance_url = salesforce_session(sf_server.base_url)
    return Salesforce(
        instance_url=instance_url, session_id=sf_server.token, session=session, version="59.0"
    )


@pytest.fixture
def sf_http(sf_server: SandboxServer) -> HttpCall:
    """Raw HTTP against the Salesforce emulator; same contract as ``hubspot_http``."""

    def call(
        method: str, path: str, body: Any = None, *, token: str | None = sf_server.token,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(sf_server.base_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, raw, got = response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as error:
            status, raw, got = error.code, error.read(), dict(error.headers)
            error.close()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode("utf-8")
        return status, parsed, got

    return call
