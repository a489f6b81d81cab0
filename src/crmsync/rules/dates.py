"""Business-day arithmetic for task due dates (Monday to Friday; no holiday calendar)."""

from __future__ import annotations

from datetime import date, timedelta

_DAY = timedelta(days=1)


def add_business_days(start: date, days: int) -> date:
    """Return the date ``days`` business days after ``start``.

    Weekends are skipped: 1 business day after a Friday (or a Saturday) is the Monday.
    ``days=0`` means "today", rolled forward to Monday when today is a Saturday or Sunday.
    """
    current = start
    if days <= 0:
        while current.weekday() >= 5:
            current += _DAY
        return current
    remaining = days
    while remaining > 0:
        current += _DAY
        if current.weekday() < 5:
            remaining -= 1
    return current
