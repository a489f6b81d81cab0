"""The impact of a rule change over a contact population, as one JSON-ready dict (pure).

Both rule sets decide every contact at the same ``now``; this module only counts what moved:
status and miss-type transition matrices, the score shift (mean and bands), reasons that
changed, the task creates and closes that would follow, and per-rule hit counts. No CRM, no
clock, no output: ``crmsync rules diff`` feeds it and renders what it returns.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from crmsync.model import MISS_TYPES, STATUSES, Decision
from crmsync.rules import RuleSet
from crmsync.rules.tree import iter_rules
from crmsync.workbench.population import Member

#: Outputs with a transition matrix, and the values they show first (in funnel order).
MATRIX_OUTPUTS: dict[str, tuple[str, ...]] = {"status": STATUSES, "miss_type": MISS_TYPES}
#: Width of a score band: 0-19, 20-39, ... (the default rules score 0..100).
BAND_WIDTH = 20
#: How many rules the "biggest movers" list shows.
MOVERS = 10


def score_band(score: int) -> str:
    """The band a score falls in (``"40-59"``); 100 joins the top band ``"80-100"``."""
    low = max(0, min(score, 100) // BAND_WIDTH * BAND_WIDTH)
    if low >= 100 - BAND_WIDTH:
        return f"{100 - BAND_WIDTH}-100"
    return f"{low}-{low + BAND_WIDTH - 1}"


BANDS: tuple[str, ...] = tuple(dict.fromkeys(score_band(s) for s in range(0, 101)))


class DiffTally:
    """Accumulates decision pairs (old, new) one contact at a time; memory stays per cell."""

    def __init__(self, old: RuleSet, new: RuleSet, *, samples: int = 5) -> None:
        self.old, self.new, self.samples = old, new, samples
        self.contacts = 0
        self.changed = 0
        self.cells: dict[str, Counter[tuple[str, str]]] = {o: Counter() for o in MATRIX_OUTPUTS}
        self.sample_ids: dict[str, defaultdict[tuple[str, str], list[str]]] = {
            o: defaultdict(list) for o in MATRIX_OUTPUTS}
        self.score_old = self.score_new = 0
        self.score_moves: Counter[str] = Counter()
        self.bands: dict[str, Counter[str]] = {"old": Counter(), "new": Counter()}
        self.reasons_changed = 0
        self.creates: Counter[str] = Counter()
        self.closes: Counter[str] = Counter()
        self.left_open: Counter[str] = Counter()
        self.hits: dict[str, Counter[str]] = {"old": Counter(), "new": Counter()}
        # A run closes an obsolete task unless the (new) rules' template keeps it open.
        self._keep_open = frozenset(t.purpose for t in new.tree.tasks if not t.close_when_obsolete)

    def add(self, before: Decision, after: Decision) -> None:
        """Count one contact's two decisions."""
        self.contacts += 1
        moved = False
        for output in MATRIX_OUTPUTS:
            pair = (getattr(before, output), getattr(after, output))
            self.cells[output][pair] += 1
            if pair[0] != pair[1]:
                moved = True
                ids = self.sample_ids[output][pair]
                if len(ids) < self.samples:
                    ids.append(before.contact_id)
        self.score_old += before.score
        self.score_new += after.score
        if before.score != after.score:
            moved = True
        self.score_moves["raised" if after.score > before.score else
                         "lowered" if after.score < before.score else "unchanged"] += 1
        self.bands["old"][score_band(before.score)] += 1
        self.bands["new"][score_band(after.score)] += 1
        if before.reason != after.reason:
            self.reasons_changed += 1
            moved = True
        old_purposes = {t.purpose for t in before.tasks}
        new_purposes = {t.purpose for t in after.tasks}
        for purpose in new_purposes - old_purposes:
            self.creates[purpose] += 1
            moved = True
        for purpose in old_purposes - new_purposes:
            (self.left_open if purpose in self._keep_open else self.closes)[purpose] += 1
            moved = True
        self.hits["old"].update(before.rules)
        self.hits["new"].update(after.rules)
        self.changed += moved

    def result(self) -> dict[str, Any]:
        """The comparison as a JSON-ready dict (see :func:`compare`)."""
        count = self.contacts
        return {
            "contacts": count,
            "changed": self.changed,
            "transitions": {o: self._matrix(o) for o in MATRIX_OUTPUTS},
            "score": {
                "old_mean": _mean(self.score_old, count),
                "new_mean": _mean(self.score_new, count),
                # From the shown means, so the three numbers always add up.
                "mean_shift": round(_mean(self.score_new, count) - _mean(self.score_old, count),
                                    2),
                "raised": self.score_moves["raised"],
                "lowered": self.score_moves["lowered"],
                "unchanged": self.score_moves["unchanged"],
                "bands": [{"band": band, "old": self.bands["old"][band],
                           "new": self.bands["new"][band]} for band in BANDS],
            },
            "reasons": {"changed": self.reasons_changed},
            "tasks": {
                "creates": dict(sorted(self.creates.items())),
                "closes": dict(sorted(self.closes.items())),
                "left_open": dict(sorted(self.left_open.items())),
                "total_creates": sum(self.creates.values()),
                "total_closes": sum(self.closes.values()),
            },
            **self._rules(),
        }

    def _matrix(self, output: str) -> dict[str, Any]:
        cells = self.cells[output]
        seen = {v for pair in cells for v in pair}
        # The closed set in funnel order, then any other value a rule file produced.
        values = [*MATRIX_OUTPUTS[output], *sorted(seen - set(MATRIX_OUTPUTS[output]))]
        before = Counter()
        for (old, _new), n in cells.items():
            before[old] += n
        moves = [
            {"from": old, "to": new, "count": n, "share": round(n / before[old], 4),
             "samples": list(self.sample_ids[output][(old, new)])}
            for (old, new), n in sorted(cells.items(), key=lambda item: (-item[1], item[0]))
            if old != new
        ]
        return {
            "values": values,
            "matrix": {old: {new: cells[(old, new)] for new in values} for old in values},
            "before": {v: before[v] for v in values},
            "after": {v: sum(cells[(o, v)] for o in values) for v in values},
            "changed": sum(m["count"] for m in moves),
            "moves": moves,
        }

    def _rules(self) -> dict[str, Any]:
        old_ids = [rule_id for rule_id, _ in iter_rules(self.old.tree)]
        new_ids = [rule_id for rule_id, _ in iter_rules(self.new.tree)]
        old_set, new_set = set(old_ids), set(new_ids)
        outputs = {**_rule_outputs(self.old), **_rule_outputs(self.new)}
        rows = []
        for rule_id in dict.fromkeys([*new_ids, *old_ids]):
            old_hits, new_hits = self.hits["old"][rule_id], self.hits["new"][rule_id]
            rows.append({
                "id": rule_id, "output": outputs[rule_id],
                "old": old_hits if rule_id in old_set else None,
                "new": new_hits if rule_id in new_set else None,
                "delta": new_hits - old_hits,
                "in": ("both" if rule_id in old_set and rule_id in new_set
                       else "old" if rule_id in old_set else "new"),
            })
        dead = [r["id"] for r in rows if r["in"] == "both" and r["old"] and not r["new"]]
        never = [r["id"] for r in rows if r["in"] != "old" and not r["new"]]
        movers = sorted((r for r in rows if r["delta"]),
                        key=lambda r: (-abs(r["delta"]), r["id"]))[:MOVERS]
        return {
            "rules": rows,
            "dead": dead,
            "never_fire_new": never,
            "removed": [r["id"] for r in rows if r["in"] == "old"],
            "added": [r["id"] for r in rows if r["in"] == "new"],
            "movers": [{"id": r["id"], "old": r["old"] or 0, "new": r["new"] or 0,
                        "delta": r["delta"]} for r in movers],
        }


def _mean(total: int, count: int) -> float:
    return round(total / count, 2) if count else 0.0


def _rule_outputs(ruleset: RuleSet) -> dict[str, str]:
    """Rule id -> the output it decides (``task`` for task templates)."""
    found = {rule.id: d.output for d in ruleset.tree.decisions for rule in d.rules}
    found.update({task.id: "task" for task in ruleset.tree.tasks})
    return found


def decide_both(members: Iterable[Member], old: RuleSet, new: RuleSet,
                now: datetime) -> Iterable[tuple[Decision, Decision]]:
    """Both rule sets' decisions for every member, at the same ``now``."""
    for member in members:
        yield (old.evaluate(member.facts, now=now, contact_id=member.id, coerced=member.coerced),
               new.evaluate(member.facts, now=now, contact_id=member.id, coerced=member.coerced))


def compare(members: Iterable[Member], old: RuleSet, new: RuleSet, *, now: datetime,
            samples: int = 5) -> dict[str, Any]:
    """Decide every member under both rule sets and return the comparison.

    The dict has ``contacts``, ``changed`` (contacts with any output or task moved),
    ``transitions`` (per output: ``values``, ``matrix[old][new]``, ``before``/``after``
    totals and the off-diagonal ``moves`` with up to ``samples`` contact ids each),
    ``score``, ``reasons``, ``tasks``, ``rules`` (hits old/new per rule id), ``dead``,
    ``never_fire_new``, ``removed``, ``added`` and ``movers``.
    """
    tally = DiffTally(old, new, samples=samples)
    for before, after in decide_both(members, old, new, now):
        tally.add(before, after)
    result = tally.result()
    result["old"] = _describe(old)
    result["new"] = _describe(new)
    result["now"] = now.isoformat().replace("+00:00", "Z")
    return result


def _describe(ruleset: RuleSet) -> dict[str, str]:
    return {"file": ruleset.filename, "version": ruleset.version,
            "hash": ruleset.content_hash[:12]}


def attach_explain(result: dict[str, Any], rules_file: str, source: Sequence[str]) -> None:
    """Give every sampled cell the ``crmsync explain`` command that shows its contacts."""
    now = datetime.fromisoformat(result["now"].replace("Z", "+00:00"))
    for matrix in result["transitions"].values():
        for move in matrix["moves"]:
            move["explain"] = explain_command(rules_file, move["samples"], now, source)


def explain_command(rules_file: str, ids: Sequence[str], now: datetime,
                    source: Sequence[str]) -> str:
    """The ``crmsync explain`` command line that shows why ``ids`` decide as they do."""
    import shlex

    words = ["crmsync", "explain", "--rules", rules_file, *source,
             *(w for cid in ids for w in ("--contact", cid)),
             "--now", now.isoformat().replace("+00:00", "Z")]
    return shlex.join(words)


__all__ = [
    "BANDS", "DiffTally", "attach_explain", "compare", "decide_both", "explain_command",
    "score_band",
]
