"""``crmsync undo RUN_ID [--dry-run]``: put back what a run wrote, or show what that would be."""

from __future__ import annotations

from pathlib import Path

import click
from rich.text import Text

from crmsync.cli.common import (
    connection_option,
    emit_json,
    logging_options,
    output_option,
    stdout,
)
from crmsync.config import load_settings
from crmsync.errors import ConfigError, ExitCode
from crmsync.undo import UndoPlan, plan_undo, undo_run
from crmsync.wiring import load_parts

#: How many records a text dry run lists before it only counts (JSON lists them all).
SHOWN = 50


@click.command("undo")
@click.argument("run_id")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Settings file (default: ./crmsync.toml).")
@connection_option
@click.option("--dry-run", is_flag=True,
              help="Show what the undo would write (reads the CRM, writes nothing).")
@output_option
@logging_options
def undo(run_id: str, config_path: Path | None, connection: str, dry_run: bool,
         output_format: str) -> None:
    """Restore the fields crmsync changed in RUN_ID and close the tasks it created.

    A field is restored only while the CRM still holds what the run wrote. Undo takes the
    CRM's run lease: while a sync run holds it, undo does nothing and exits 5.
    """
    parts = load_parts(load_settings(config_path, connection=connection))
    try:
        record = parts.store.get_run(run_id)
        if record is not None and record.connection != parts.store.connection:
            raise ConfigError(f"run {run_id} synced connection {record.connection!r}; undo it "
                              f"with --connection {record.connection}")
        if dry_run:
            _show_plan(plan_undo(parts.connector, parts.store, run_id), output_format)
            return
        result = undo_run(parts.connector, parts.store, run_id)
    finally:
        parts.close()
    if output_format == "json":
        emit_json(result.to_json())
    else:
        if result.undone_before:
            stdout.print(f"run {run_id} was already undone by {result.undone_before}: only "
                         "what changed back since is put back now", markup=False)
        stdout.print(
            f"undo {result.undo_run_id} of {run_id}: restored {result.restored} records, "
            f"skipped {result.skipped} changed since, closed {result.tasks_closed} tasks, "
            f"{result.failed} failed", markup=False,
        )
        if result.tasks_left_closed:
            stdout.print(f"{result.tasks_left_closed} tasks the run closed stay closed (undo "
                         "does not reopen tasks)", markup=False)
    raise SystemExit(int(ExitCode.PARTIAL if result.failed else ExitCode.OK))


def _show_plan(plan: UndoPlan, output_format: str) -> None:
    if output_format == "json":
        emit_json(plan.to_json())
        return
    closes = [c for group in plan.closes.values() for c in group]
    stdout.print(
        f"undo of {plan.run_id} (dry run, nothing written): would restore "
        f"{len(plan.restores)} records, skip {plan.skipped} changed since, close "
        f"{len(closes)} tasks", markup=False,
    )
    if plan.left_closed:
        stdout.print(f"{plan.left_closed} tasks the run closed would stay closed (undo does not "
                     "reopen tasks)", markup=False)
    if plan.restores:
        from rich.table import Table

        table = Table(title_justify="left")
        for name in ("record", "field", "now", "restored to"):
            table.add_column(name, overflow="fold")
        for restore in plan.restores[:SHOWN]:
            for name, value in restore.values.items():
                table.add_row(Text(restore.entry.record_id), Text(name),
                              Text(_shown(restore.current.get(name))), Text(_shown(value)))
        stdout.print(table)
        if len(plan.restores) > SHOWN:
            stdout.print(f"... and {len(plan.restores) - SHOWN} more records "
                         "(--output json lists them all)", markup=False)
    for close in closes[:SHOWN]:
        stdout.print(f"would close task {close.task_id} of {close.contact_id}", markup=False)
    if len(closes) > SHOWN:
        stdout.print(f"... and {len(closes) - SHOWN} more tasks", markup=False)


def _shown(value: object) -> str:
    return "(empty)" if value in (None, "") else str(value)
