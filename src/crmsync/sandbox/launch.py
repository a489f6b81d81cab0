"""Start a seeded emulator of either CRM: the one entry point the CLI, demo and tests share.

Quotas for pacing and scale-out tests (issue 8) are set when the sandbox is built, in the same
JSON vocabulary as ``POST /_sandbox/config``, and the refusals are read back from
``GET /_sandbox/calls`` (or ``server.call_counts()``)::

    server = build_sandbox("hubspot", config={"rate_limits": {"per_10s": 20}})
    with server:
        ...                                        # clients, threads, processes
        server.call_counts()["rate_limited"]       # 429s the limiter answered
        server.call_counts()["rate_limited_by_policy"]  # {"TEN_SECONDLY_ROLLING": n, ...}

    build_sandbox("salesforce", config={"daily_limit": 500})  # 403 REQUEST_LIMIT_EXCEEDED past it

HubSpot's keys are those of :mod:`crmsync.sandbox.hubspot.ratelimit` under ``rate_limits``
(``per_10s``, ``window_s``, ``search_per_s``, ``daily``, ``enabled``, ``retry_after``);
Salesforce's are :meth:`SalesforceEmulator.configure`'s (``daily_limit``, ``api_usage``, ...).
``crmsync sandbox serve`` has the same knobs as options (``--rate-limit``, ``--rate-window``,
``--search-rate``, ``--daily-limit``, ``--no-rate-limits``).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crmsync.errors import ConfigError
from crmsync.sandbox.seed import generate_org
from crmsync.sandbox.server import SandboxServer

CRMS = ("hubspot", "salesforce")


def seed_anchor() -> datetime:
    """Return today's midnight UTC: seeded history ends there, so a seed is stable for a day."""
    # The sandbox is a CRM, with a clock of its own; crmsync's code takes ``now`` from the caller.
    today = datetime.now(UTC)  # noqa: TID251
    return today.replace(hour=0, minute=0, second=0, microsecond=0)


def build_sandbox(
    crm: str,
    *,
    contacts: int = 2000,
    seed: int = 1,
    port: int = 0,
    state_file: Path | None = None,
    anchor: datetime | None = None,
    config: Mapping[str, Any] | None = None,
) -> SandboxServer:
    """Create (not start) a sandbox server for ``crm`` seeded with ``contacts`` people.

    When ``state_file`` exists its saved data replaces the generated org, so a demo CRM
    survives a restart. ``config`` is applied last, as ``POST /_sandbox/config`` would be
    (quotas, page sizes...); a bad key or value raises ``ValueError``.
    """
    if crm not in CRMS:
        raise ValueError(f"unknown CRM {crm!r}; expected one of {', '.join(CRMS)}")
    if port:
        _check_port_free(port)  # before seeding thousands of contacts for nothing
    org = generate_org(contacts, seed, anchor or seed_anchor())
    emulator: Any
    if crm == "hubspot":
        from crmsync.sandbox.hubspot import HubSpotEmulator

        emulator = HubSpotEmulator(org)
    else:
        from crmsync.sandbox.salesforce import SalesforceEmulator

        emulator = SalesforceEmulator(org)
    try:
        server = SandboxServer(emulator, port=port, state_file=state_file, org=org)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise _port_in_use(port) from None
        raise
    if config:
        try:
            emulator.configure(config)
        except ValueError:
            server.close()
            raise
    return server


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


def limits_config(
    crm: str,
    *,
    rate_limit: int | None = None,
    rate_window_s: float | None = None,
    search_rate: int | None = None,
    daily_limit: int | None = None,
    rate_limits_off: bool = False,
) -> dict[str, Any]:
    """Turn quota options into ``build_sandbox(config=...)`` for ``crm``.

    ``rate_limit``/``rate_window_s``/``search_rate`` exist for HubSpot only (Salesforce has no
    short-window limit, only the daily allowance): a ``ValueError`` says so.
    """
    if crm == "hubspot":
        limits: dict[str, Any] = {}
        for key, value in (("per_10s", rate_limit), ("window_s", rate_window_s),
                           ("search_per_s", search_rate), ("daily", daily_limit)):
            if value is not None:
                limits[key] = value
        if rate_limits_off:
            limits["enabled"] = False
        return {"rate_limits": limits} if limits else {}
    short = [name for name, value in (("rate limit", rate_limit), ("rate window", rate_window_s),
                                      ("search rate", search_rate)) if value is not None]
    if short or rate_limits_off:
        raise ValueError(
            "Salesforce has no per-window rate limit to set, only the daily API allowance "
            "(daily limit)")
    return {} if daily_limit is None else {"daily_limit": daily_limit}
