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


#: Schedules an admin paused (the console's Schedules page): a row while paused, none after.
_pauses = sa.Table(
    "crmsync_schedule_pauses", _meta,
    sa.Column("schedule", sa.String(80), primary_key=True),
    sa.Column("paused_at", _UtcDateTime, nullable=False),
    sa.Column("paused_by", sa.String(200), nullable=False),
)


class SchedulePauses(StoreBase):
    """Paused schedules: the scheduler skips their slots until resumed (a new table: stores
    written by an older crmsync get it from ``create_all``, no migration step needed)."""

    def pause_schedule(self, schedule: str, by: str) -> bool:
        """Pause ``schedule``; False when it already was (the first pause is kept)."""
        try:
            with self._begin() as conn:
                conn.execute(_pauses.insert().values(
                    schedule=schedule, paused_at=self._clock(), paused_by=by[:200]))
        except IntegrityError:
            return False
        return True

    def resume_schedule(self, schedule: str) -> bool:
        """Resume ``schedule``; False when it was not paused."""
        with self._begin() as conn:
            return bool(conn.execute(
                _pauses.delete().where(_pauses.c.schedule == schedule)).rowcount)

    def paused_schedules(self) -> dict[str, datetime]:
        """Return every paused schedule and when it was paused."""
        with self._connect() as conn:
            return {row.schedule: row.paused_at
                    for row in conn.execute(sa.select(_pauses.c.schedule, _pauses.c.paused_at))}
