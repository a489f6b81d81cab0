"""The funnel as it stands now: every contact's current decision, aggregated from the state store.

One query (:meth:`~crmsync.state.StateStore.report_rows`) and one pass in memory: stage counts,
miss types, stuck contacts (and the ids behind them), time in stage, breakdowns by owner and by
lead source, and the score distribution. Rows hold ids and categories only (status, owner id,
lead source picklist value), never a name or an email.

A contact is **stuck** when it has held its stage longer than :data:`~crmsync.sync.STUCK_AFTER`
allows for that stage (DOMAIN.md: lead 90 days, prospect 45, opportunity 30), measured from its
``status_since``, the moment crmsync last moved it into that stage. Disqualified contacts are
never stuck: leaving the funnel is where they belong.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from crmsync.model import STATUSES
from crmsync.report.build import counts_as_sync
from crmsync.state import ContactRow, RunRecord, StateStore
from crmsync.sync import STUCK_AFTER

#: How many stuck contacts the report lists by id (the longest overdue first); all are counted.
MAX_LISTED_STUCK = 200
#: Width of a score distribution bin, in points.
SCORE_BIN = 10
#: The label of contacts with no owner or no lead source: none in the CRM, or decided before
#: the store kept them (schema 3; the first run after the upgrade decides every contact again
#: and fills them in).
NONE_LABEL = "(none)"


def current_funnel(store: StateStore, runs: Sequence[RunRecord], now: datetime) -> dict[str, Any]:
    """Return the funnel as it stands: every contact's current decision, from the state store.

    ``new_contacts`` counts contacts first decided by one of ``runs``, each once whatever
    happened to it since (an undo does not make it new again). The other keys are
    :func:`aggregate`'s, and ``open_tasks`` (:func:`open_tasks`).
    """
    current = aggregate(store.report_rows(), now)
    current["open_tasks"] = open_tasks(store.open_tasks_by_owner(now.date()))
    current["new_contacts"] = store.contacts_first_seen([r.id for r in runs if counts_as_sync(r)])
    return current


def open_tasks(rows: Iterable[tuple[str | None, str, int, int]]) -> list[dict[str, Any]]:
    """crmsync's open follow-up tasks per rep: total, overdue (past the due date crmsync gave
    them) and per purpose, the busiest rep first."""
    owners: dict[str, Counter[str]] = {}
    late: Counter[str] = Counter()
    for owner, purpose, n, overdue in rows:
        owners.setdefault(owner or NONE_LABEL, Counter())[purpose] += n
        late[owner or NONE_LABEL] += overdue
    table = [{"owner_id": owner, "open": sum(by.values()), "overdue": late[owner],
              "by_purpose": dict(by.most_common())} for owner, by in owners.items()]
    return sorted(table, key=lambda r: (-r["open"], r["owner_id"]))


def stuck_days() -> dict[str, int]:
    """Days a contact may hold each stage before it counts as stuck (from ``STUCK_AFTER``)."""
    return {stage: limit.days for stage, limit in STUCK_AFTER.items()}


def aggregate(rows: Iterable[ContactRow], now: datetime) -> dict[str, Any]:
    """Aggregate current decisions into the report's "now" sections (JSON-ready).

    Returns ``stages``, ``miss_types``, ``stuck`` (per stage), ``stuck_contacts`` (the ids behind
    it), ``time_in_stage``, ``by_owner``, ``by_source`` and ``score_distribution``.
    """
    stages: Counter[str] = Counter()
    misses: Counter[str] = Counter()
    stuck: Counter[str] = Counter()
    days: dict[str, list[float]] = {s: [] for s in STATUSES}
    owners: dict[str, Counter[str]] = {}
    sources: dict[str, Counter[str]] = {}
    scores: Counter[int] = Counter()
    listed: list[dict[str, Any]] = []
    limits = stuck_days()
    for row in rows:
        stages[row.status] += 1
        misses[row.miss_type] += 1
        owner = row.owner_id or NONE_LABEL
        source = row.lead_source or NONE_LABEL
        by_owner = owners.setdefault(owner, Counter())
        by_owner[row.status] += 1
        sources.setdefault(source, Counter())[row.status] += 1
        if row.score is not None:
            scores[_bin(row.score)] += 1
        if row.status_since is None:
            continue
        held = (now - row.status_since).total_seconds() / 86_400
        days.setdefault(row.status, []).append(held)
        limit = STUCK_AFTER.get(row.status)
        if limit is not None and now - row.status_since > limit:
            stuck[row.status] += 1
            by_owner["stuck"] += 1
            listed.append({"stream": row.stream, "record_id": row.record_id,
                           "status": row.status, "owner_id": owner,
                           "days_in_stage": math.floor(held),
                           "threshold_days": limits[row.status],
                           "since": row.status_since.isoformat()})
    # The longest overdue (past their own stage's threshold) first: the ones to look at.
    listed.sort(key=lambda s: (s["threshold_days"] - s["days_in_stage"], s["record_id"]))
    return {
        "stages": dict(stages),
        "miss_types": dict(misses),
        "stuck": dict(stuck),
        "stuck_contacts": {"total": sum(stuck.values()), "threshold_days": limits,
                           "listed": listed[:MAX_LISTED_STUCK]},
        "time_in_stage": _time_in_stage(days, limits),
        "by_owner": _breakdown(owners, "owner_id"),
        "by_source": _breakdown(sources, "lead_source"),
        "score_distribution": _distribution(scores),
    }


def _bin(score: float) -> int:
    # The top bin is closed ("90–100"), so a perfect 100 is not a bin of its own.
    low = math.floor(score / SCORE_BIN) * SCORE_BIN
    return 100 - SCORE_BIN if low == 100 else low


def _distribution(scores: Counter[int]) -> list[dict[str, Any]]:
    if not scores:
        return []
    low, high = min(scores), max(scores)
    return [{"from": b, "to": b + SCORE_BIN, "label": _bin_label(b), "contacts": scores.get(b, 0)}
            for b in range(low, high + SCORE_BIN, SCORE_BIN)]  # empty bins shown, not skipped


def _bin_label(low: int) -> str:
    return f"{low}–{low + SCORE_BIN}" if low == 100 - SCORE_BIN else f"{low}–{low + SCORE_BIN - 1}"


def _percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    return values[max(0, math.ceil(share * len(values)) - 1)]


def _time_in_stage(days: dict[str, list[float]], limits: dict[str, int]) -> list[dict[str, Any]]:
    rows = []
    for stage in STATUSES:
        held = sorted(days.get(stage, []))
        rows.append({
            "stage": stage, "contacts": len(held),
            "median_days": round(_percentile(held, 0.5), 1) if held else None,
            "p90_days": round(_percentile(held, 0.9), 1) if held else None,
            "max_days": round(held[-1], 1) if held else None,
            "stuck_after_days": limits.get(stage),
        })
    return rows


def _breakdown(groups: dict[str, Counter[str]], key: str) -> list[dict[str, Any]]:
    """One row per owner (or source): contacts per stage, total, stuck; biggest first."""
    rows = []
    for name, counts in groups.items():
        row: dict[str, Any] = {key: name}
        row.update({stage: counts.get(stage, 0) for stage in STATUSES})
        row["total"] = sum(counts.get(stage, 0) for stage in STATUSES)
        active = row["lead"] + row["prospect"] + row["opportunity"]
        # The share of its active contacts that reached opportunity: the by-rep/by-source
        # conversion a manager compares (disqualified contacts left the funnel).
        row["opportunity_share"] = round(row["opportunity"] / active, 4) if active else None
        if key == "owner_id":
            row["stuck"] = counts.get("stuck", 0)
        rows.append(row)
    rows.sort(key=lambda r: (-r["total"], r[key]))
    return rows
