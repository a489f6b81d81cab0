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

    def add(self, stream: str, plan: ContactPlan, *, by_rules: bool) -> None:
        """Count one contact's plan; ``by_rules``: its data did not change, the rules did."""
        summary, decision = self.summary, plan.decision
        planned = summary.planned_writes.setdefault(stream, Counter())
        planned["updates"] += bool(plan.updates)
        planned["task_creates"] += len(plan.task_creates)
        planned["task_closes"] += len(plan.task_closes)
        summary.statuses[decision.status] += 1
        summary.miss_types[decision.miss_type] += 1
        moves = summary.reclassified if by_rules else summary.transitions
        old, new = plan.transition
        if old != new:
            moves[f"{old} → {new}"] += 1
        old_miss, new_miss = plan.miss_transition
        if old_miss != new_miss:
            moves[f"{old_miss} miss → {new_miss} miss"] += 1
        summary.counts["updated" if plan.updates else "unchanged"] += 1
        for name in COUNTED_OUTPUTS:
            if name in plan.updates:
                summary.changes[name] += 1
        for name in plan.decision.extra:  # the rule file's declared outputs, likewise
            if name in plan.updates:
                summary.changes[name] += 1
        if plan.task_creates:
            summary.changes["tasks_created"] += len(plan.task_creates)
        if plan.task_closes:
            summary.changes["tasks_closed"] += len(plan.task_closes)
        self._health(plan)
        # One Counter update per contact: rule health costs no query and no per-rule loop.
        # ``decision.rules`` holds the task templates that fired too.
        summary.rule_hits.update(decision.rules)
        summary.counts["planned_task_creates"] += len(plan.task_creates)
        summary.counts["planned_task_closes"] += len(plan.task_closes)
        if plan.changed:
            self._sample(plan)

    def finish(self) -> None:
        """Put the kept samples into the summary, the most telling first."""
        ranked = [s for bucket in self._samples for s in bucket]
        self.summary.samples = ranked[: self.limit]

    def _sample(self, plan: ContactPlan) -> None:
        old, new = plan.transition
        updates, stored = plan.updates, plan.contact.outputs
        if old != new:
            rank, change = 0, f"{old} → {new}"
        elif "miss_type" in updates:
            was, now = plan.miss_transition
            rank, change = 1, f"{new}: {was} miss → {now} miss"
        elif any(name in updates for name in ("score", "reason")):
            changed = [f"score {_shown(stored.get('score'))} → {updates['score']}"
                       if "score" in updates else "", "reason" if "reason" in updates else ""]
            rank, change = 2, f"{new}: " + ", ".join(c for c in changed if c) + " changed"
        else:
            rank, change = 3, f"{new}: " + ", ".join(
                [f"{len(plan.task_creates)} task(s) to create"] * bool(plan.task_creates)
                + [f"{len(plan.task_closes)} task(s) to close"] * bool(plan.task_closes)
                + ["fields restamped"] * bool(updates and not plan.task_creates
                                              and not plan.task_closes)
            )
        bucket = self._samples[rank]
        if len(bucket) < self.limit:
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
