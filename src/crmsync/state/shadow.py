"""Shadow comparisons: how a candidate rule set would have decided the contacts of each run.

A run with ``[rules] shadow`` evaluates the candidate beside production on every contact it
evaluates and records one row here per process that evaluated contacts: the run itself
(``part`` -1) and each shard of a sharded run (``part`` = shard number). A shard run twice (a
redelivered message) replaces its own row, so nothing is counted twice. Rows hold counts and
rule ids, and CRM record ids of a few contacts that would move; never names or emails.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from crmsync.state.base import StoreBase
from crmsync.state.schema import _meta, _runs, _UtcDateTime

#: The ``part`` of the row a run's own process writes (shards write their shard number).
RUN_PART = -1

_shadow = sa.Table(
    "crmsync_shadow", _meta,
    sa.Column("run_id", sa.String(40), sa.ForeignKey("crmsync_runs.id"), primary_key=True),
    sa.Column("part", sa.Integer, primary_key=True),
    sa.Column("candidate_version", sa.String(80), nullable=False),
    sa.Column("candidate_hash", sa.String(128), nullable=False),
    sa.Column("contacts", sa.Integer, nullable=False),
    # {production status: {candidate status: contacts}}, diagonal included.
    sa.Column("status_matrix", sa.JSON, nullable=False),
    sa.Column("miss_matrix", sa.JSON, nullable=False),
    # Sum over contacts of (candidate score - production score); the mean is sum / contacts.
    sa.Column("score_shift", sa.Float, nullable=False),
    sa.Column("hits_production", sa.JSON, nullable=False),
    sa.Column("hits_candidate", sa.JSON, nullable=False),
    # Contacts whose status or miss type the candidate would change, and a few of their ids.
    sa.Column("moved", sa.Integer, nullable=False),
    sa.Column("movers", sa.JSON, nullable=False),
    sa.Column("recorded_at", _UtcDateTime, nullable=False),
)

#: The comparison fields a caller hands to :meth:`ShadowLedger.record_shadow`.
SHADOW_FIELDS = ("candidate_version", "candidate_hash", "contacts", "status_matrix",
                 "miss_matrix", "score_shift", "hits_production", "hits_candidate", "moved",
                 "movers")


@dataclass(frozen=True, slots=True)
class ShadowRecord:
    """One run's shadow comparison, its parts (run and shards) added together.

    ``candidate_hashes`` holds more than one hash when workers ran other candidates than the
    coordinator (each shard records the candidate it evaluated).
    """

    run_id: str
    started_at: datetime
    mode: str
    status: str
    ruleset_version: str
    candidate_version: str
    candidate_hashes: tuple[str, ...]
    comparison: dict[str, Any]


class ShadowLedger(StoreBase):
    """Record and read shadow comparisons (one row per run or shard)."""

    def record_shadow(self, run_id: str, part: int, comparison: Mapping[str, Any]) -> None:
        """Record (or replace) the comparison one process of run ``run_id`` made.

        Args:
            run_id: The run.
            part: :data:`RUN_PART` for the run's own process, the shard number for a shard.
            comparison: :data:`SHADOW_FIELDS` (see ``crmsync.sync.shadow.ShadowTally``).
        """
        row = {name: comparison[name] for name in SHADOW_FIELDS}
        with self._begin() as conn:
            conn.execute(_shadow.delete().where(_shadow.c.run_id == run_id,
                                                _shadow.c.part == part))
            conn.execute(_shadow.insert().values(run_id=run_id, part=part,
                                                 recorded_at=self._clock(), **row))

    def shadow_comparison(self, run_id: str) -> dict[str, Any] | None:
        """Return run ``run_id``'s comparison, its parts added together; None if it has none."""
        with self._connect() as conn:
            rows = conn.execute(_shadow.select().where(_shadow.c.run_id == run_id)
                                .order_by(_shadow.c.part)).all()
        if not rows:
            return None
        total = add_comparisons([row._asdict() for row in rows])
        total["candidate_version"] = next((r.candidate_version for r in rows
                                           if r.candidate_version), "")
        total["candidate_hash"] = rows[0].candidate_hash
        return total

    def shadow_runs(self, limit: int = 10) -> list[ShadowRecord]:
        """Return the latest runs of this connection that recorded a comparison, newest first.

        Each run's parts (its own process and its shards) are added together.
        """
        latest = (sa.select(_runs.c.id, _runs.c.started_at, _runs.c.mode, _runs.c.status,
                            _runs.c.ruleset_version)
                  .where(_runs.c.connection == self.connection,
                         _runs.c.id.in_(sa.select(_shadow.c.run_id)))
                  .order_by(_runs.c.started_at.desc(), _runs.c.id.desc()).limit(limit))
        with self._connect() as conn:
            runs = conn.execute(latest).all()
            rows = conn.execute(_shadow.select().where(
                _shadow.c.run_id.in_([r.id for r in runs])).order_by(_shadow.c.part)).all()
        parts: dict[str, list[Any]] = {}
        for row in rows:
            parts.setdefault(row.run_id, []).append(row)
        return [
            ShadowRecord(
                run_id=run.id, started_at=run.started_at, mode=run.mode, status=run.status,
                ruleset_version=run.ruleset_version,
                candidate_version=next((p.candidate_version for p in parts[run.id]
                                        if p.candidate_version), ""),
                candidate_hashes=tuple(dict.fromkeys(p.candidate_hash for p in parts[run.id])),
                comparison=add_comparisons([p._asdict() for p in parts[run.id]]),
            )
            for run in runs
        ]


def add_comparisons(parts: Sequence[Mapping[str, Any]], *, max_movers: int = 20
                    ) -> dict[str, Any]:
    """Add comparisons together (a run's parts, or several runs): counts and matrices sum."""
    total: dict[str, Any] = {"contacts": 0, "moved": 0, "score_shift": 0.0, "status_matrix": {},
                             "miss_matrix": {}, "hits_production": {}, "hits_candidate": {},
                             "movers": []}
    for part in parts:
        total["contacts"] += int(part.get("contacts") or 0)
        total["moved"] += int(part.get("moved") or 0)
        total["score_shift"] += float(part.get("score_shift") or 0.0)
        for name in ("status_matrix", "miss_matrix"):
            for old, row in (part.get(name) or {}).items():
                into = total[name].setdefault(old, {})
                for new, count in row.items():
                    into[new] = into.get(new, 0) + int(count)
        for name in ("hits_production", "hits_candidate"):
            for rule, count in (part.get(name) or {}).items():
                total[name][rule] = total[name].get(rule, 0) + int(count)
        room = max_movers - len(total["movers"])
        total["movers"].extend((part.get("movers") or [])[:max(0, room)])
    return total
