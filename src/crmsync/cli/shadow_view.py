"""How a shadow comparison reads: one line after a run or plan, tables for ``shadow report``.

Pure rendering of the JSON a run records (:mod:`crmsync.sync.shadow`); no state store, no CRM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

#: Rows and columns of the matrices, in funnel order (values the rules add come after).
STATUS_ORDER = ("lead", "prospect", "opportunity", "disqualified")
MISS_ORDER = ("none", "soft", "hard")


def moves(matrix: Mapping[str, Mapping[str, int]]) -> list[tuple[str, int]]:
    """The off-diagonal cells of a matrix as ``("old → new", contacts)``, largest first."""
    cells = [(f"{old} → {new}", count) for old, row in matrix.items()
             for new, count in row.items() if old != new and count]
    return sorted(cells, key=lambda cell: (-cell[1], cell[0]))


def mean_shift(comparison: Mapping[str, Any]) -> float:
    """The mean score shift (candidate less production) per contact compared."""
    contacts = int(comparison.get("contacts") or 0)
    return float(comparison.get("score_shift") or 0.0) / contacts if contacts else 0.0


def shadow_line(comparison: Mapping[str, Any], mode: str) -> str:
    """One line after a run or plan: what the candidate would have done differently."""
    version = comparison.get("candidate_version") or str(comparison.get("candidate_hash", ""))[:12]
    moved = moves(comparison.get("status_matrix") or {})
    shown = ", ".join(f"{name} {count}" for name, count in moved[:4]) or "no status moves"
    where = "this plan" if mode == "plan" else "this run"
    return (f"shadow rules {version}: compared on {comparison.get('contacts', 0)} contacts of "
            f"{where}; {comparison.get('moved', 0)} would move status or miss type ({shown}); "
            f"mean score shift {mean_shift(comparison):+.2f} (nothing written for them; "
            "`crmsync shadow report`)")


def matrix_table(title: str, matrix: Mapping[str, Mapping[str, int]],
                 order: Sequence[str]) -> Table:
    """A production (rows) by candidate (columns) table; the diagonal is agreement."""
    seen = set(matrix) | {new for row in matrix.values() for new in row}
    names = [n for n in order if n in seen] + sorted(seen - set(order))
    table = Table(title=title, title_justify="left")
    table.add_column("production ↓ / candidate →")
    for name in names:
        table.add_column(name, justify="right")
    for old in names:
        row = matrix.get(old, {})
        table.add_row(old, *[_cell(row.get(new, 0), old == new) for new in names])
    return table


def _cell(count: int, agreed: bool) -> Text:
    if not count:
        return Text("·", style="dim")
    return Text(str(count), style="dim" if agreed else "bold")


def hits_rows(production: Mapping[str, int], candidate: Mapping[str, int]
              ) -> list[dict[str, Any]]:
    """Rule hits side by side, the rules whose hits moved most first."""
    rules = set(production) | set(candidate)
    rows = [{"rule": rule, "production": int(production.get(rule, 0)),
             "candidate": int(candidate.get(rule, 0))} for rule in rules]
    for row in rows:
        row["change"] = row["candidate"] - row["production"]
    return sorted(rows, key=lambda r: (-abs(r["change"]), r["rule"]))


def hits_table(rows: Sequence[Mapping[str, Any]], limit: int = 20) -> Table:
    """The rule-hit rows as a table, at most ``limit`` of them."""
    table = Table(title="Rule hits", title_justify="left")
    for name in ("rule", "production", "candidate", "change"):
        table.add_column(name, justify="left" if name == "rule" else "right")
    for row in rows[:limit]:
        table.add_row(Text(row["rule"]), str(row["production"]), str(row["candidate"]),
                      f"{row['change']:+d}")
    return table
