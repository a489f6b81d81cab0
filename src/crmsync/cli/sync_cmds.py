"""Commands that talk to a CRM: init, setup, plan, run, runs, undo and the one-command demo."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from crmsync.cli.common import connection_option, emit_json, output_option, stderr, stdout
from crmsync.wiring import Parts, default_path, load_parts, run_options
from crmsync.config import Settings, load_settings, write_starter
from crmsync.errors import ConfigError, ExitCode
from crmsync.sync import RunSummary, SyncOptions, SyncRun, file_hash, minimum_api_calls
from crmsync.undo import undo_run

config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
    help="Settings file (default: ./crmsync.toml); every key can be overridden by "
         "CRMSYNC_<SECTION>__<KEY> environment variables.",
)


def _settings(config_path: Path | None, connection: str = "default") -> Settings:
    return load_settings(config_path, connection=connection)


@contextmanager
def _parts(config_path: Path | None, connection: str = "default") -> Iterator[Parts]:
    parts = load_parts(_settings(config_path, connection))
    try:
        yield parts
    finally:
        parts.close()


# -- init / setup -------------------------------------------------------------------------------


@click.command("init")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True)
@click.option("--force", is_flag=True, help="Overwrite existing files.")
def init(directory: Path, force: bool) -> None:
    """Write a starter crmsync.toml, rules/default.json and the connectors' field maps."""
    directory.mkdir(parents=True, exist_ok=True)
    written = write_starter(directory, force=force)
    for relative in ("rules/default.json", "connectors/hubspot.json", "connectors/salesforce.json"):
        target = directory / relative
        if target.exists() and not force:
            continue
        source = default_path(relative)
        if source.resolve() == target.resolve():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written.append(target)
    for path in written:
        stdout.print(f"wrote {path}")
    stdout.print("next: edit crmsync.toml, then `crmsync setup` and `crmsync plan`")


@click.command("setup")
@config_option
@connection_option
@output_option
def setup(config_path: Path | None, connection: str, output_format: str) -> None:
    """Create crmsync's fields/properties in the CRM (safe to run again)."""
    with _parts(config_path, connection) as parts:
        report = parts.connector.setup()
    if output_format == "json":
        emit_json({"created": report.created, "existing": report.existing})
        return
    for name in report.created:
        stdout.print(f"created  {name}")
    stdout.print(f"{len(report.created)} created, {len(report.existing)} already there")


# -- plan / run ---------------------------------------------------------------------------------


def _options(parts: Parts, *, dry_run: bool = False, full: bool = False) -> SyncOptions:
    from crmsync.schedule import manual_trigger

    return run_options(parts.settings, dry_run=dry_run, full=full, trigger=manual_trigger())


@click.command("plan")
@config_option
@connection_option
@click.option("--full", is_flag=True, help="Plan a full re-scan instead of an incremental read.")
@output_option
def plan(config_path: Path | None, connection: str, full: bool, output_format: str) -> None:
    """Dry run: what a sync would change, by transition, with the API calls it would cost."""
    with _parts(config_path, connection) as parts:
        summary = _execute(parts, _options(parts, dry_run=True, full=full), output_format)
    _report(summary, parts, output_format)
    raise SystemExit(int(summary.exit_code))


@click.command("run")
@config_option
@connection_option
@click.option("--full", is_flag=True, help="Re-read everything, ignoring the cursors.")
@output_option
def run(config_path: Path | None, connection: str, full: bool, output_format: str) -> None:
    """Sync: read, decide, write the changes back. Exit 0 ok, 1 partial, 3 auth/quota, 4 transient."""
    with _parts(config_path, connection) as parts:
        summary = _execute(parts, _options(parts, full=full), output_format)
    _report(summary, parts, output_format)
    raise SystemExit(int(summary.exit_code))


def _execute(parts: Parts, options: SyncOptions, output_format: str, total: int | None = None,
             ) -> RunSummary:
    with _progress(output_format, total) as advance:
        runner = SyncRun(parts.connector, parts.ruleset, parts.store, options=options,
                         on_progress=lambda stream, n: advance(n),
                         fieldmap_hash=file_hash(parts.fieldmap.path))
        return runner.execute()


@contextmanager
def _progress(output_format: str, total: int | None) -> Iterator[Callable[[int], None]]:
    if output_format == "json" or not stderr.is_terminal:
        yield lambda n: None
        return
    columns = [SpinnerColumn(), TextColumn("[bold]syncing"), BarColumn(), MofNCompleteColumn()]
    with Progress(*columns, console=stderr, transient=True) as progress:
        task = progress.add_task("sync", total=total)
        yield lambda n: progress.advance(task, n)


def _report(summary: RunSummary, parts: Parts, output_format: str) -> None:
    minimum = minimum_api_calls(summary, parts.connector.limits)
    if output_format == "json":
        emit_json({**summary.to_json(), "minimum_api_calls": minimum})
        return
    stdout.print(_summary_table(summary))
    _print_scope_and_changes(summary)
    if summary.transitions:
        table = Table(title="Transitions", title_justify="left")
        table.add_column("from → to")
        table.add_column("contacts", justify="right")
        for name, count in summary.transitions.most_common(12):
            table.add_row(name, str(count))
        stdout.print(table)
    for sample in summary.samples:
        stdout.print(f"  e.g. {sample['id']}: {sample['transition']} — {sample['reason']}",
                     markup=False)
    stdout.print(f"API calls: {summary.api_calls} (contact pages and write batches alone need "
                 f"{minimum}; related deal reads come on top)")
    if summary.error:
        stderr.print(f"crmsync: {summary.error}", markup=False)
    stderr.print(summary.logfmt(), markup=False)


def _print_scope_and_changes(summary: RunSummary) -> None:
    """Say what was read (whole streams, and why) and which outputs change, one by one."""
    for stream, scope in summary.scope.items():
        stdout.print(f"{stream}: {scope}", markup=False)
    if summary.changes:
        verb = "would change" if summary.mode == "plan" else "changed"
        names = (("status", "status"), ("miss_type", "miss type"), ("score", "score"),
                 ("reason", "reason"), ("ruleset", "rule-set stamp"),
                 ("tasks_created", "tasks to create"), ("tasks_closed", "tasks to close"))
        shown = ", ".join(f"{label} {summary.changes[key]}" for key, label in names
                          if summary.changes.get(key))
        stdout.print(f"{verb}: {shown}", markup=False)
    if summary.reclassified:
        moves = ", ".join(f"{k} {n}" for k, n in summary.reclassified.most_common(6))
        stdout.print(f"re-classified by rules {summary.ruleset_version} (data unchanged): {moves}",
                     markup=False)
    if summary.mode == "plan":
        reads, writes = summary.api_calls, summary.estimated_write_calls
        stdout.print(f"estimated API calls for the run: {reads + writes} ({reads} reads and "
                     f"checks + {writes} write batches)", markup=False)


def _summary_table(summary: RunSummary) -> Table:
    counts = summary.counts
    verb = "would" if summary.mode == "plan" else ""
    table = Table(title=f"Run {summary.run_id} ({summary.mode}): {summary.status}",
                  title_justify="left")
    table.add_column("status")
    table.add_column("contacts", justify="right")
    table.add_column("miss type")
    table.add_column("contacts", justify="right")
    statuses = ("lead", "prospect", "opportunity", "disqualified")
    misses = ("none", "soft", "hard", "")
    for status, miss in zip(statuses, misses, strict=True):
        table.add_row(status, str(summary.statuses.get(status, 0)), miss,
                      str(summary.miss_types.get(miss, 0)) if miss else "")
    table.add_section()
    table.add_row("read", str(counts.get("read", 0)), f"{verb} update".strip(),
                  str(counts.get("updated", 0)))
    table.add_row("unchanged", str(counts.get("unchanged", 0)), f"{verb} create tasks".strip(),
                  str(counts.get("tasks_created" if not verb else "planned_task_creates", 0)))
    table.add_row("rejected", str(counts.get("rejected", 0)), f"{verb} close tasks".strip(),
                  str(counts.get("tasks_closed" if not verb else "planned_task_closes", 0)))
    return table


# -- runs / undo --------------------------------------------------------------------------------


@click.command("runs")
@config_option
@connection_option(every_by_default=True)
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
@output_option
def runs(config_path: Path | None, connection: str | None, limit: int, output_format: str) -> None:
    """Run history, newest first: every connection's, or one's (--connection)."""
    from crmsync.state import StateStore

    settings = load_settings(config_path, require_crm=False,
                             connection=connection or "default")
    store = StateStore.open(settings.state.url)
    try:
        records = store.runs(limit=limit, connection=connection)
    finally:
        store.close()
    if output_format == "json":
        emit_json([_run_json(r) for r in records])
        return
    header: tuple[str, ...] = ("run", "mode", "crm", "started", "status", "exit", "read",
                               "updated", "tasks", "rejected", "api calls", "by")
    # The connection column only where there is more than the one default connection.
    several = any(r.connection != "default" for r in records)
    if several:
        header = (*header[:2], "connection", *header[2:])
    rows = []
    for r in records:
        summary: dict[str, Any] = dict(r.counts or {})
        counts: dict[str, Any] = summary.get("counts", summary)  # undo runs store them flat
        rows.append((r.id, r.mode, r.crm, r.started_at.strftime("%Y-%m-%d %H:%M:%S"), r.status,
                     str(r.exit_code if r.exit_code is not None else ""),
                     str(counts.get("read", "")), str(counts.get("updated", "")),
                     str(counts.get("tasks_created", "")), str(counts.get("rejected", "")),
                     str(summary.get("api_calls", "")), r.trigger or ""))
        if several:
            rows[-1] = (*rows[-1][:2], r.connection, *rows[-1][2:])
    if not stdout.is_terminal:
        # Piped or logged: tab-separated lines, nothing cut (run ids go to `crmsync undo`).
        for row in (header, *rows):
            click.echo("\t".join(row))
        return
    table = Table(title="crmsync runs")
    for column in header:
        table.add_column(column, no_wrap=column == "run")
    for row in rows:
        table.add_row(*row)
    stdout.print(table)


def _run_json(record: Any) -> dict[str, Any]:
    return {
        "run_id": record.id, "mode": record.mode, "crm": record.crm,
        "connection": record.connection, "trigger": record.trigger,
        "status": record.status, "exit_code": record.exit_code,
        "started_at": record.started_at.isoformat(),
        "finished_at": record.finished_at.isoformat() if record.finished_at else None,
        "summary": record.counts, "error": record.error,
    }


@click.command("undo")
@click.argument("run_id")
@config_option
@connection_option
@output_option
def undo(run_id: str, config_path: Path | None, connection: str, output_format: str) -> None:
    """Restore the fields crmsync changed in RUN_ID and close the tasks it created."""
    with _parts(config_path, connection) as parts:
        record = parts.store.get_run(run_id)
        if record is not None and record.connection != parts.store.connection:
            raise ConfigError(f"run {run_id} synced connection {record.connection!r}; undo it "
                              f"with --connection {record.connection}")
        result = undo_run(parts.connector, parts.store, run_id)
    if output_format == "json":
        emit_json(result.to_json())
    else:
        stdout.print(
            f"restored {result.restored} records, skipped {result.skipped} changed since, "
            f"closed {result.tasks_closed} tasks, {result.failed} failed"
        )
    raise SystemExit(int(ExitCode.PARTIAL if result.failed else ExitCode.OK))


# -- demo ---------------------------------------------------------------------------------------


@click.command("demo")
@click.option("--crm", type=click.Choice(["hubspot", "salesforce"]), default="hubspot",
              show_default=True)
@click.option("--contacts", type=click.IntRange(1, 200_000), default=2000, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the demo's state and sandbox data here (default: a temporary folder).")
@output_option
def demo(crm: str, contacts: int, seed: int, directory: Path | None, output_format: str) -> None:
    """Seeded sandbox CRM + setup + full sync with the default rules, zero configuration."""
    from crmsync.demo import run_demo

    workdir = directory or Path(tempfile.mkdtemp(prefix="crmsync-demo-"))
    result = run_demo(crm=crm, contacts=contacts, seed=seed, workdir=workdir,
                      progress=lambda total: _progress(output_format, total))
    if output_format == "json":
        emit_json(result.to_json())
        raise SystemExit(int(result.summary.exit_code))
    stdout.print(f"[bold]crmsync demo[/bold]: {crm} sandbox with {contacts} contacts (seed {seed})")
    stdout.print(f"setup: {len(result.setup.created)} crmsync fields created")
    stdout.print(_summary_table(result.summary))
    stdout.print(
        f"API calls: {result.api_calls} used for the sync; minimum the APIs allow: "
        f"{result.minimum_calls} ({result.api_calls / max(1, result.minimum_calls):.2f}x)"
    )
    for sample in result.summary.samples:
        stdout.print(f"  e.g. {sample['id']}: {sample['transition']} — {sample['reason']}",
                     markup=False)
    stdout.print(
        "\nLook closer:\n"
        f"  funnel health report: {result.report}\n"
        f"  crmsync runs --config {result.config_path}\n"
        f"  crmsync sandbox serve --crm {crm} --state {result.sandbox_state}   "
        "# the synced CRM, for the SDKs or curl\n"
        f"  crmsync rules test {result.rules_path}   # the rules' own examples, with coverage"
    )
    stderr.print(result.summary.logfmt(), markup=False)
    raise SystemExit(int(result.summary.exit_code))


def register(group: click.Group) -> None:
    """Attach the CRM commands to the root group."""
    for command in (init, setup, plan, run, runs, undo, demo):
        group.add_command(command)
