"""Slot times: cron in the schedule's zone (across DST), intervals aligned to the epoch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crmsync.config import ScheduleSettings, format_every, parse_every
from crmsync.schedule import latest_slot, next_slot


def _at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_cron_slots_are_read_in_the_schedule_time_zone_across_dst() -> None:
    nightly = ScheduleSettings("n", cron="30 2 * * *", timezone="America/New_York")
    # 02:30 in New York is 07:30Z in winter (UTC-5) and 06:30Z in summer (UTC-4).
    assert latest_slot(nightly, _at(2026, 1, 10, 12)) == _at(2026, 1, 10, 7, 30)
    assert latest_slot(nightly, _at(2026, 7, 10, 12)) == _at(2026, 7, 10, 6, 30)
    assert next_slot(nightly, _at(2026, 7, 10, 12)) == _at(2026, 7, 11, 6, 30)


def test_a_slot_exactly_now_is_due_and_the_next_is_strictly_later() -> None:
    minutely = ScheduleSettings("m", cron="* * * * *")
    now = _at(2026, 12, 1, 10, 5)
    assert latest_slot(minutely, now) == now
    assert latest_slot(minutely, now - timedelta(microseconds=1)) == now - timedelta(minutes=1)
    assert next_slot(minutely, now) == now + timedelta(minutes=1)
    every = ScheduleSettings("e", every=timedelta(minutes=1))
    assert latest_slot(every, now) == now and next_slot(every, now) == now + timedelta(minutes=1)


def test_interval_slots_are_multiples_since_the_epoch() -> None:
    ninety = ScheduleSettings("e", every=timedelta(minutes=90))
    # 1970-01-01T00:00Z + k * 90 min: 2026-12-01 starts on a whole day, a multiple of 90 min.
    assert latest_slot(ninety, _at(2026, 12, 1, 2, 59)) == _at(2026, 12, 1, 1, 30)
    assert next_slot(ninety, _at(2026, 12, 1, 2, 59)) == _at(2026, 12, 1, 3, 0)


def test_intervals_parse_and_print() -> None:
    assert parse_every("1h30m") == timedelta(hours=1, minutes=30)
    assert parse_every("90s") == timedelta(seconds=90) and parse_every("1d") == timedelta(days=1)
    assert parse_every("5 minutes") is None and parse_every("0m") is None
    assert format_every(timedelta(hours=1, minutes=30)) == "1h30m"
