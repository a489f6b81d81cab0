"""Slot times of a schedule: the latest one due and the next one to come.

A *slot* is the instant a schedule is due: a cron match (read in the schedule's time zone) or a
whole multiple of an ``every`` interval since 1970-01-01T00:00Z (so every scheduler, and every
restart, computes the same slots). Slots are returned as aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from crmsync.config import ScheduleSettings

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def latest_slot(schedule: ScheduleSettings, now: datetime) -> datetime:
    """Return the latest slot at or before ``now``."""
    if schedule.every is not None:
        return _EPOCH + (now - _EPOCH) // schedule.every * schedule.every
    assert schedule.cron is not None
    # croniter's get_prev is strictly before its start; start a second after `now` (cut to the
    # second: cron slots are whole minutes) so a slot exactly at `now` counts as due.
    start = now.astimezone(ZoneInfo(schedule.timezone)).replace(microsecond=0)
    slot = croniter(schedule.cron, start + timedelta(seconds=1)).get_prev(datetime)
    return slot.astimezone(UTC)


def next_slot(schedule: ScheduleSettings, now: datetime) -> datetime:
    """Return the first slot strictly after ``now``."""
    if schedule.every is not None:
        return latest_slot(schedule, now) + schedule.every
    assert schedule.cron is not None
    start = now.astimezone(ZoneInfo(schedule.timezone))
    return croniter(schedule.cron, start).get_next(datetime).astimezone(UTC)
