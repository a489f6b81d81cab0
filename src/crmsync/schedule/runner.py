"""Starting one scheduled (or manual) run in this process: the local "start a run" hook."""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from crmsync.config import ScheduleSettings, Settings, select_connection
from crmsync.sync import RunSummary, SyncRun, file_hash
from crmsync.wiring import load_parts, run_options


@dataclass(frozen=True, slots=True)
class RunStarted:
    """How a started run ended: its ledger id (None if it never started), status, exit code."""

    run_id: str | None
    status: str
    exit_code: int


#: ``start_run(schedule, slot) -> RunStarted``: what the scheduler calls for a due slot.
StartRun = Callable[[ScheduleSettings, datetime], RunStarted]


def schedule_trigger(name: str) -> str:
    """Return how the ledger names a run a schedule started."""
    return f"schedule:{name}"


def manual_trigger() -> str:
    """Return ``user@host`` for a run a person started (from the environment, no lookup)."""
    user = (os.environ.get("USER") or os.environ.get("LOGNAME") or os.environ.get("USERNAME")
            or _login_name())
    return f"{user}@{socket.gethostname()}"


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def run_schedule(
    settings: Settings,
    schedule: ScheduleSettings,
    *,
    on_progress: Callable[[str, int], None] | None = None,
) -> RunSummary:
    """Run ``schedule``'s connection now, recorded as ``schedule:NAME``.

    In this process, or, when ``[workers] broker_url`` is set, as a sharded run whose shards
    the workers execute (this process coordinates it).

    Raises:
        SettingsError: The connection's credentials are missing.
        ConfigError: Its rule file or field map is invalid (nothing is contacted).
    """
    parts = load_parts(select_connection(settings, schedule.connection))
    try:
        options = run_options(parts.settings, full=schedule.mode == "full",
                              trigger=schedule_trigger(schedule.name))
        if parts.settings.workers.broker_url:
            from crmsync.workers import sharded_run

            return sharded_run(parts, options, on_progress=on_progress).execute()
        return SyncRun(parts.connector, parts.ruleset, parts.store, options=options,
                       on_progress=on_progress, shadow=parts.shadow,
                       fieldmap_hash=file_hash(parts.fieldmap.path)).execute()
    finally:
        parts.close()


def local_starter(settings: Settings) -> StartRun:
    """Return the hook that runs a due slot from this process (by workers when configured)."""

    def start(schedule: ScheduleSettings, slot: datetime) -> RunStarted:
        summary = run_schedule(settings, schedule)
        return RunStarted(summary.run_id, summary.status, int(summary.exit_code))

    return start
