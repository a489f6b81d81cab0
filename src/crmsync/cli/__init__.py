"""The ``crmsync`` command line: the only place that parses arguments, renders errors and picks
exit codes (DESIGN.md §4).

Each command family lives in its own module. The root group loads a command's module only
when that command runs, so ``crmsync --help``, ``evaluate`` and ``rules ...`` never import
SQLAlchemy or a CRM SDK (start-up time: ``benchmarks/README.md``). The one-line help of each
command is kept here for ``--help``; ``tests/cli/test_startup.py`` checks it matches the
command's own docstring.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from crmsync import __version__
from crmsync.cli.common import logging_options, root_obj
from crmsync.errors import CrmsyncError

#: name -> (module, attribute, one-line help shown by ``crmsync --help``), in listing order.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "demo": ("crmsync.cli.sync_cmds", "demo",
             "Seeded sandbox CRM + setup + full sync with the default rules, zero configuration."),
    "init": ("crmsync.cli.sync_cmds", "init",
             "Write a starter crmsync.toml, rules/default.json (with its schema) and the "
             "field maps."),
    "rules": ("crmsync.cli.rules_cmds", "rules",
              "Check, test, compare and promote rule files; export their schema."),
    "evaluate": ("crmsync.cli.rules_cmds", "evaluate",
                 "Decide every contact of a JSON Lines file; write one decision per line."),
    "explain": ("crmsync.cli.rules_cmds", "explain",
                "Show which rules fired for each contact, which missed or were unknown, and why."),
    "export": ("crmsync.cli.export_cmds", "export",
               "Write every contact's canonical facts from the CRM as JSON Lines ('-' for "
               "stdout)."),
    "setup": ("crmsync.cli.sync_cmds", "setup",
              "Create crmsync's fields/properties in the CRM (safe to run again)."),
    "plan": ("crmsync.cli.sync_cmds", "plan",
             "Dry run: what a sync would change, by transition, with the API calls it would cost."),
    "run": ("crmsync.cli.sync_cmds", "run",
            "Sync: read, decide, write the changes back."),
    "runs": ("crmsync.cli.history_cmds", "runs",
             "Run history, newest first."),
    "rejections": ("crmsync.cli.history_cmds", "rejections",
                   "Records the CRM refused in a run: id, field, error code and message."),
    "report": ("crmsync.cli.report_cmds", "report",
               "Funnel health: stages, trends, owners, sources, stuck, SLA, scores, misses, "
               "rules."),
    "backtest": ("crmsync.cli.backtest_cmds", "backtest",
                 "Judge a rule file against closed deals: win rate per status and score band, "
                 "lift."),
    "shadow": ("crmsync.cli.shadow_cmds", "shadow",
               "Shadow runs of a candidate rule file ([rules] shadow): what it would have "
               "changed."),
    "undo": ("crmsync.cli.undo_cmds", "undo",
             "Restore the fields crmsync changed in RUN_ID and close the tasks it created."),
    "serve": ("crmsync.cli.serve_cmds", "serve",
              "Admin console in the browser: runs, undo, schedules, funnel, contact lookup."),
    "schedule": ("crmsync.cli.schedule_cmds", "schedule",
                 "Scheduled runs ([schedules.NAME] in crmsync.toml): list them, or run one now."),
    "scheduler": ("crmsync.cli.schedule_cmds", "scheduler",
                  "Run the enabled schedules until stopped; safe to run on two hosts at once."),
    "worker": ("crmsync.cli.worker_cmds", "worker",
               "Execute shards of sharded runs (`crmsync run --via workers`) until stopped."),
    "sandbox": ("crmsync.cli.sandbox_cmds", "sandbox",
                "Loopback emulators of the Salesforce and HubSpot APIs (no account needed)."),
}


def load_command(name: str) -> click.Command:
    """Import and return the command ``name`` (a KeyError for an unknown name)."""
    module, attribute, _ = COMMANDS[name]
    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, click.Command)
    return command


class CrmsyncGroup(click.Group):
    """The root group: loads commands lazily and turns every failure into one format.

    A :class:`~crmsync.errors.CrmsyncError` becomes ``crmsync: error: ...`` and its exit code;
    any other exception goes to the last-resort handler (class name and a redacted message,
    exit 1); Ctrl-C and SIGTERM exit 130 and 143, a closed output pipe 141 (see
    :mod:`crmsync.cli.failures`).
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        return load_command(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The listing uses the short help kept above, so --help imports no command module.
        rows = [(name, help_text) for name, (_, _, help_text) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        from crmsync.cli import failures
        from crmsync.cli.common import stderr, stdout

        # Each command sees the terminal as it is now (width, tty), also when invoked in-process.
        stdout.reset()
        stderr.reset()
        try:
            with failures.sigterm_raises():
                return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, SystemExit):
            raise
        except CrmsyncError as error:
            if root_obj(ctx).get("debug"):
                # --debug: the full picture, still without credentials.
                failures.report_unexpected(error, debug=True)
                ctx.exit(int(error.exit_code))
            ctx.exit(failures.report_crmsync_error(error))
        except (KeyboardInterrupt, failures.Terminated) as error:
            ctx.exit(failures.report_stop(error))
        except BrokenPipeError:
            ctx.exit(failures.pipe_closed())
        except Exception as error:  # the last resort: never a raw traceback, never a secret
            ctx.exit(failures.report_unexpected(error, debug=bool(root_obj(ctx).get("debug"))))


@click.group(cls=CrmsyncGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="crmsync")
@click.option("--debug", is_flag=True,
              help="Show tracebacks of unexpected errors (credentials are still hidden).")
@logging_options
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """crmsync: decide funnel status, miss type, score and follow-ups for CRM contacts.

    Exit codes: 0 ok, 1 partial (some records rejected) or unexpected error, 2 bad config or
    rules, 3 credentials refused or daily quota used up, 4 transient failure after retries,
    5 another run holds this CRM (nothing done), 130 interrupted, 141 output pipe closed,
    143 stopped by SIGTERM.
    """
    obj = root_obj(ctx)
    obj["debug"] = debug
    if "verbose" not in obj and "log_format" not in obj:
        from crmsync.cli.logs import configure_logging

        configure_logging()


__all__ = ["COMMANDS", "CrmsyncGroup", "load_command", "main"]
