"""Shadow evaluation: a candidate rule set decides beside production, and is only counted.

``[rules] shadow`` names a candidate rule file. Every contact a run evaluates is evaluated by
the candidate too, on the same facts at the same ``now``; nothing the candidate decides is
planned, written or journaled. What it would have done is added up in memory
(:class:`ShadowTally`: transition matrices against production, score shift, rule hits, a few
contacts that would move) and recorded once per run or shard (``crmsync shadow report``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from crmsync.model import Contact, Decision
from crmsync.rules import RuleSet

#: How many contacts that would move a run (or shard) keeps by id, as examples to explain.
MAX_MOVERS = 20


class ShadowTally:
    """Evaluate a candidate beside production and count how the two differ.

    Args:
        candidate: The candidate rule set.
    """

    def __init__(self, candidate: RuleSet) -> None:
        self.candidate = candidate
        self.contacts = 0
        self.moved = 0
        self.score_shift = 0.0
        self.status: Counter[tuple[str, str]] = Counter()
        self.miss: Counter[tuple[str, str]] = Counter()
        self.hits_production: Counter[str] = Counter()
        self.hits_candidate: Counter[str] = Counter()
        self.movers: list[dict[str, Any]] = []

    def add(self, contact: Contact, production: Decision, **evaluate: Any) -> None:
        """Evaluate the candidate on ``contact``'s facts and count it against ``production``.

        ``evaluate`` holds the keyword arguments production was evaluated with (``now``,
        ``coerced``), so both decide on the very same input.
        """
        shadow = self.candidate.evaluate(contact.facts, contact_id=contact.id, **evaluate)
        self.contacts += 1
        self.status[(production.status, shadow.status)] += 1
        self.miss[(production.miss_type, shadow.miss_type)] += 1
        self.score_shift += shadow.score - production.score
        self.hits_production.update(production.rules)
        self.hits_candidate.update(shadow.rules)
        if production.status != shadow.status or production.miss_type != shadow.miss_type:
            self.moved += 1
            if len(self.movers) < MAX_MOVERS:
                # CRM record ids and decided values only: no names, emails or reasons (which
                # can quote CRM data).
                self.movers.append({
                    "id": contact.id,
                    "status": f"{production.status} → {shadow.status}",
                    "miss_type": f"{production.miss_type} → {shadow.miss_type}",
                    "score": f"{production.score} → {shadow.score}",
                })

    def to_json(self) -> dict[str, Any]:
        """Return the comparison as the state store records it (plain JSON types)."""
        return {
            "candidate_version": self.candidate.version or "",
            "candidate_hash": self.candidate.content_hash,
            "contacts": self.contacts,
            "status_matrix": _matrix(self.status),
            "miss_matrix": _matrix(self.miss),
            "score_shift": self.score_shift,
            "hits_production": dict(self.hits_production.most_common()),
            "hits_candidate": dict(self.hits_candidate.most_common()),
            "moved": self.moved,
            "movers": list(self.movers),
        }


def _matrix(cells: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """``{old: {new: count}}`` from ``{(old, new): count}``, rows and columns sorted."""
    matrix: dict[str, dict[str, int]] = {}
    for (old, new), count in sorted(cells.items()):
        matrix.setdefault(old, {})[new] = count
    return matrix
