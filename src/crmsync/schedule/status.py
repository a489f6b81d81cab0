"""What ``crmsync schedule list`` shows: each schedule's next slot, last run and its outcome."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crmsync.config import ScheduleSettings, Settings, select_connection
from crmsync.schedule.runner import schedule_trigger
from crmsync.schedule.timing import next_slot
from crmsync.state import RunRecord, StateStore
from crmsync.state.slots import SlotRecord


@dataclass(frozen=True, slots=True)
class ScheduleStatus:
    """One schedule as an admin reads it.

    ``last_run`` is the latest run the schedule started (a slot or ``schedule run``);
    ``last_slot`` the latest slot a scheduler claimed (its status says ``error`` when the run
    could not start at all). ``paused_at`` is set while an admin has paused it.
    """

    schedule: ScheduleSettings
    next_at: datetime | None
    last_run: RunRecord | None
    last_slot: SlotRecord | None
    paused_at: datetime | None = None

    @property
    def outcome(self) -> str:
        """The last run's status (``ok``, ``partial``, ``skipped``, ``failed``...), or ``-``."""
        if self.last_slot is not None and self.last_slot.status == "error" and (
                self.last_run is None or self.last_run.started_at < self.last_slot.claimed_at):
            return "error (not started)"
        return self.last_run.status if self.last_run is not None else "-"

    def to_json(self) -> dict[str, Any]:
        """The ``--output json`` form."""
        s, run = self.schedule, self.last_run
        return {
            "name": s.name, "connection": s.connection, "cron": s.cron,
            "every_seconds": int(s.every.total_seconds()) if s.every else None,
            "timezone": s.timezone, "mode": s.mode, "enabled": s.enabled,
            "paused_at": self.paused_at.isoformat() if self.paused_at else None,
            "next_at": self.next_at.isoformat() if self.next_at else None,
            "last_run": None if run is None else {
                "run_id": run.id, "started_at": run.started_at.isoformat(),
                "status": run.status, "exit_code": run.exit_code},
            "last_slot": None if self.last_slot is None else {
                "slot_at": self.last_slot.slot_at.isoformat(), "status": self.last_slot.status,
                "run_id": self.last_slot.run_id, "holder": self.last_slot.holder},
            "outcome": self.outcome,
        }


def schedule_statuses(
    settings: Settings, now: datetime, open_store: Callable[[str], StateStore]
) -> list[ScheduleStatus]:
    """Return every schedule's status, by name.

    Args:
        settings: The loaded settings (credentials not needed).
        now: The current time (aware).
        open_store: Returns the (cached, caller-closed) store at a state URL: slot claims live
            in the shared ``[state] url``, runs in their connection's store.
    """
    root = settings.base or settings
    shared = open_store(root.state.url)
    paused = shared.paused_schedules()
    statuses = []
    for name, schedule in sorted(root.schedules.items()):
        url = select_connection(root, schedule.connection, require_crm=False).state.url
        runs = open_store(url).runs(limit=1, connection=schedule.connection,
                                    trigger=schedule_trigger(name))
        due = schedule.enabled and name not in paused
        statuses.append(ScheduleStatus(
            schedule, next_slot(schedule, now) if due else None,
            runs[0] if runs else None, shared.last_slot(name), paused.get(name)))
    return statuses
