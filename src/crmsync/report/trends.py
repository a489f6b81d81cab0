"""What the report reads from the run ledger alone: trends per run, SLA breaches, rule health.

Every function takes ledger runs (``RunRecord``, whose ``counts`` is a ``RunSummary.to_json()``)
and returns JSON-ready rows. Runs recorded by an older crmsync lack the newer summary fields
(``funnel.stage_totals``, ``rule_hits``, ``funnel.sla_by_owner``): they are left out of the
sections that need them rather than counted as zero.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from crmsync.model import MISS_TYPES, STATUSES
from crmsync.state import RunRecord
from crmsync.sync import SLA_FIRST_TOUCH

#: Modes that read the whole org, so their status counts are the funnel's shape.
FULL_MODES = ("full", "demo")


def stages_over_time(window: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """One point per run, oldest first: every contact's stage and miss type after that run.

    From the run's ``stage_totals`` (the store's totals when it finished); a full run recorded
    before those were kept falls back to the contacts it read (all of them); an older
    incremental run, which read only what changed, gives no point.
    """
    points = []
    for run in sorted(window, key=lambda r: (r.started_at, r.id)):
        funnel = run.counts.get("funnel") or {}
        totals = funnel.get("stage_totals")
        misses = funnel.get("miss_totals")
        if not totals and run.mode in FULL_MODES and run.status in ("ok", "partial"):
            totals, misses = run.counts.get("statuses"), run.counts.get("miss_types")
        if not totals:
            continue
        point: dict[str, Any] = {"run_id": run.id, "started_at": run.started_at.isoformat(),
                                 "mode": run.mode}
        point.update({s: int(totals.get(s, 0)) for s in STATUSES})
        point.update({f"{m}_miss": int((misses or {}).get(m, 0)) for m in MISS_TYPES
                      if m != "none"})
        points.append(point)
    return points


def misses_over_time(window: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """Soft and hard misses each run decided, by the rule that decided them; oldest run first.

    A run counts the contacts it evaluated (an incremental run: those that changed), so this
    is the flow of misses, not the stock (the stock is :func:`stages_over_time`'s ``*_miss``).
    """
    rows = []
    for run in sorted(window, key=lambda r: (r.started_at, r.id)):
        reasons = (run.counts.get("funnel") or {}).get("miss_reasons") or {}
        for kind in ("soft", "hard"):
            for reason, n in sorted((reasons.get(kind) or {}).items(), key=lambda kv: -kv[1]):
                if int(n):
                    rows.append({"run_id": run.id, "started_at": run.started_at.isoformat(),
                                 "kind": kind, "reason": str(reason), "contacts": int(n)})
    return rows


def sla(snapshot: RunRecord | None) -> dict[str, Any]:
    """SLA breaches by rep and the breaching records, from the snapshot run.

    An opportunity breaches the first-touch SLA when its rep has not contacted it within
    :data:`~crmsync.sync.SLA_FIRST_TOUCH` of it becoming one. Only a run that read the contact
    can judge that (the store keeps no contact dates), hence the snapshot run.
    """
    funnel = (snapshot.counts.get("funnel") or {}) if snapshot else {}
    by_owner = Counter({str(k): int(v) for k, v in (funnel.get("sla_by_owner") or {}).items()})
    return {
        "breaches": int(funnel.get("sla_breaches", 0)),
        "first_touch_days": SLA_FIRST_TOUCH.days,
        "by_owner": [{"owner_id": k, "breaches": n} for k, n in
                     sorted(by_owner.items(), key=lambda kv: (-kv[1], kv[0]))],
        "listed": [dict(b) for b in funnel.get("sla_breach_ids") or []
                   if isinstance(b, Mapping)],
    }


def rule_health(window: Sequence[RunRecord]) -> dict[str, Any]:
    """Hit rates per rule over the window and the rules that never fired (dead rules).

    Only runs that recorded rule hits count. The rules judged are those of the newest such
    run's rule set (a rule deleted since is no longer a concern); a rule is *dead* when no run
    of the window fired it. The rate is hits over contacts evaluated by those runs.
    """
    recorded = sorted((r for r in window if isinstance(r.counts.get("rule_hits"), Mapping)),
                      key=lambda r: (r.started_at, r.id))
    if not recorded:
        return {"runs": 0, "evaluated": 0, "rules": [], "dead": []}
    hits: Counter[str] = Counter()
    evaluated = 0
    for run in recorded:
        hits.update({str(k): int(v) for k, v in run.counts["rule_hits"].items()})
        evaluated += int((run.counts.get("counts") or {}).get("evaluated", 0))
    current = list(recorded[-1].counts["rule_hits"])  # the rule file's order
    rules = [{"rule": rule, "hits": hits[rule],
              "rate": round(hits[rule] / evaluated, 4) if evaluated else None}
             for rule in current]
    return {"runs": len(recorded), "evaluated": evaluated,
            "ruleset_version": recorded[-1].counts.get("ruleset_version") or
            recorded[-1].ruleset_version,
            "rules": rules, "dead": [r["rule"] for r in rules if not r["hits"]]}
