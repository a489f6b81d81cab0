"""Schedule slots: each fired (schedule, slot time) is claimed once, whoever tries.

``crmsync scheduler`` may run twice (two hosts for availability, or a restart that overlaps the
old process): the claim is an INSERT against a primary key on (schedule, slot), so exactly one
claimer wins on SQLite and PostgreSQL alike, and a restarted scheduler sees what was fired.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from crmsync.state.base import StoreBase
from crmsync.state.schema import _meta, _UtcDateTime

_slots = sa.Table(
    "crmsync_schedule_slots", _meta,
    sa.Column("schedule", sa.String(80), primary_key=True),
    sa.Column("slot_at", _UtcDateTime, primary_key=True),
    sa.Column("claimed_at", _UtcDateTime, nullable=False),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("run_id", sa.String(40)),
    sa.Column("status", sa.String(16), nullable=False),
)


@dataclass(frozen=True, slots=True)
class SlotRecord:
    """A claimed slot: who claimed it, the run it started and how that run ended.

    ``status`` is ``claimed`` until the run is recorded, then the run's status (``ok``,
    ``skipped``, ``failed``...), or ``error`` when the run could not start at all.
    """

    schedule: str
    slot_at: datetime
    claimed_at: datetime
    holder: str
    run_id: str | None
    status: str


class ScheduleSlots(StoreBase):
    """Claims of schedule slots (not scoped by connection: schedule names are global)."""

    def claim_slot(self, schedule: str, slot_at: datetime, holder: str) -> bool:
        """Claim one slot; True for the one caller that got it, False for everyone else."""
        try:
            with self._begin() as conn:
                conn.execute(_slots.insert().values(
                    schedule=schedule, slot_at=slot_at, claimed_at=self._clock(),
                    holder=holder[:200], run_id=None, status="claimed"))
        except IntegrityError:
            return False
        return True

    def settle_slot(
        self, schedule: str, slot_at: datetime, *, status: str, run_id: str | None = None
    ) -> None:
        """Record the outcome of a claimed slot's run."""
        with self._begin() as conn:
            conn.execute(_slots.update().where(
                _slots.c.schedule == schedule, _slots.c.slot_at == slot_at,
            ).values(status=status[:16], run_id=run_id))

    def slots(self, schedule: str, limit: int = 100) -> list[SlotRecord]:
        """Return a schedule's claimed slots, latest first."""
        query = (_slots.select().where(_slots.c.schedule == schedule)
                 .order_by(_slots.c.slot_at.desc()).limit(limit))
        with self._connect() as conn:
            return [SlotRecord(**row._asdict()) for row in conn.execute(query)]

    def last_slot(self, schedule: str) -> SlotRecord | None:
        """Return the latest claimed slot of a schedule, or None."""
        found = self.slots(schedule, limit=1)
        return found[0] if found else None
