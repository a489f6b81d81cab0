"""``crmsync runs`` and ``crmsync rejections``: what past runs did, from the state store only.

Neither contacts a CRM, so neither needs CRM credentials (``[state] url`` is all they read).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from crmsync.cli.common import (
    connection_option,
    emit_json,
    logging_options,
    output_option,
    stdout,
)
from crmsync.errors import ConfigError
from crmsync.history import (
    MODE_LABELS,
    duration_s,
    duration_text,
    latest_writing_run,
    rejection_rows,
    run_counts,
    run_json,
    undone_run,
)

config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
    help="Settings file (default: ./crmsync.toml); only [state] url is read.",
)


@contextmanager
def _store(config_path: Path | None, connection: str | None = None) -> Iterator[Any]:
    """The state store of ``connection`` (``None``: the shared store, every connection)."""
    from crmsync.config import load_settings
    from crmsync.state import StateStore

    settings = load_settings(config_path, require_crm=False,
                             connection=connection or "default")
    store = StateStore.open(settings.state.url, connection=settings.connection)
    try:
        yield store
    finally:
        store.close()


def _every_connections_runs(config_path: Path | None, limit: int) -> list[Any]:
    """The latest ``limit`` runs of every connection, newest first, wherever each is stored.

    Connections that share ``[state] url`` share one ledger; one with a ``state_url`` of its own
    keeps its runs there, so each distinct store is read once and the lists merged.
    """
    from crmsync.config import load_settings
    from crmsync.state import StateStore

    settings = load_settings(config_path, require_crm=False, connection="default")
    urls = {settings.state.url}
    for name in settings.connection_names():
        urls.add(load_settings(config_path, require_crm=False, connection=name).state.url)
    found: dict[str, Any] = {}
    for url in sorted(urls):
        with StateStore.open(url) as store:
            found.update((r.id, r) for r in store.runs(limit=limit, connection=None))
    return sorted(found.values(), key=lambda r: r.started_at, reverse=True)[:limit]


@click.command("runs")
@config_option
@connection_option(every_by_default=True)
@click.option("--limit", type=click.IntRange(1), default=20, show_default=True)
@output_option
@logging_options
def runs(config_path: Path | None, connection: str | None, limit: int,
         output_format: str) -> None:
    """Run history, newest first."""
    if connection is None:
        records = _every_connections_runs(config_path, limit)
    else:
        with _store(config_path, connection) as store:
            records = store.runs(limit=limit, connection=connection)
    if output_format == "json":
        emit_json([run_json(r) for r in records])
        return
    if not stdout.is_terminal:
        # Piped or logged: tab-separated lines with every column, nothing cut.
        header = ("run", "mode", "crm", "connection", "started", "duration_s", "status",
                  "exit", "read", "updated", "tasks", "rejected", "api_calls", "undo_of", "by",
                  "workers", "error")
        click.echo("\t".join(header))
        for r in records:
            summary, counts = run_counts(r)
            seconds = duration_s(r)
            row = (r.id, MODE_LABELS.get(r.mode, r.mode), r.crm, r.connection,
                   r.started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "" if seconds is None else f"{seconds:.1f}", r.status,
                   "" if r.exit_code is None else str(r.exit_code),
                   str(counts.get("read", "")),
                   str(counts.get("updated", counts.get("restored", ""))),
                   str(counts.get("tasks_created", "")),
                   str(counts.get("rejected", counts.get("failed", ""))),
                   str(summary.get("api_calls", "")), undone_run(r) or "", r.trigger or "",
                   ",".join(sorted(summary.get("workers") or {})),
                   (r.error or "").replace("\t", " ").replace("\n", " "))
            click.echo("\t".join(row))
        return
    if not records:
        stdout.print("no runs recorded yet: `crmsync run` (or `crmsync demo`) records one",
                      markup=False)
        return
    _print_runs_table(records)


# -- runs ---------------------------------------------------------------------------------------


#: Columns of the terminal table, most important first; the last ones are dropped (never
#: squashed) when the terminal is too narrow.
_COLUMNS = ("run", "started", "took", "mode", "status", "read", "wrote", "tasks", "rej", "calls",
            "by")


def _runs_rows(records: list[Any]) -> list[dict[str, str]]:
    rows = []
    for r in records:
        summary, counts = run_counts(r)
        # The exit code adds something only where the status does not imply it.
        status = f"{r.status} {r.exit_code}" if r.status in ("failed", "aborted") else r.status
        rows.append({
            "run": r.id, "started": r.started_at.strftime("%m-%d %H:%M"),
            "took": duration_text(duration_s(r)), "mode": MODE_LABELS.get(r.mode, r.mode),
            "status": status, "read": str(counts.get("read", "")),
            "wrote": str(counts.get("updated", counts.get("restored", ""))),
            "tasks": str(counts.get("tasks_created", "")),
            "rej": str(counts.get("rejected", counts.get("failed", ""))),
            "calls": str(summary.get("api_calls", "")),
            "by": r.trigger or "",
        })
    return rows


def fitting_columns(rows: list[dict[str, str]], width: int) -> list[str]:
    """The leading columns of :data:`_COLUMNS` whose full widths (one space apart) fit."""
    chosen: list[str] = []
    used = -1
    for name in _COLUMNS:
        need = max([len(name), *(len(row[name]) for row in rows)]) + 1
        if used + need > width:
            break
        chosen.append(name)
        used += need
    return chosen


def _print_runs_table(records: list[Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    rows = _runs_rows(records)
    crms = sorted({r.crm if r.connection == "default" else f"{r.connection}: {r.crm}"
                   for r in records})
    columns = fitting_columns(rows, stdout.width)
    table = Table(title=f"crmsync runs ({', '.join(crms)})", title_justify="left",
                  box=None, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold underline")
    for name in columns:
        right = name in ("read", "wrote", "tasks", "rej", "calls", "took")
        table.add_column(name, no_wrap=True, justify="right" if right else "left",
                         min_width=len(name))
    for row in rows:
        table.add_row(*(Text(row[name]) for name in columns))
    stdout.print(table)
    # What does not fit a row: why a run failed, which run an undo undid.
    for r in records:
        target = undone_run(r)
        # Wrapped at the terminal's width like the table (soft_wrap off), never cut.
        if target:
            stdout.print(f"{r.id}: undid {target}", markup=False, soft_wrap=False)
        workers = (dict(r.counts or {}).get("workers") or {})
        if workers:
            shards = ", ".join(f"{name} ({count})" for name, count in sorted(workers.items()))
            stdout.print(f"{r.id}: shards run by {shards}", markup=False, soft_wrap=False)
        if r.error and r.status in ("failed", "aborted", "skipped", "partial"):
            stdout.print(f"{r.id}: {r.status}: {r.error}", markup=False, soft_wrap=False)


# -- rejections ---------------------------------------------------------------------------------


@click.command("rejections")
@click.argument("run_id", required=False)
@config_option
@connection_option
@output_option
@logging_options
def rejections(run_id: str | None, config_path: Path | None, connection: str,
               output_format: str) -> None:
    """Records the CRM refused in a run: id, field, error code and message.

    RUN_ID defaults to the latest run that wrote. Field values are never shown; the next run
    retries every rejected record.
    """
    with _store(config_path, connection) as store:
        record = store.get_run(run_id) if run_id else latest_writing_run(store)
        rows = rejection_rows(store, record) if record is not None else []
    if record is None:
        if run_id:
            raise ConfigError(f"no run {run_id!r} in the state store; see `crmsync runs`")
        if output_format == "json":
            emit_json({"run_id": None, "rejected": 0, "rejections": []})
        else:
            stdout.print("no runs recorded yet", markup=False)
        return
    _, counts = run_counts(record)
    total = max(len(rows), int(counts.get("rejected", 0) or 0))
    if output_format == "json":
        emit_json({"run_id": record.id, "rejected": total, "listed": len(rows),
                   "rejections": rows})
        return
    if not rows:
        stdout.print(f"run {record.id} ({record.status}): no records rejected", markup=False)
        return
    stdout.print(f"run {record.id} ({record.status}): {total} record"
                 f"{'s' if total != 1 else ''} rejected"
                 + (f", the first {len(rows)} listed" if len(rows) < total else ""),
                 markup=False)
    if not stdout.is_terminal:
        click.echo("\t".join(("record", "stream", "fields", "code", "message")))
        for row in rows:
            click.echo("\t".join((str(row["record_id"]), str(row["stream"]),
                                  ",".join(row["fields"]), str(row["code"]),
                                  row["message"].replace("\t", " ").replace("\n", " "))))
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(show_lines=False)
    for name in ("record", "stream", "fields", "code", "message"):
        table.add_column(name, no_wrap=name != "message", overflow="fold")
    for row in rows:
        table.add_row(Text(str(row["record_id"])), Text(str(row["stream"])),
                      Text(", ".join(row["fields"])), Text(str(row["code"])),
                      Text(row["message"]))
    stdout.print(table)
