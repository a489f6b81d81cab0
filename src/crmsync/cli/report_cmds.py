"""``crmsync report``: the funnel health report admins look at (HTML with charts, and JSON)."""

from __future__ import annotations

from datetime import UTC, datetime
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
from crmsync.state import StateStore


@click.command("report")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Settings file (default: ./crmsync.toml); only [state] url is read.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("crmsync-report"), show_default=True,
              help="Folder to write report.html and report.json into.")
@click.option("--runs", "run_count", type=click.IntRange(1), default=20, show_default=True,
              help="How many of the latest sync runs to sum transitions over.")
@connection_option
@output_option
@logging_options
def report(config_path: Path | None, out_dir: Path, run_count: int, connection: str,
           output_format: str) -> None:
    """Funnel health: stage counts, conversion, stuck contacts, SLA breaches, misses, runs."""
    # The report never contacts a CRM, so it must work without CRM credentials.
    settings = load_settings(config_path, require_crm=False, connection=connection)
    store = StateStore.open(settings.state.url, connection=settings.connection)
    try:
        records, result = live_report(store, run_count,
                                      datetime.now(UTC))  # noqa: TID251 - the CLI
    finally:
        store.close()
    if not records:
        if output_format == "json":
            emit_json(result)
        else:
            stdout.print("No sync runs recorded yet, so there is no funnel to report on: run "
                         "`crmsync run` (or `crmsync demo`) first.", markup=False)
        return
    html_path, json_path = write_report(result, out_dir)
    if output_format == "json":
        emit_json(result)
        return
    for line in summary_lines(result):
        stdout.print(line, markup=False)
    stdout.print(f"wrote {html_path}\nwrote {json_path}", markup=False)
