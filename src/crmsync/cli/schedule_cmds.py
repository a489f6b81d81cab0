"""``crmsync schedule list|run`` and ``crmsync scheduler``: the ``[schedules.NAME]`` tables."""

from __future__ import annotations

import difflib
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.table import Table

from crmsync.cli.common import emit_json, output_option, stderr, stdout
from crmsync.cli.sync_cmds import _summary_table, config_option
from crmsync.config import ScheduleSettings, Settings, SettingsError, load_settings
from crmsync.errors import ConfigError, ExitCode


def _now() -> datetime:
    return datetime.now(UTC)  # noqa: TID251 - the CLI owns the clock


def _schedule(settings: Settings, name: str) -> ScheduleSettings:
    if name in settings.schedules:
        return settings.schedules[name]
    close = difflib.get_close_matches(name, list(settings.schedules), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    known = ", ".join(sorted(settings.schedules)) or "none: add a [schedules.NAME] table"
    raise ConfigError(f"unknown schedule {name!r}{hint}; defined: {known}")


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}Z" if moment else "-"


@click.group("schedule")
def schedule() -> None:
    """Scheduled runs ([schedules.NAME] in crmsync.toml): list them, or run one now."""


@schedule.command("list")
@config_option
@output_option
def list_schedules(config_path: Path | None, output_format: str) -> None:
    """Each schedule with its next slot, its last run and that run's outcome."""
    from crmsync.schedule import schedule_statuses
    from crmsync.state import StateStore

    settings = load_settings(config_path, require_crm=False)
    stores: dict[str, StateStore] = {}

    def open_store(url: str) -> StateStore:
        if url not in stores:
            stores[url] = StateStore.open(url)
        return stores[url]

    try:
        statuses = schedule_statuses(settings, _now(), open_store)
    finally:
        for store in stores.values():
            store.close()
    if output_format == "json":
        emit_json([s.to_json() for s in statuses])
        return
    if not statuses:
        stdout.print("No schedules: add a [schedules.NAME] table to crmsync.toml (see README).",
                     markup=False)
        return
    header = ("schedule", "connection", "when", "next", "last run", "outcome")
    rows = []
    for status in statuses:
        s, run = status.schedule, status.last_run
        rows.append((
            s.name, s.connection, s.when + (", full" if s.mode == "full" else ""),
            ("paused" if status.paused_at else _when(status.next_at)) if s.enabled
            else "disabled",
            f"{_when(run.started_at)} {run.id}" if run else "-", status.outcome,
        ))
    if not stdout.is_terminal:
        # Piped or logged: tab-separated lines, nothing cut.
        for row in (header, *rows):
            click.echo("\t".join(row))
        return
    table = Table(title="crmsync schedules", title_justify="left")
    for column in header:
        table.add_column(column, min_width=len(column), overflow="fold")
    for row in rows:
        table.add_row(*row)
    stdout.print(table)


@schedule.command("run")
@click.argument("name")
@config_option
@output_option
def run_now(name: str, config_path: Path | None, output_format: str) -> None:
    """Run schedule NAME's connection now (recorded as started by schedule:NAME)."""
    from crmsync.schedule import run_schedule

    settings = load_settings(config_path, require_crm=False)
    summary = run_schedule(settings, _schedule(settings, name))
    if output_format == "json":
        emit_json(summary.to_json())
    else:
        stdout.print(_summary_table(summary))
        if summary.error:
            stderr.print(f"crmsync: {summary.error}", markup=False)
        stderr.print(summary.logfmt(), markup=False)
    raise SystemExit(int(summary.exit_code))


@schedule.command("pause")
@click.argument("name")
@config_option
def pause(name: str, config_path: Path | None) -> None:
    """Pause schedule NAME: every scheduler skips its slots until `schedule resume`."""
    from crmsync.schedule import manual_trigger
    from crmsync.state import StateStore

    settings = load_settings(config_path, require_crm=False)
    _schedule(settings, name)
    with StateStore.open(settings.state.url) as store:
        done = store.pause_schedule(name, by=manual_trigger())
    stdout.print(f"schedule {name}: {'paused' if done else 'already paused'}", markup=False)


@schedule.command("resume")
@click.argument("name")
@config_option
def resume(name: str, config_path: Path | None) -> None:
    """Resume schedule NAME (its latest missed slot fires once)."""
    from crmsync.state import StateStore

    settings = load_settings(config_path, require_crm=False)
    _schedule(settings, name)
    with StateStore.open(settings.state.url) as store:
        done = store.resume_schedule(name)
    stdout.print(f"schedule {name}: {'resumed' if done else 'was not paused'}", markup=False)


@click.command("scheduler")
@config_option
@click.option("--once", is_flag=True,
              help="Fire what is due now, then exit (for a cron job or a systemd timer).")
def scheduler(config_path: Path | None, once: bool) -> None:
    """Run the enabled schedules until stopped; safe to run on two hosts at once.

    Each slot (schedule + time) is claimed in the state store, so two schedulers or a restart
    never start it twice; after downtime the latest missed slot fires once.
    """
    from crmsync.config import select_connection
    from crmsync.schedule import Fired, Scheduler, local_starter, next_slot
    from crmsync.state import StateStore

    settings = load_settings(config_path, require_crm=False)
    enabled = [s for s in settings.schedules.values() if s.enabled]
    if not enabled:
        raise ConfigError("no enabled schedule: add a [schedules.NAME] table to crmsync.toml")
    problems: list[str] = []
    for name in sorted({s.connection for s in enabled}):
        try:
            select_connection(settings, name)  # every credential checked before the first slot
        except SettingsError as error:
            problems.extend(error.problems)
    if problems:
        raise SettingsError(problems)
    store = StateStore.open(settings.state.url)
    try:
        loop = Scheduler(settings.schedules, store, local_starter(settings), now=_now,
                         start_with_latest=once)
        for s in sorted(enabled, key=lambda s: s.name):
            stderr.print(f"schedule {s.name}: {s.connection}, {s.when}, {s.mode}; next "
                         f"{_when(next_slot(s, _now()))}", markup=False)

        def report(fired: Fired) -> None:
            stderr.print(f"schedule {fired.schedule}: slot {_when(fired.slot)} -> run "
                         f"{fired.run_id or '-'} {fired.status}", markup=False)

        if once:
            for fired in loop.tick():
                report(fired)
        else:
            loop.run(on_fired=report)
    finally:
        store.close()
    raise SystemExit(int(ExitCode.OK))


def register(group: click.Group) -> None:
    """Attach ``schedule`` and ``scheduler`` to the root group."""
    group.add_command(schedule)
    group.add_command(scheduler)
