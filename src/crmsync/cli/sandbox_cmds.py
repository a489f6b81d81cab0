"""``crmsync sandbox serve``: the loopback CRM emulators, for trying rules against a fake CRM."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import click

from crmsync.cli.common import logging_options, stderr
from crmsync.sandbox.launch import CRMS, build_sandbox, limits_config


@click.group("sandbox")
def sandbox() -> None:
    """Loopback emulators of the Salesforce and HubSpot APIs (no account needed)."""


@sandbox.command("serve")
@click.option("--crm", type=click.Choice(CRMS), default="hubspot", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="TCP port on 127.0.0.1 (0 picks a free one).")
@click.option("--contacts", type=click.IntRange(0), default=2000, show_default=True,
              help="How many contacts to seed.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the generated data.")
@click.option("--state", "state_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Load data from this file if it exists, and save it there on exit.")
@click.option("--rate-limit", type=click.IntRange(1), default=None,
              help="HubSpot: calls per rolling window (default 100).")
@click.option("--rate-window", type=click.FloatRange(0, min_open=True), default=None,
              help="HubSpot: that window in seconds (default 10).")
@click.option("--search-rate", type=click.IntRange(1), default=None,
              help="HubSpot: search calls per second (default 5).")
@click.option("--daily-limit", type=click.IntRange(1), default=None,
              help="Calls per day: HubSpot's daily limit, Salesforce's daily API allowance.")
@click.option("--no-rate-limits", is_flag=True, help="HubSpot: admit every call.")
@logging_options
def serve(
    crm: str, port: int, contacts: int, seed: int, state_file: Path | None,
    rate_limit: int | None, rate_window: float | None, search_rate: int | None,
    daily_limit: int | None, no_rate_limits: bool,
) -> None:
    """Serve a seeded CRM emulator until interrupted.

    The first line printed is the base URL and the token to use, e.g. with
    CRMSYNC_CRM__BASE_URL and CRMSYNC_CRM__TOKEN. Calls the quotas refused are counted in
    GET /_sandbox/calls ("rate_limited", "rate_limited_by_policy").
    """
    try:
        config = limits_config(crm, rate_limit=rate_limit, rate_window_s=rate_window,
                               search_rate=search_rate, daily_limit=daily_limit,
                               rate_limits_off=no_rate_limits)
    except ValueError as problem:
        raise click.UsageError(str(problem)) from None
    # SIGTERM (a service manager) and Ctrl-C stop the server from another thread, the way the
    # HTTP server expects to be stopped: an exception raised inside its accept loop could leave
    # one of its locks held and the process hanging. Set before the server's threads exist.
    stopping = threading.Event()
    started: list[Any] = []

    def stop_serving(_signum: int, _frame: Any) -> None:
        stopping.set()
        if started:
            threading.Thread(target=started[0].close, daemon=True).start()

    signal.signal(signal.SIGTERM, stop_serving)
    signal.signal(signal.SIGINT, stop_serving)
    server = build_sandbox(crm, contacts=contacts, seed=seed, port=port, state_file=state_file,
                           config=config)
    started.append(server)
    try:
        # First line: machine-readable, so scripts can start the sandbox and read where it is.
        click.echo(f"{server.base_url} token={server.token}", nl=True)
        stderr.print(
            f"crmsync sandbox: {crm} with {contacts} contacts (seed {seed}); admin API at "
            f"{server.base_url}/_sandbox/calls. Ctrl-C to stop.", markup=False,
        )
        if not stopping.is_set():
            server.serve_forever()
    finally:
        server.stop()
        if state_file is not None:
            stderr.print(f"crmsync sandbox: data saved to {state_file}", markup=False)
