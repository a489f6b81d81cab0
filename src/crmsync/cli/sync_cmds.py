"""Commands that talk to a CRM: init, setup, plan, run and the one-command demo.

``runs`` and ``rejections`` (history, no CRM needed) live in :mod:`crmsync.cli.history_cmds`,
``undo`` in :mod:`crmsync.cli.undo_cmds`.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from shlex import quote

import click
from rich.table import Table
from rich.text import Text

from crmsync.cli.common import (
    connection_option,
    emit_json,
    logging_options,
    output_option,
    stderr,
    stdout,
)
from crmsync.cli.failures import (
    DEFAULT_HINTS,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    SIGTERM,
    error_payload,
    fail,
)
from crmsync.cli.progress import sync_progress
from crmsync.cli.shadow_view import shadow_line
from crmsync.config import Settings, load_settings, write_starter
from crmsync.demo import DemoResult
from crmsync.errors import ExitCode
from crmsync.sync import RunSummary, SyncOptions, SyncRun, file_hash, minimum_api_calls
from crmsync.wiring import Parts, default_path, load_parts, run_options

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

#: Where ``init`` puts the rule file's JSON Schema: beside the rule file, so its ``$schema``
#: resolves in the new folder and editors (VS Code) validate and autocomplete out of the box.
SCHEMA_FILE = "ruleset.schema.json"
_SCHEMA_REF = re.compile(r'("\$schema"\s*:\s*")[^"]*(")')


@click.command("init")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True)
@click.option("--force", is_flag=True, help="Overwrite existing files.")
@logging_options
def init(directory: Path, force: bool) -> None:
    """Write a starter crmsync.toml, rules/default.json (with its schema) and the field maps."""
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
        if relative.startswith("rules/"):
            # Point $schema at the copy written beside it (the shipped file points into the
            # source tree, which the new folder does not have). Only that string changes, so
            # every other line keeps its number.
            text = source.read_text("utf-8")
            target.write_text(_SCHEMA_REF.sub(rf"\g<1>{SCHEMA_FILE}\g<2>", text, count=1), "utf-8")
        else:
            shutil.copyfile(source, target)
        written.append(target)
    schema = directory / "rules" / SCHEMA_FILE
    if force or not schema.exists():
        import json

        from crmsync.rules import ruleset_schema

        schema.parent.mkdir(parents=True, exist_ok=True)
        schema.write_text(json.dumps(ruleset_schema(), indent=2) + "\n", "utf-8")
        written.append(schema)
    for path in written:
        stdout.print(f"wrote {path}", markup=False)
    stdout.print("next: edit crmsync.toml, then `crmsync setup` and `crmsync plan`", markup=False)


@click.command("setup")
@config_option
@connection_option
@output_option
@logging_options
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
@logging_options
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
@click.option("--via", type=click.Choice(["local", "workers"]), default="local",
              show_default=True,
              help="local: this process; workers: split into shards for `crmsync worker` "
                   "processes ([workers] broker_url).")
@output_option
@logging_options
def run(config_path: Path | None, connection: str, full: bool, via: str,
        output_format: str) -> None:
    """Sync: read, decide, write the changes back.

    Exit 0 ok, 1 partial, 2 bad config, 3 auth/quota, 4 transient, 5 another run holds this
    CRM (nothing done), 143 stopped by SIGTERM (recorded as aborted; the next run resumes).
    """
    with _parts(config_path, connection) as parts:
        summary = _execute(parts, _options(parts, full=full), output_format, via=via)
    _report(summary, parts, output_format)
    raise SystemExit(int(summary.exit_code))


def _execute(parts: Parts, options: SyncOptions, output_format: str,
             via: str = "local") -> RunSummary:
    total = None
    if options.full:
        # A full pass reads about every contact the store knows: enough for a rate and an ETA.
        total = sum(parts.store.status_counts().values()) or None
    with sync_progress(output_format, total) as advance:
        if via == "workers":
            from crmsync.workers import sharded_run

            runner: SyncRun = sharded_run(parts, options,
                                          on_progress=lambda stream, n: advance(n))
        else:
            runner = SyncRun(parts.connector, parts.ruleset, parts.store, options=options,
                             on_progress=lambda stream, n: advance(n), shadow=parts.shadow,
                             fieldmap_hash=file_hash(parts.fieldmap.path))
        try:
            return runner.execute()
        except (KeyboardInterrupt, SIGTERM) as stop:
            # The run recorded itself as aborted; give the ledger the exit code the process
            # ends with (130 / 143), so `crmsync runs` agrees with the scheduler's log.
            summary = runner.summary
            if summary is not None and summary.status == "aborted":
                code = EXIT_TERMINATED if isinstance(stop, SIGTERM) else EXIT_INTERRUPTED
                parts.store.finish_run(summary.run_id, "aborted", code, summary.to_json(),
                                       summary.error, finished_at=summary.finished_at)
            raise


def _report(summary: RunSummary, parts: Parts, output_format: str) -> None:
    """Print what a run or plan did; a run that did nothing useful says why in one line."""
    if summary.status == "skipped":
        # Another run holds the lease (overlapping schedules): not a failure, nothing to show.
        fail("busy", summary.error or "another run is syncing this CRM; nothing done",
             ExitCode.BUSY, run_id=summary.run_id)
    failed = summary.status in ("failed", "aborted") and summary.exit_code >= ExitCode.BAD_CONFIG
    minimum = minimum_api_calls(summary, parts.connector.limits)
    if output_format == "json":
        body = {**summary.to_json(), "minimum_api_calls": minimum}
        if failed:
            kind = {ExitCode.BAD_CONFIG: "bad_config", ExitCode.AUTH_OR_QUOTA: "auth_or_quota"
                    }.get(summary.exit_code, "transient")
            body = error_payload(kind, summary.error or summary.status, summary.exit_code,
                                 hint=DEFAULT_HINTS.get(summary.exit_code), run=body)
        emit_json(body)
        return
    hint = DEFAULT_HINTS.get(summary.exit_code) if failed else None
    if failed and not summary.counts.get("read"):
        # Nothing was read: a table of zeros would only hide the one line that matters.
        stderr.print(f"crmsync: error: {summary.error or summary.status}", markup=False)
        if hint:
            stderr.print(f"hint: {hint}", markup=False)
        _print_logfmt(summary)
        return
    stdout.print(_summary_table(summary))
    _print_scope_and_changes(summary)
    if summary.transitions:
        table = Table(title="Transitions", title_justify="left")
        table.add_column("from → to")
        table.add_column("contacts", justify="right")
        for name, count in summary.transitions.most_common(12):
            table.add_row(Text(name), str(count))
        stdout.print(table)
    for sample in summary.samples:
        stdout.print(f"  e.g. {sample['id']}: {sample['transition']} — {sample['reason']}",
                     markup=False)
    stdout.print(f"API calls: {summary.api_calls} (contact pages and write batches alone need "
                 f"{minimum}; related deal reads come on top)", markup=False)
    if summary.shadow is not None:
        stdout.print(shadow_line(summary.shadow, summary.mode), markup=False)
    if summary.rejections:
        stdout.print(f"rejected records: `crmsync rejections {summary.run_id}` lists them",
                     markup=False)
    if summary.error:
        stderr.print(f"crmsync: error: {summary.error}", markup=False)
        if hint:
            stderr.print(f"hint: {hint}", markup=False)
    _print_logfmt(summary)


def _print_logfmt(summary: RunSummary) -> None:
    """The run's one-line summary for log tools, unless ``-v`` logged it already (the run logs
    it at INFO when it finishes)."""
    if not logging.getLogger("crmsync.sync").isEnabledFor(logging.INFO):
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
        known = {key for key, _ in names}
        # The rule file's declared outputs (icp_tier...) follow crmsync's own, by name.
        names += tuple((key, key) for key in sorted(summary.changes) if key not in known)
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
                     f"checks + {writes} writes)", markup=False)


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
    if counts.get("tasks_found"):
        # Tasks a lost or separate state store did not know of, found in the CRM and kept.
        table.add_row("", "", "tasks found open", str(counts["tasks_found"]))
    return table


# -- demo ---------------------------------------------------------------------------------------


@click.command("demo")
@click.option("--crm", type=click.Choice(["hubspot", "salesforce"]), default="hubspot",
              show_default=True)
@click.option("--contacts", type=click.IntRange(1, 200_000), default=2000, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Keep the demo's state and sandbox data here (default: a temporary folder).")
@click.option("--serve", "serve_port", type=click.IntRange(0, 65535), default=None,
              is_flag=False, flag_value=8780, metavar="[PORT]",
              help="Then keep the sandbox CRM up and open the admin console on 127.0.0.1:PORT "
                   "(default 8780; 0: any free port) until Ctrl-C, so undo and contact lookup "
                   "work on the demo's CRM.")
@output_option
@logging_options
def demo(crm: str, contacts: int, seed: int, directory: Path | None, serve_port: int | None,
         output_format: str) -> None:
    """Seeded sandbox CRM + setup + full sync with the default rules, zero configuration."""
    from crmsync.demo import run_demo

    def show(result: DemoResult) -> None:
        _show_demo(result, crm, contacts, seed, output_format, serving=serve_port is not None)
        if serve_port is not None:
            from crmsync.cli.serve_cmds import run_console

            run_console(result.config_path, None, "127.0.0.1", serve_port)

    workdir = directory or Path(tempfile.mkdtemp(prefix="crmsync-demo-"))
    result = run_demo(crm=crm, contacts=contacts, seed=seed, workdir=workdir,
                      progress=lambda total: sync_progress(output_format, total), then=show)
    if output_format != "json":
        stderr.print(result.summary.logfmt(), markup=False)
    raise SystemExit(int(result.summary.exit_code))


def _show_demo(result: DemoResult, crm: str, contacts: int, seed: int, output_format: str, *,
               serving: bool) -> None:
    """Print what the demo did, and the commands to look closer."""
    if output_format == "json":
        emit_json({**result.to_json(), "console_command": console_command(result)})
        return
    stdout.print(f"[bold]crmsync demo[/bold]: {crm} sandbox with {contacts} contacts (seed {seed})")
    stdout.print(f"setup: {len(result.setup.created)} crmsync fields created", markup=False)
    stdout.print(_summary_table(result.summary))
    stdout.print(
        f"API calls: {result.api_calls} used for the sync; minimum the APIs allow: "
        f"{result.minimum_calls} ({result.api_calls / max(1, result.minimum_calls):.2f}x)",
        markup=False,
    )
    for sample in result.summary.samples:
        stdout.print(f"  e.g. {sample['id']}: {sample['transition']} — {sample['reason']}",
                     markup=False)
    stdout.print("\nLook closer:", markup=False)
    for command, comment in look_closer(result, crm):
        stdout.print(f"  {command}   # {comment}", markup=False)
    if serving:
        stdout.print("\nConsole: opening it now, with the sandbox CRM kept up (Ctrl-C stops "
                     "both)", markup=False)
    else:
        stdout.print(f"\nConsole: {console_command(result)}   # runs, undo, schedules, funnel "
                     "and contact lookup in the browser (`crmsync demo --serve` keeps the "
                     "sandbox CRM up for undo and lookups)", markup=False)


def console_command(result: DemoResult) -> str:
    """The command that opens the admin console on the demo's state store (quoted to run)."""
    return f"crmsync serve --config {quote(str(result.config_path))}"


def look_closer(result: DemoResult, crm: str) -> list[tuple[str, str]]:
    """The follow-up commands the demo prints, quoted so that they run as printed."""
    config = quote(str(result.config_path))
    return [
        (f"crmsync report --config {config} --out {quote(str(result.report.parent))}",
         f"funnel health report (open {result.report})"),
        (f"crmsync runs --config {config}", "run history"),
        (f"crmsync sandbox serve --crm {crm} --state {quote(str(result.sandbox_state))} "
         "--port 0", "the synced CRM, for the SDKs or curl"),
        (f"crmsync rules test {quote(str(result.rules_path))}",
         "the rules' own examples, with coverage"),
    ]
