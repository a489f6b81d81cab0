"""``crmsync backtest``: judge a rule file against deals that already closed (issue 11 §4).

Read-only: the configured CRM is asked for the contacts whose deals closed won or lost in a
window, with their facts rewound to just before the close through the CRM's field history
(:mod:`crmsync.connectors.asof`); the rules are evaluated on those facts and the verdicts are
compared with the outcomes (:mod:`crmsync.workbench.backtest`). Nothing is written to the CRM
and no state store is opened.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from rich.table import Table

from crmsync.cli.common import (
    connection_option,
    emit_json,
    logging_options,
    output_option,
    stdout,
)
from crmsync.cli.failures import fail
from crmsync.config import load_settings
from crmsync.errors import ExitCode
from crmsync.rules import load_ruleset
from crmsync.workbench.backtest import Backtest, LiftRow, run_backtest

#: The window when ``--since`` is not given: this many days before ``--until``.
DEFAULT_DAYS = 365


def _day(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


@click.command("backtest")
@click.option("--rules", "rules_path", type=click.Path(dir_okay=False, path_type=Path),
              help="The rule file to judge (default: the configured [rules] path).")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Settings file (default: ./crmsync.toml); [crm] says which CRM to read.")
@connection_option
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]),
              help=f"First close date to include (default: {DEFAULT_DAYS} days before --until).")
@click.option("--until", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Last close date to include (default: today, UTC).")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write an HTML page with the tables and a calibration chart.")
@output_option
@logging_options
def backtest(rules_path: Path | None, config_path: Path | None, connection: str,
             since: datetime | None, until: datetime | None, html_path: Path | None,
             output_format: str) -> None:
    """Judge a rule file against closed deals: win rate per status and score band, lift."""
    settings = load_settings(config_path, connection=connection)
    from crmsync.wiring import load_connection_fieldmap

    fieldmap = load_connection_fieldmap(settings)
    path = rules_path or (Path(settings.rules.path) if settings.rules.path else None)
    if path is None:
        from crmsync.wiring import default_path

        path = default_path("rules/default.json")
    ruleset = load_ruleset(path, extra_facts=dict(fieldmap.custom_facts))
    now = datetime.now(UTC)  # noqa: TID251 - the CLI owns the clock
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    last = _day(until) or today
    first = _day(since) or last - timedelta(days=DEFAULT_DAYS)
    end = last + timedelta(days=1)  # --until is a whole day, included
    if first >= end:
        fail("bad_config", f"--since {first.date()} is after --until {last.date()}",
             ExitCode.BAD_CONFIG, hint="give --since a date on or before --until")
    from crmsync.wiring import make_connector

    connector = make_connector(settings, fieldmap)
    try:
        read = getattr(connector, "read_outcomes", None)
        if read is None:
            fail("bad_config", f"the {settings.crm.type} connector cannot read closed deals",
                 ExitCode.BAD_CONFIG, hint="backtests work with hubspot and salesforce")
        result = run_backtest(ruleset, read(first, end), since=first, until=end)
        calls = connector.api_calls()
    finally:
        connector.close()
    if html_path is not None:
        from crmsync.workbench.backtest_html import render_html

        html_path.write_text(render_html(result), encoding="utf-8")
    if output_format == "json":
        emit_json({**result.to_json(with_contacts=True), "api_calls": calls,
                   "html": str(html_path) if html_path else None})
        return
    _print(result, calls)
    if html_path is not None:
        stdout.print(f"wrote {html_path}", markup=False)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _lift_table(title: str, rows: list[LiftRow]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(title.split()[-1])
    for name in ("contacts", "won", "lost", "win rate", "lift"):
        table.add_column(name, justify="right")
    for r in rows:
        table.add_row(r.label, str(r.contacts), str(r.won), str(r.lost), _pct(r.win_rate),
                      "-" if r.lift is None else f"{r.lift:.2f}x")
    return table


def _print(result: Backtest, calls: int) -> None:
    window = f"{result.since.date()} to {(result.until - timedelta(days=1)).date()}"
    if not result.contacts:
        stdout.print(f"No deal closed won or lost from {window}: nothing to judge. Widen the "
                     "window with --since/--until.", markup=False)
        return
    stdout.print(f"Backtest of rules {result.ruleset}: deals closed {window}, "
                 f"{result.contacts} contacts, {result.won} won, {result.lost} lost, base rate "
                 f"{_pct(result.base_rate)} ({calls} API calls).", markup=False)
    stdout.print(_lift_table("Win rate per status", result.by_status))
    stdout.print(_lift_table("Win rate per score band", result.by_band))
    opp = result.opportunity
    stdout.print(f"'opportunity' predicts a win: precision {_pct(opp.precision)} "
                 f"({opp.true_positives} of {opp.predicted}), recall {_pct(opp.recall)} "
                 f"({opp.true_positives} of {result.won} won).", markup=False)
    top = sorted(result.current_facts.items(), key=lambda kv: (-kv[1], kv[0]))[:6]
    stdout.print(f"Facts from current values (no history): {_pct(result.current_share)}; "
                 f"{result.without_history} contacts without any history"
                 + (f"; most often: {', '.join(f'{f} ({n})' for f, n in top)}." if top else "."),
                 markup=False)
