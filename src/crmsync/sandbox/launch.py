"""Start a seeded emulator of either CRM: the one entry point the CLI, demo and tests share."""

from __future__ import annotations

import errno
import socket
from datetime import UTC, datetime
from pathlib import Path

from crmsync.errors import ConfigError
from crmsync.sandbox.seed import generate_org
from crmsync.sandbox.server import SandboxServer

CRMS = ("hubspot", "salesforce")


def seed_anchor() -> datetime:
    """Return today's midnight UTC: seeded history ends there, so a seed is stable for a day."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def build_sandbox(
    crm: str,
    *,
    contacts: int = 2000,
    seed: int = 1,
    port: int = 0,
    state_file: Path | None = None,
    anchor: datetime | None = None,
) -> SandboxServer:
    """Create (not start) a sandbox server for ``crm`` seeded with ``contacts`` people.

    When ``state_file`` exists its saved data replaces the generated org, so a demo CRM
    survives a restart.
    """
    if crm not in CRMS:
        raise ValueError(f"unknown CRM {crm!r}; expected one of {', '.join(CRMS)}")
    if port:
        _check_port_free(port)  # before seeding thousands of contacts for nothing
    org = generate_org(contacts, seed, anchor or seed_anchor())
    if crm == "hubspot":
        from crmsync.sandbox.hubspot import HubSpotEmulator

        emulator = HubSpotEmulator(org)
    else:
        from crmsync.sandbox.salesforce import SalesforceEmulator

        emulator = SalesforceEmulator(org)
    try:
        return SandboxServer(emulator, port=port, state_file=state_file, org=org)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise _port_in_use(port) from None
        raise


def _port_in_use(port: int) -> ConfigError:
    return ConfigError(f"port {port} is in use; try --port 0")


def _check_port_free(port: int, host: str = "127.0.0.1") -> None:
    """Raise a one-line :class:`ConfigError` when ``port`` is taken on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # The server sets SO_REUSEADDR too, so a port in TIME_WAIT is not reported as taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise _port_in_use(port) from None
            raise
