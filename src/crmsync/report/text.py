"""The report as a few lines of plain text, for the terminal (``crmsync report``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: How many owners, lead sources and dead rules a terminal line names.
SHOWN = 5


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """A few plain-text lines for the terminal: stages, conversion, misses, diagnosis."""
    snap = report["snapshot"]
    if snap is None:
        return ["no sync runs recorded yet"]
    stages = ", ".join(f"{s} {n}" for s, n in report["stages"].items())
    rates = ", ".join(f"{c['from']}→{c['to']} {pct(c['rate'])}" for c in report["conversion"][:2])
    misses = report["misses"]
    view = ("every contact's current decision" if snap["scope"] == "current"
            else f"{snap['scope']} view, run {snap['run_id']}")
    lines = [f"funnel ({view}): {stages}",
             f"conversion over {report['window']['runs']} runs: {rates}",
             f"stuck: {sum(report['stuck'].values())}, SLA breaches: {report['sla_breaches']}, "
             f"misses: {misses['soft']['contacts']} soft / {misses['hard']['contacts']} hard"]
    for version, moves in report.get("reclassified", {}).items():
        shown = ", ".join(f"{k} {n}" for k, n in moves.items())  # at most 12 pairs: all shown
        lines.append(f"re-classified by rules {version} (not counted as conversion): {shown}")
    return lines + _detail_lines(report) + [d["text"] for d in report["diagnosis"]]


def _detail_lines(report: Mapping[str, Any]) -> list[str]:
    """Stuck (and why), reps, lead sources, SLA by rep and dead rules: one line each, if any."""
    lines = []
    stuck = report.get("stuck_contacts") or {}
    if stuck.get("total"):
        limits = stuck.get("threshold_days") or {}
        why = ", ".join(f"{stage} {report['stuck'].get(stage, 0)} (> {days} days)"
                        for stage, days in limits.items())
        lines.append(f"stuck contacts (in their stage longer than its limit): {why}")
    owners = report.get("by_owner") or []
    if owners:
        shown = ", ".join(f"{o['owner_id']} {o['total']}" for o in owners[:SHOWN])
        more = f" (+{len(owners) - SHOWN} more)" if len(owners) > SHOWN else ""
        lines.append(f"contacts by owner: {shown}{more}")
    sources = report.get("by_source") or []
    if sources:
        shown = ", ".join(f"{s['lead_source']} {s['total']}" for s in sources[:SHOWN])
        more = f" (+{len(sources) - SHOWN} more)" if len(sources) > SHOWN else ""
        lines.append(f"contacts by lead source: {shown}{more}")
    sla = report.get("sla") or {}
    if sla.get("by_owner"):
        shown = ", ".join(f"{o['owner_id']} {o['breaches']}" for o in sla["by_owner"][:SHOWN])
        lines.append(f"SLA breaches by rep (no touch within {sla['first_touch_days']} days of "
                     f"becoming an opportunity): {shown}")
    tasks = report.get("open_tasks") or []
    if tasks:
        shown = ", ".join(f"{t['owner_id']} {t['open']} ({t.get('overdue', 0)} overdue)"
                          for t in tasks[:SHOWN])
        lines.append(f"open follow-up tasks by rep: {shown}")
    health = report.get("rule_health") or {}
    if health.get("dead"):
        dead = health["dead"]
        more = f" (+{len(dead) - SHOWN} more)" if len(dead) > SHOWN else ""
        lines.append(f"rules that never fired in {health['runs']} runs: "
                     f"{', '.join(dead[:SHOWN])}{more}")
    return lines


def when(iso: str) -> str:
    """``"2026-11-23T15:17:34.556+00:00"`` -> ``"2026-11-23 15:17 UTC"`` (the ledger is UTC)."""
    return f"{iso[:10]} {iso[11:16]} UTC"


def pct(rate: float | None) -> str:
    """A rate as a whole percentage, or ``n/a``."""
    return "n/a" if rate is None else f"{rate:.0%}"

