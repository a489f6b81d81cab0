"""Counting what a run decided into its summary, without keeping any contact."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from crmsync.plan import ContactPlan
from crmsync.sync.summary import COUNTED_OUTPUTS, MAX_LISTED_BREACHES, RunSummary

#: A contact in these stages for longer than this counts as stuck (funnel health).
STUCK_AFTER = {"lead": timedelta(days=90), "prospect": timedelta(days=45),
               "opportunity": timedelta(days=30)}
#: An opportunity should hear from its rep within this long of becoming one (DOMAIN.md SLA).
SLA_FIRST_TOUCH = timedelta(days=2)


class Tally:
    """Adds plans to a :class:`RunSummary`: counts, transitions, health and samples.

    Args:
        summary: The run's summary, updated in place.
        now: The run's clock.
        miss_rules: Rule id -> True for the rules that decide the miss type; a miss is
            counted under the rule that decided it (the rule file's own words), never under
            the free text a rep typed into a loss reason, which can hold personal data.
        samples: How many samples to keep; real status moves come first.
        rules: Every rule id of the rule set, counted at 0 until it fires (dead rules show).
    """

    def __init__(self, summary: RunSummary, now: datetime, miss_rules: frozenset[str],
                 samples: int, rules: Iterable[str] = ()) -> None:
        self.summary = summary
        summary.rule_hits.update(dict.fromkeys(rules, 0))
        self.now = now
        self.miss_rules = miss_rules
        self.limit = samples
        # Samples by rank: 0 status moved, 1 miss type moved, 2 another output, 3 tasks only.
        self._samples: list[list[dict[str, Any]]] = [[], [], [], []]
        self._planned: dict[str, Counter[str]] = {}  # summary.planned_writes, by stream

    def add(self, stream: str, plan: ContactPlan, *, by_rules: bool) -> None:
        """Count one contact's plan; ``by_rules``: its data did not change, the rules did."""
        summary, decision = self.summary, plan.decision
        updates, creates, closes = plan.updates, plan.task_creates, plan.task_closes
        planned = self._planned.get(stream)
        if planned is None:
            planned = self._planned[stream] = summary.planned_writes.setdefault(stream, Counter())
        planned["updates"] += bool(updates)
        planned["task_creates"] += len(creates)
        planned["task_closes"] += len(closes)
        status, miss_type = decision.status, decision.miss_type
        summary.statuses[status] += 1
        summary.miss_types[miss_type] += 1
        stored = plan.contact.outputs
        old = stored.get("status") or "new"  # ContactPlan.transition, inlined
        old_miss = stored.get("miss_type") or "none"  # ContactPlan.miss_transition
        if old != status or old_miss != miss_type:
            moves = summary.reclassified if by_rules else summary.transitions
            if old != status:
                moves[f"{old} → {status}"] += 1
            if old_miss != miss_type:
                moves[f"{old_miss} miss → {miss_type} miss"] += 1
        counts, changes = summary.counts, summary.changes
        if updates:
            counts["updated"] += 1
            for name in COUNTED_OUTPUTS:
                if name in updates:
                    changes[name] += 1
            for name in decision.extra:  # the rule file's declared outputs, likewise
                if name in updates:
                    changes[name] += 1
        else:
            counts["unchanged"] += 1
        if creates:
            changes["tasks_created"] += len(creates)
        if closes:
            changes["tasks_closed"] += len(closes)
        self._health(plan)
        # One Counter update per contact: rule health costs no query and no per-rule loop.
        # ``decision.rules`` holds the task templates that fired too. (Counting per distinct
        # list of fired rules was tried: ~8,000 distinct lists in 10,000 contacts, so memory
        # grew with the run for nothing.)
        summary.rule_hits.update(decision.rules)
        counts["planned_task_creates"] += len(creates)
        counts["planned_task_closes"] += len(closes)
        if updates or creates or closes:  # ContactPlan.changed
            self._sample(plan)

    def finish(self) -> None:
        """Put the kept samples into the summary, the most telling first."""
        ranked = [s for bucket in self._samples for s in bucket]
        self.summary.samples = ranked[: self.limit]

    def _sample(self, plan: ContactPlan) -> None:
        old, new = plan.transition
        updates, stored = plan.updates, plan.contact.outputs
        # The rank first: a full bucket (most contacts of a run) needs no text built.
        if old != new:
            rank = 0
        elif "miss_type" in updates:
            rank = 1
        elif "score" in updates or "reason" in updates:
            rank = 2
        else:
            rank = 3
        bucket = self._samples[rank]
        if len(bucket) >= self.limit:
            return
        if rank == 0:
            change = f"{old} → {new}"
        elif rank == 1:
            was, now = plan.miss_transition
            change = f"{new}: {was} miss → {now} miss"
        elif rank == 2:
            changed = [f"score {_shown(stored.get('score'))} → {updates['score']}"
                       if "score" in updates else "", "reason" if "reason" in updates else ""]
            change = f"{new}: " + ", ".join(c for c in changed if c) + " changed"
        else:
            change = f"{new}: " + ", ".join(
                [f"{len(plan.task_creates)} task(s) to create"] * bool(plan.task_creates)
                + [f"{len(plan.task_closes)} task(s) to close"] * bool(plan.task_closes)
                + ["fields restamped"] * bool(updates and not plan.task_creates
                                              and not plan.task_closes)
            )
        decision = plan.decision
        bucket.append({"id": plan.contact.id, "transition": change,
                       "miss_type": decision.miss_type, "score": decision.score,
                       "reason": decision.reason,
                       "tasks": [t.spec.purpose for t in plan.task_creates]})

    def _health(self, plan: ContactPlan) -> None:
        """Count what DOMAIN.md's funnel-health report needs, without keeping any contact."""
        summary, decision, facts = self.summary, plan.decision, plan.contact.facts
        since = plan.contact.outputs.get("status_since") if not plan.updates.get("status_since") \
            else None
        if (decision.status in STUCK_AFTER and isinstance(since, datetime)
                and self.now - since > STUCK_AFTER[decision.status]):
            summary.stuck[decision.status] += 1
        if decision.status == "opportunity":
            contacted = facts.get("last_contacted_at")
            became = since if isinstance(since, datetime) else self.now
            if (not isinstance(contacted, datetime) or contacted < became) and (
                self.now - became > SLA_FIRST_TOUCH
            ):
                summary.sla_breaches += 1
                summary.sla_by_owner[plan.contact.owner_id or "(none)"] += 1
                if len(summary.sla_breach_ids) < MAX_LISTED_BREACHES:
                    summary.sla_breach_ids.append({
                        "record_id": plan.contact.id, "object_type": plan.contact.object_type,
                        "owner_id": plan.contact.owner_id})
        if decision.miss_type in summary.miss_reasons:
            rule = next((r for r in decision.rules if r in self.miss_rules), "(default)")
            summary.miss_reasons[decision.miss_type][rule] += 1


def _shown(value: Any) -> str:
    return "none" if value in (None, "") else str(value)


def rule_ids(tree: Any) -> list[str]:
    """Return the id of every decision rule and task template of a rule tree (rule health)."""
    return [rule.id for decision in tree.decisions for rule in decision.rules] + [
        task.id for task in tree.tasks]


def miss_rule_ids(decisions: Mapping[str, Any] | Any) -> frozenset[str]:
    """Return the ids of the rules that decide the ``miss_type`` output of a rule tree."""
    return frozenset(rule.id for decision in decisions if decision.output == "miss_type"
                     for rule in decision.rules)
