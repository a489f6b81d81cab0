"""Scheduled runs: when each ``[schedules.NAME]`` is due, and the loop that starts them.

``timing`` turns a schedule into slot times; ``scheduler`` claims each due slot once in the
state store (so two schedulers, or a restart, never start the same slot twice) and hands it to
an injected "start a run" callable; ``runner`` is the local one (a run in this process).
"""

from crmsync.schedule.runner import (
    RunStarted,
    StartRun,
    local_starter,
    manual_trigger,
    run_schedule,
    schedule_trigger,
)
from crmsync.schedule.scheduler import Fired, Scheduler
from crmsync.schedule.status import ScheduleStatus, schedule_statuses
from crmsync.schedule.timing import latest_slot, next_slot

__all__ = [
    "Fired",
    "RunStarted",
    "ScheduleStatus",
    "Scheduler",
    "StartRun",
    "latest_slot",
    "local_starter",
    "manual_trigger",
    "next_slot",
    "run_schedule",
    "schedule_statuses",
    "schedule_trigger",
]
