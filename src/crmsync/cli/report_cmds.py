"""``crmsync report``: the funnel health report admins look at (HTML with charts, and JSON)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import click

from crmsync.cli.common import (
    connection_option,
    emit_json,
    logging_options,
    output_option,
    stdout,
)
from crmsync.config import load_settings
from crmsync.funnel_source import live_report
from crmsync.report import summary_lines, write_report
from crmsync.state import RunRecord, StateStore


@click.command("report")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Settings file (default: ./crmsync.toml); only [state] url is read.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("crmsync-report"), show_default=True,
              help="Folder to write report.html and report.json into.")
@click.option("--runs", "run_count", type=click.IntRange(1), default=None,
              help="How many of the latest sync runs to report on [default: 20, or 1000 with "
                   "--since/--until/--days].")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None, metavar="DATE",
              help="Only runs started on or after DATE (YYYY-MM-DD, UTC).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None, metavar="DATE",
              help="Only runs started before the end of DATE (YYYY-MM-DD, UTC, inclusive); "
                   "the owner, source, stuck and score sections need a report that ends now.")
@click.option("--days", type=click.IntRange(1), default=None, metavar="N",
              help="Only runs of the last N days (instead of --since).")
@connection_option
@output_option
@logging_options
def report(config_path: Path | None, out_dir: Path, run_count: int | None,
           since: datetime | None, until: datetime | None, days: int | None, connection: str,
           output_format: str) -> None:
    """Funnel health: stages, trends, owners, sources, stuck, SLA, scores, misses, rules."""
    now = datetime.now(UTC)  # noqa: TID251 - the CLI's clock
    start, end = _window(now, since, until, days)
    # The report never contacts a CRM, so it must work without CRM credentials.
    settings = load_settings(config_path, require_crm=False, connection=connection)
    store = StateStore.open(settings.state.url, connection=settings.connection)
    try:
        count = run_count or (1000 if start or end else 20)
        records, result = live_report(store, count, now, since=start, until=end)
        latest = store.runs(1) if not records else []
    finally:
        store.close()
    if not records:
        if output_format == "json":
            emit_json(result)
        else:
            stdout.print(_no_runs_message(latest), markup=False)
        return
    html_path, json_path = write_report(result, out_dir)
    if output_format == "json":
        emit_json(result)
        return
    for line in summary_lines(result):
        stdout.print(line, markup=False)
    stdout.print(f"wrote {html_path}\nwrote {json_path}", markup=False)


def _no_runs_message(latest: list[RunRecord]) -> str:
    """Why there is nothing to report, and what to do: sync first, or widen the dates."""
    if not latest:
        return ("No sync runs recorded yet, so there is no funnel to report on: run "
                "`crmsync run` (or `crmsync demo`) first.")
    return (f"No sync runs started in that date range (the latest started "
            f"{latest[0].started_at:%Y-%m-%d %H:%M}Z): widen --since/--until or use --days.")


def _window(now: datetime, since: datetime | None, until: datetime | None,
            days: int | None) -> tuple[datetime | None, datetime | None]:
    """The ``[start, end)`` of run start times the options ask for (aware UTC), checked."""
    if days is not None and since is not None:
        raise click.UsageError("give --since DATE or --days N, not both")
    start = (now - timedelta(days=days) if days is not None
             else _utc(since.date()) if since is not None else None)
    # --until names a day, included whole: runs started before the next midnight.
    end = _utc(until.date()) + timedelta(days=1) if until is not None else None
    if start is not None and end is not None and start >= end:
        raise click.UsageError("--since is after --until: the date range holds no day")
    return start, end


def _utc(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)
