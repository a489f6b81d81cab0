"""``crmsync export``: every contact's canonical facts, from the configured CRM, as JSON Lines.

The file is what ``evaluate``, ``explain``, ``rules diff`` (and ``backtest``) read. The read is
the one a full run makes (connector and field map, the same coercion) and read-only: nothing is
written to the CRM, the state store is never opened.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from crmsync.cli.common import connection_option, stderr

if TYPE_CHECKING:
    from crmsync.config import Settings
    from crmsync.connectors.fieldmap import FieldMap


def crm_settings(config_path: Path | None, connection: str) -> tuple[Settings, FieldMap]:
    """The connection's settings and its checked field map (no CRM contacted yet)."""
    from crmsync.config import load_settings
    from crmsync.wiring import load_connection_fieldmap

    settings = load_settings(config_path, connection=connection)
    return settings, load_connection_fieldmap(settings)


def _field_list(_ctx: click.Context, _param: click.Parameter,
                value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise click.BadParameter("name at least one fact, like --fields employees,country")
    return names


@click.command()
@click.argument("output_file", metavar="FILE")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Settings file (default: ./crmsync.toml).")
@connection_option
@click.option("--fields", callback=_field_list, metavar="FACT,FACT",
              help="Export only these facts (the id always comes along).")
@click.option("--redact", is_flag=True,
              help="Leave out personal facts (names, e-mail addresses, phones, postal "
                   "addresses), e.g. to share the file with a rule author.")
def export(output_file: str, config_path: Path | None, connection: str,
           fields: list[str] | None, redact: bool) -> None:
    """Write every contact's canonical facts from the CRM as JSON Lines ('-' for stdout)."""
    import difflib

    from crmsync.cli.progress import sync_progress
    from crmsync.cli.rules_cmds import _open_out
    from crmsync.wiring import make_connector
    from crmsync.workbench.export import personal_facts, write_jsonl
    from crmsync.workbench.population import from_connector

    settings, fieldmap = crm_settings(config_path, connection)
    known = fieldmap.fact_types()
    for name in fields or ():
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise click.BadParameter(f"{name!r} is not a fact of the {settings.crm.type} field "
                                     f"map{hint}", param_hint="--fields")
    drop = personal_facts(known) if redact else frozenset()
    connector = make_connector(settings, fieldmap)
    try:
        # Credentials and crmsync's fields (the read asks for the outputs too), named if missing.
        connector.check()
        with sync_progress("text", None, label="exporting") as advance, \
                _open_out(output_file) as sink:
            written = write_jsonl(from_connector(connector, advance), sink,
                                  keep=set(fields) if fields else None, drop=drop)
    finally:
        connector.close()
    dropped = f"; left out {', '.join(sorted(drop & set(known)))}" if drop else ""
    where = "stdout" if output_file == "-" else output_file
    stderr.print(f"crmsync: exported {written} contacts to {where}{dropped}", markup=False)
    sys.stdout.flush()


__all__ = ["crm_settings", "export"]
