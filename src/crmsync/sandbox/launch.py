"""Start a seeded emulator of either CRM: the one entry point the CLI, demo and tests share."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

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
    org = generate_org(contacts, seed, anchor or seed_anchor())
    if crm == "hubspot":
        from crmsync.sandbox.hubspot import HubSpotEmulator

        emulator = HubSpotEmulator(org)
    else:
        from crmsync.sandbox.salesforce import SalesforceEmulator

        emulator = SalesforceEmulator(org)
    return SandboxServer(emulator, port=port, state_file=state_file, org=org)
