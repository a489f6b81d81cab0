"""Counting what a run decided into its summary, without keeping any contact."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from crmsync.plan import ContactPlan
from crmsync.sync.summary import MAX_LISTED_BREACHES, RunSummary

#: A contact in these stages for longer than this counts as stuck (funnel health).
STUCK_AFTER = {"lead": timedelta(days=90), "prospect": timedelta(days=45),
               "opportunity": timedelta(days=30)}
#: An opportunity should hear from its rep within this long of becoming one (DOMAIN.md SLA).
SLA_FIRST_TOUCH = timedelta(days=2)
#: Outputs every write carries, not counted as changes; every other output's changes are
#: ("206 status changes" among 5,000 writes), a rule file's declared ones included.
_STAMPS = frozenset({"evaluated_at", "status_since"})
#: Fired rule ids gathered before they are counted (bounds the list, not the result).
_FIRED_FLUSH = 10_000


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
        self._sampling = samples > 0  # False once every bucket is full
        self._shapes: Counter[tuple[Any, ...]] = Counter()
        self._fired: list[str] = []
        self._refused: Counter[str] = Counter()

    def add(self, stream: str, plan: ContactPlan, *, by_rules: bool) -> None:
        """Count one contact's plan; ``by_rules``: its data did not change, the rules did.

        A contact adds one to the count of its *shape* (stream, statuses and miss types
        before and after, which outputs change, how many tasks): a first run of 40,000
        Salesforce records has 21, and :meth:`finish` turns them into the summary's counters
        at once instead of updating a dozen counters per contact.
        """
        decision, updates = plan.decision, plan.updates
        creates, closes, stored = plan.task_creates, plan.task_closes, plan.contact.outputs
        self._shapes[(stream, decision.status, decision.miss_type,
                      stored.get("status") or "new", stored.get("miss_type") or "none",
                      by_rules, tuple(updates), len(creates), len(closes))] += 1
        # Rule health: fired ids are gathered in a flat list and counted in one C loop.
        fired = self._fired
        fired.extend(decision.rules)
        if len(fired) >= _FIRED_FLUSH:
            self._count_fired()
        self._health(plan)
        if self._sampling and (updates or creates or closes):  # ContactPlan.changed
            self._sample(plan)

    def refused(self, plan: ContactPlan) -> None:
        """The CRM refused a plan's field write: its outputs did not change after all."""
        self._refused.update(name for name in plan.updates if name not in _STAMPS)

    def finish(self) -> None:
        """Add the counted shapes to the summary; put the kept samples in, the most telling first.

        Called once, when the run (or shard) ends.
        """
        self._count_fired()
        summary = self.summary
        counts, changes = summary.counts, summary.changes
        for (stream, status, miss_type, old, old_miss, by_rules, names, creates,
             closes), n in self._shapes.items():
            planned = summary.planned_writes.setdefault(stream, Counter())
            planned["updates"] += n if names else 0
            planned["task_creates"] += creates * n
            planned["task_closes"] += closes * n
            summary.statuses[status] += n
            summary.miss_types[miss_type] += n
            if old != status or old_miss != miss_type:
                moves = summary.reclassified if by_rules else summary.transitions
                if old != status:
                    moves[f"{old} → {status}"] += n
                if old_miss != miss_type:
                    moves[f"{old_miss} miss → {miss_type} miss"] += n
            if names:
                counts["updated"] += n
                for name in names:
                    # Every output a rule file can write is counted; the two stamps are not.
                    if name not in _STAMPS:
                        changes[name] += n
            else:
                counts["unchanged"] += n
            if creates:
                changes["tasks_created"] += creates * n
            if closes:
                changes["tasks_closed"] += closes * n
            counts["planned_task_creates"] += creates * n
            counts["planned_task_closes"] += closes * n
        self._shapes.clear()
        if summary.mode != "plan":
            # What the CRM took: a write it refused is counted as rejected, not as updated or
            # as a changed output (the writes are settled before this is called).
            counts["updated"] = counts["field_writes"]
            for name, n in self._refused.items():
                changes[name] -= n
                if changes[name] <= 0:
                    del changes[name]
            self._refused.clear()
        ranked = [s for bucket in self._samples for s in bucket]
        summary.samples = ranked[: self.limit]

    def _count_fired(self) -> None:
        self.summary.rule_hits.update(self._fired)
        self._fired.clear()

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
            self._sampling = any(len(b) < self.limit for b in self._samples)
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
