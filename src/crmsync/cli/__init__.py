"""The ``crmsync`` command line: the only place that parses arguments, renders errors and picks
exit codes (DESIGN.md §4).

Each command family lives in its own module and registers itself on the root group.
"""

from __future__ import annotations

import click

from crmsync import __version__
from crmsync.cli import report_cmds, rules_cmds, sandbox_cmds, schedule_cmds, sync_cmds
from crmsync.cli.common import CrmsyncGroup


@click.group(cls=CrmsyncGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="crmsync")
@click.option("--debug", is_flag=True, help="Show tracebacks and vendor error bodies (may contain data).")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """crmsync: decide funnel status, miss type, score and follow-ups for CRM contacts."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


for _module in (rules_cmds, sandbox_cmds, sync_cmds, report_cmds, schedule_cmds):
    _module.register(main)

__all__ = ["main"]
