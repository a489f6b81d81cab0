"""The funnel report as it stands now, read from a state store: what ``crmsync report`` writes
and the console's Funnel page serves, built the same way for both."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crmsync.report import build_report, current_funnel, load_runs
from crmsync.state import RunRecord, StateStore


def live_report(
    store: StateStore, run_count: int, now: datetime, *,
    since: datetime | None = None, until: datetime | None = None,
) -> tuple[list[RunRecord], dict[str, Any]]:
    """Return the latest ``run_count`` sync runs and the report over them (JSON-ready).

    Only runs started in ``[since, until)`` count when either is given. Stage counts are every
    contact's current decision at ``now``, left out when ``until`` is given (the contacts'
    decisions describe a window that ends now only); the run list is empty when no sync run
    was recorded yet.
    """
    records = load_runs(store, run_count, since=since, until=until)
    current = None if until is not None else current_funnel(store, records, now)
    return records, build_report(records, current, since=since, until=until)
