"""``crmsync shadow report``: how the candidate rule file would have behaved over recent runs.

Reads the comparisons runs recorded with ``[rules] shadow`` (``crmsync.state.shadow``); never
contacts a CRM, so it needs no credentials.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from crmsync.cli.common import connection_option, emit_json, logging_options, output_option, stdout
from crmsync.cli.shadow_view import (
    MISS_ORDER,
    STATUS_ORDER,
    hits_rows,
    hits_table,
    matrix_table,
    mean_shift,
    moves,
)
from crmsync.config import load_settings


@click.group()
def shadow() -> None:
    """Shadow runs of a candidate rule file ([rules] shadow): what it would have changed."""


@shadow.command("report")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Settings file (default: ./crmsync.toml); only [state] url is read.")
@click.option("--runs", "run_count", type=click.IntRange(1), default=10, show_default=True,
              help="How many of the latest runs that shadowed a candidate to add up.")
@connection_option
@output_option
@logging_options
def report(config_path: Path | None, run_count: int, connection: str,
           output_format: str) -> None:
    """How the candidate would have behaved over the last runs: matrices, rule hits, movers."""
    from crmsync.state import StateStore

    settings = load_settings(config_path, require_crm=False, connection=connection)
    store = StateStore.open(settings.state.url, connection=settings.connection)
    try:
        records = store.shadow_runs(run_count)
    finally:
        store.close()
    result = build(records)
    if output_format == "json":
        emit_json(result)
        return
    if not records:
        stdout.print("No run has shadowed a candidate yet: set [rules] shadow = "
                     "\"rules/candidate.json\" in crmsync.toml, then `crmsync run`.", markup=False)
        return
    render(result)


def build(records: list[Any]) -> dict[str, Any]:
    """The report as JSON: the runs' comparisons added up, and one entry per run."""
    from crmsync.state.shadow import add_comparisons

    total = add_comparisons([r.comparison for r in records])
    hashes = list(dict.fromkeys(h for r in records for h in r.candidate_hashes))
    return {
        "runs": [{
            "run_id": r.run_id, "started_at": r.started_at.isoformat(), "mode": r.mode,
            "status": r.status, "ruleset_version": r.ruleset_version,
            "candidate_version": r.candidate_version, "candidate_hashes": list(r.candidate_hashes),
            "contacts": r.comparison["contacts"], "moved": r.comparison["moved"],
            "score_shift_sum": r.comparison["score_shift"],
            "score_shift_mean": mean_shift(r.comparison),
            "status_moves": dict(moves(r.comparison["status_matrix"])),
            "miss_type_moves": dict(moves(r.comparison["miss_matrix"])),
        } for r in records],
        "candidate_hashes": hashes,
        "total": {
            "runs": len(records), "contacts": total["contacts"], "moved": total["moved"],
            "score_shift_sum": total["score_shift"], "score_shift_mean": mean_shift(total),
            "status_matrix": total["status_matrix"], "miss_type_matrix": total["miss_matrix"],
            "rule_hits": hits_rows(total["hits_production"], total["hits_candidate"]),
            "movers": total["movers"],
        },
    }


def render(result: dict[str, Any]) -> None:
    """Print the report as tables: runs, both matrices, rule hits, contacts that would move."""
    total, runs = result["total"], result["runs"]
    stdout.print(f"Shadow candidate over the last {total['runs']} runs: {total['contacts']} "
                 f"contacts compared, {total['moved']} would move status or miss type, mean "
                 f"score shift {total['score_shift_mean']:+.2f}", markup=False)
    if len(result["candidate_hashes"]) > 1:
        stdout.print(f"note: the candidate changed within these runs "
                     f"({len(result['candidate_hashes'])} versions); the totals add them up, "
                     "each run's line names its own", markup=False)
    stdout.print("Runs (newest first):", markup=False)
    for run in runs:
        top = next(iter(run["status_moves"].items()), None)
        stdout.print(
            f"  {run['run_id']}  {run['started_at'][:16].replace('T', ' ')}  {run['status']}  "
            f"{run['candidate_version'] or run['candidate_hashes'][0][:12]}: "
            f"{run['contacts']} compared, {run['moved']} would move, score "
            f"{run['score_shift_mean']:+.2f}" + (f"; top: {top[0]} ({top[1]})" if top else ""),
            markup=False)
    stdout.print(matrix_table("Status, production → candidate", total["status_matrix"],
                              STATUS_ORDER))
    stdout.print(matrix_table("Miss type, production → candidate", total["miss_type_matrix"],
                              MISS_ORDER))
    stdout.print(hits_table(total["rule_hits"]))
    if total["movers"]:
        stdout.print("Contacts that would move (up to 20; `crmsync explain --rules CANDIDATE "
                     "--contact ID` shows why):", markup=False)
        for mover in total["movers"]:
            stdout.print(f"  {mover['id']}: status {mover['status']}, miss type "
                         f"{mover['miss_type']}, score {mover['score']}", markup=False)
