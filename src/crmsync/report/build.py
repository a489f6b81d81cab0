"""The funnel health report's numbers: one JSON-ready dict (:func:`build_report`).

Three sources. The run ledger: every finished sync run stores its ``RunSummary.to_json()``,
which holds counts, rule ids and record ids but no contact data. Only sync runs (modes ``run``,
``full``, ``demo``) count; dry runs and undos are left out. Every contact's current decision in
the state store (:mod:`crmsync.report.current`), when the caller passes it. And, because an
incremental run sees only the contacts that changed:

* the funnel's *shape* (stage counts, stuck contacts, misses) comes from every contact's current
  decision, or without it from one *snapshot* run: the latest finished full or demo run in the
  window, or, when there is none, the latest sync run, flagged as a partial view; SLA breaches
  always come from the snapshot run (judging them needs contact dates the store does not keep);
* stage-to-stage *conversion* sums the transitions of every sync run in the window. The rate of
  ``X → Y`` is the share of the contacts that left stage X in the window that went to Y.

Diagnosis (DOMAIN.md's shapes), judged on the snapshot once it has at least
:data:`MIN_CONTACTS` active contacts (lead + prospect + opportunity):

* **thin middle**: prospects fewer than :data:`THIN_MIDDLE` x leads;
* **bloated middle**: stuck leads + prospects at least :data:`BLOATED_MIDDLE` x leads + prospects;
* **small bottom**: opportunities fewer than :data:`SMALL_BOTTOM` x prospects (judged only with at
  least 10 prospects, so a thin middle does not also read as a small bottom by accident).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from crmsync.report import trends
from crmsync.report.trends import FULL_MODES
from crmsync.state import RunRecord, StateStore

#: Run modes that synced contacts; ``plan`` and ``undo`` runs are not funnel evidence.
SYNC_MODES = ("run", "full", "demo")
STAGES = ("lead", "prospect", "opportunity", "disqualified")
#: The conversions the report shows, in funnel order.
CONVERSIONS = (("lead", "prospect"), ("prospect", "opportunity"), ("lead", "disqualified"),
               ("prospect", "disqualified"), ("opportunity", "disqualified"))
THIN_MIDDLE = 0.15
BLOATED_MIDDLE = 0.30
SMALL_BOTTOM = 0.15
MIN_CONTACTS = 20
TOP_REASONS = 5


def load_runs(store: StateStore, count: int, *, since: datetime | None = None,
              until: datetime | None = None) -> list[RunRecord]:
    """Return the latest ``count`` finished sync runs, newest first (plan/undo runs skipped).

    ``since``/``until`` (aware UTC) keep only runs started in ``[since, until)``.
    """
    limit = count
    while True:
        records = store.runs(limit=limit)
        sync = [r for r in records if counts_as_sync(r)
                and (until is None or r.started_at < until)
                and (since is None or r.started_at >= since)]
        exhausted = len(records) < limit or (
            since is not None and records and records[-1].started_at < since)
        if len(sync) >= count or exhausted:
            return sync[:count]
        limit *= 4  # the window was diluted by dry runs, undos or later runs: look further back


def counts_as_sync(run: RunRecord) -> bool:
    """Whether a ledger run is funnel evidence: a finished sync run (not a plan or an undo)."""
    # A run still "running" has empty counts.
    return run.mode in SYNC_MODES and run.status != "running" and bool(run.counts)


def build_report(
    runs: Sequence[RunRecord], current: Mapping[str, Any] | None = None, *,
    since: datetime | None = None, until: datetime | None = None,
) -> dict[str, Any]:
    """Compute the funnel health report from ledger runs (any order; non-sync runs ignored).

    Args:
        runs: Ledger runs; transitions (conversion) are summed over the sync runs among them.
        current: :func:`~crmsync.report.current.current_funnel`; when given (and not empty),
            stage counts, miss types, stuck contacts and new contacts come from every contact's
            current decision instead of from one snapshot run, and the "now" sections (stuck
            contacts by id, time in stage, owners, lead sources, scores) are filled in.

        since, until: The date filter ``runs`` were chosen by, echoed in ``window``.

    Returns a JSON-ready dict; ``snapshot`` is ``None`` when there is no sync run to report on.
    """
    window = sorted((r for r in runs if counts_as_sync(r)), key=lambda r: (r.started_at, r.id),
                    reverse=True)
    snapshot = _snapshot(window)
    summary: Mapping[str, Any] = snapshot.counts if snapshot else {}
    funnel = summary.get("funnel", {})
    transitions: Counter[str] = Counter()
    reclassified: dict[str, Counter[str]] = {}
    for run in window:
        transitions.update({k: int(v) for k, v in run.counts.get("transitions", {}).items()})
        moved = run.counts.get("reclassified") or {}
        if moved:
            version = run.counts.get("ruleset_version") or run.ruleset_version or "?"
            reclassified.setdefault(version, Counter()).update(
                {k: int(v) for k, v in moved.items()})
    stages = {s: int(summary.get("statuses", {}).get(s, 0)) for s in STAGES}
    stuck = {s: int(n) for s, n in funnel.get("stuck", {}).items()}
    miss_counts = summary.get("miss_types", {})
    new_contacts = sum(n for k, n in transitions.items() if k.startswith("new → "))
    live = bool(current and current.get("stages"))
    if live:
        assert current is not None
        stages = {s: int(current["stages"].get(s, 0)) for s in STAGES}
        stuck = {s: int(n) for s, n in current.get("stuck", {}).items()}
        miss_counts = current.get("miss_types", {})
        new_contacts = int(current.get("new_contacts", new_contacts))
    report: dict[str, Any] = {
        "report_version": 1,
        "window": {
            "runs": len(window),
            "from": window[-1].started_at.isoformat() if window else None,
            "to": window[0].started_at.isoformat() if window else None,
            "crms": sorted({r.crm for r in window}),
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
        },
        "snapshot": None if snapshot is None else {
            "run_id": snapshot.id, "mode": snapshot.mode,
            "started_at": snapshot.started_at.isoformat(),
            "scope": "current" if live else ("full" if _is_full(snapshot) else "partial"),
        },
        "stages": stages,
        # Only moves the CRM's data caused; moves a rule change caused are shown apart.
        "conversion": _conversion(transitions),
        "reclassified": {v: dict(c.most_common()) for v, c in sorted(reclassified.items())},
        "new_contacts": new_contacts,
        "stuck": stuck,
        "sla_breaches": int(funnel.get("sla_breaches", 0)),
        "misses": {
            kind: {
                "contacts": int(miss_counts.get(kind, 0)),
                "top_reasons": Counter({
                    str(k): int(v)
                    for k, v in funnel.get("miss_reasons", {}).get(kind, {}).items()
                }).most_common(TOP_REASONS),
            }
            for kind in ("soft", "hard")
        },
        "runs": [_history_row(r) for r in window],
        # Trends, SLA and rule health: the ledger (trends.py). One point / row per run.
        "stages_over_time": trends.stages_over_time(window),
        "misses_over_time": trends.misses_over_time(window),
        "sla": trends.sla(snapshot),
        "rule_health": trends.rule_health(window),
        # Every contact now (current.py): empty without a store to read, or when the report
        # ends in the past (``--until``), where "now" would not describe the window.
        **{key: (current or {}).get(key, empty) if live else empty
           for key, empty in _NOW_SECTIONS.items()},
    }
    report["diagnosis"] = diagnose(stages, stuck) if snapshot else []
    return report


#: The sections only every contact's current decision gives, and their value without one.
_NOW_SECTIONS: dict[str, Any] = {
    "stuck_contacts": {"total": 0, "threshold_days": {}, "listed": []},
    "time_in_stage": [], "by_owner": [], "by_source": [], "score_distribution": [],
    "open_tasks": [],
}


def _is_full(run: RunRecord) -> bool:
    return run.mode in FULL_MODES and run.status in ("ok", "partial")


def _snapshot(window: Sequence[RunRecord]) -> RunRecord | None:
    # A failed full run stopped part-way: its counts cover only the pages it got through.
    for wanted in (_is_full, lambda r: bool(r.counts.get("statuses")), lambda r: True):
        for run in window:
            if wanted(run):
                return run
    return None


def _conversion(transitions: Mapping[str, int]) -> list[dict[str, Any]]:
    left: Counter[str] = Counter()
    for key, n in transitions.items():
        source, arrow, _ = key.partition(" → ")
        if arrow and source in STAGES:  # "new → …" and "… miss → … miss" are not stage exits
            left[source] += n
    rows = []
    for source, target in CONVERSIONS:
        moved = transitions.get(f"{source} → {target}", 0)
        rows.append({"from": source, "to": target, "contacts": moved, "left_from": left[source],
                     "rate": round(moved / left[source], 4) if left[source] else None})
    return rows


def diagnose(stages: Mapping[str, int], stuck: Mapping[str, int]) -> list[dict[str, str]]:
    """Name the funnel's shape problems (thresholds in the module docstring); never empty."""
    lead, prospect, opp = (stages.get(s, 0) for s in ("lead", "prospect", "opportunity"))
    if lead + prospect + opp < MIN_CONTACTS:
        return [{"shape": "too_few", "text": f"Too few active contacts ({lead + prospect + opp}) "
                 f"to judge the funnel's shape; at least {MIN_CONTACTS} are needed."}]
    found = []
    if prospect < THIN_MIDDLE * lead:
        found.append({"shape": "thin_middle", "text": f"Thin middle: {prospect} prospects for "
                      f"{lead} leads. Leads are not becoming prospects: check targeting (ICP) "
                      "and lead sources."})
    stuck_middle = stuck.get("lead", 0) + stuck.get("prospect", 0)
    if lead + prospect and stuck_middle >= BLOATED_MIDDLE * (lead + prospect):
        found.append({"shape": "bloated_middle", "text": f"Bloated middle: {stuck_middle} of "
                      f"{lead + prospect} leads and prospects are stuck. Qualification is slow "
                      "or nurturing is weak."})
    if prospect >= 10 and opp < SMALL_BOTTOM * prospect:
        found.append({"shape": "small_bottom", "text": f"Small bottom: {opp} opportunities for "
                      f"{prospect} prospects. Contacts may be qualified too early, or the sales "
                      "process is weak."})
    return found or [{"shape": "healthy", "text": "No shape problem found: prospects, stuck "
                      "contacts and opportunities are within the thresholds."}]


def _history_row(run: RunRecord) -> dict[str, Any]:
    counts = run.counts.get("counts", {})
    return {"run_id": run.id, "crm": run.crm, "mode": run.mode, "status": run.status,
            "started_at": run.started_at.isoformat(), "read": counts.get("read", 0),
            "updated": counts.get("updated", 0), "tasks": counts.get("tasks_created", 0),
            "rejected": counts.get("rejected", 0), "api_calls": run.counts.get("api_calls", 0)}
