"""``crmsync rules diff OLD NEW``: what a rule change would do to a contact population.

Offline over a JSON Lines file (``--input``), or over a full read of the configured CRM
(``--config``), read-only: no write, no journal, no cursor, no run in the ledger (the state
store is never opened). Attached to the ``rules`` group by :mod:`crmsync.cli.rules_cmds`; the
CRM path imports the connectors (and their SDKs) only when it runs.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from crmsync.cli.common import connection_option, output_option

if TYPE_CHECKING:
    from crmsync.rules import RuleSet

_GUARD_HELP = ("Exit 1 when a transition exceeds a limit: OUTPUT:FROM->TO>N% (share of the "
               "FROM contacts) or >N (contacts); * for any value. Repeatable.")


def _guards(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[Any]:
    from crmsync.workbench.guards import GuardSyntaxError, parse_guard

    parsed = []
    for value in values:
        try:
            parsed.append(parse_guard(value))
        except GuardSyntaxError as error:
            raise click.BadParameter(f"{error} (hint: {error.hint})",
                                     param_hint="--fail-on") from None
    return parsed


@click.command("diff")
@click.argument("old_file", metavar="OLD", type=click.Path(dir_okay=False))
@click.argument("new_file", metavar="NEW", type=click.Path(dir_okay=False))
@click.option("--input", "input_file",
              help="Contacts as JSON Lines (what `crmsync export` writes); '-' for stdin. "
                   "Without it, every contact is read from the configured CRM (read-only).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Settings file for reading the CRM (default: ./crmsync.toml).")
@connection_option
@click.option("--field-map", type=click.Path(dir_okay=False),
              help="A CRM field map whose custom facts the rules may also use (--input only).")
@click.option("--now", "now_text",
              help="The evaluation clock for both rule sets, ISO 8601 (default: now, UTC).")
@click.option("--samples", default=5, show_default=True, type=click.IntRange(0, 1000),
              help="Contact ids shown per changed cell.")
@click.option("--fail-on", "guards", multiple=True, callback=_guards, help=_GUARD_HELP)
@click.option("--html", "html_file", type=click.Path(dir_okay=False),
              help="Also write the comparison, with charts, as an HTML page.")
@output_option
def diff(old_file: str, new_file: str, input_file: str | None, config_path: Path | None,
         connection: str, field_map: str | None, now_text: str | None, samples: int,
         guards: list[Any], html_file: str | None, output_format: str) -> None:
    """Compare two rule files over the same contacts: what moves, which rules stop firing.

    Shows status and miss-type transitions, the score shift, changed reasons, the task
    creates/closes that would follow and per-rule hit counts, with sample contact ids and the
    `crmsync explain` command for each change. Exit 1 when a --fail-on guard trips.
    """
    from crmsync.cli.common import emit_json, stdout
    from crmsync.cli.rules_cmds import _parse_now
    from crmsync.errors import ExitCode
    from crmsync.workbench.diff import attach_explain

    now = _parse_now(now_text)
    if field_map and input_file is None:
        raise click.UsageError("--field-map goes with --input; a CRM read uses the field map "
                               "of crmsync.toml")
    if input_file is not None:
        result, source = _diff_offline(old_file, new_file, input_file, field_map, now, samples)
    else:
        result, source = _diff_crm(old_file, new_file, config_path, connection, now, samples,
                                   output_format)
    if source is not None:
        attach_explain(result, new_file, source)
    result["guards"] = [guard.check(result) for guard in guards]
    if html_file:
        _write_html(html_file, result)
    if output_format == "json":
        emit_json(result)
    else:
        from crmsync.workbench.diff_render import render_text

        render_text(result, stdout.console)
    if any(g["tripped"] for g in result["guards"]):
        raise click.exceptions.Exit(int(ExitCode.PARTIAL))


def _diff_offline(old_file: str, new_file: str, input_file: str, field_map: str | None,
                  now: datetime, samples: int) -> tuple[dict[str, Any], list[str]]:
    from crmsync.cli.rules_cmds import _extra_facts, _open_in, _records
    from crmsync.workbench.diff import compare
    from crmsync.workbench.population import from_records

    extra = _extra_facts(field_map)
    old, new = _load_both(old_file, new_file, extra)
    skipped = 0

    def records() -> Any:
        nonlocal skipped
        for _number, record in _records(source, input_file):
            if record is None:
                skipped += 1
                continue
            yield record

    with _open_in(input_file) as source:
        result = compare(from_records(records()), old, new, now=now, samples=samples)
    result["skipped"] = skipped
    result["source"] = {"input": input_file}
    return result, ["--input", input_file, *(["--field-map", field_map] if field_map else [])]


def _load_both(old_file: str, new_file: str,
               extra: dict[str, str] | None) -> tuple[RuleSet, RuleSet]:
    """Both rule sets; every problem of both files is reported at once."""
    from crmsync.errors import InvalidFileError
    from crmsync.rules import load_ruleset

    loaded, problems = [], []
    for file in (old_file, new_file):
        try:
            loaded.append(load_ruleset(file, extra_facts=extra))
        except InvalidFileError as error:
            problems.extend(error.diagnostics)
    if problems:
        raise InvalidFileError(problems)
    return loaded[0], loaded[1]


def _diff_crm(old_file: str, new_file: str, config_path: Path | None, connection: str,
              now: datetime, samples: int,
              output_format: str) -> tuple[dict[str, Any], list[str] | None]:
    from crmsync.cli.export_cmds import crm_settings
    from crmsync.cli.progress import sync_progress
    from crmsync.wiring import make_connector
    from crmsync.workbench.diff import compare
    from crmsync.workbench.population import from_connector

    settings, fieldmap = crm_settings(config_path, connection)
    # Every file is checked before the CRM is contacted.
    old, new = _load_both(old_file, new_file, dict(fieldmap.custom_facts))
    connector = make_connector(settings, fieldmap)
    try:
        # Credentials and crmsync's fields (the read asks for the outputs too), named if missing.
        connector.check()
        with sync_progress(output_format, None, label="reading") as advance:
            result = compare(from_connector(connector, advance), old, new, now=now,
                             samples=samples)
    finally:
        connector.close()
    result["skipped"] = 0
    result["source"] = {"crm": settings.crm.type, "connection": connection}
    source = ["--config", str(config_path)] if config_path else []
    return result, source + (["--connection", connection] if connection != "default" else [])


def _write_html(path: str, result: dict[str, Any]) -> None:
    from crmsync.errors import ConfigError
    from crmsync.workbench.diff_render import render_html

    page = render_html(result)
    try:
        Path(path).write_text(page, encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot write {path}: {error.strerror}") from None


__all__ = ["diff"]
