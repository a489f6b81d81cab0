"""SOQL date literals (``TODAY``, ``LAST_N_WEEKS:4``, ``THIS_FISCAL_QUARTER``...) as date ranges.

Every documented literal is a half-open range ``[start, end)`` of whole days in the user's time
zone (UTC in the sandbox), built from one calendar unit: day, week (starting Sunday, the en_US
locale), month, quarter, year, and fiscal quarter/year (the org's fiscal year starts in
``FISCAL_YEAR_START_MONTH``, January by default as in a new org). For a unit U:

* ``THIS_U`` / ``LAST_U`` / ``NEXT_U``: the current, previous, next U;
* ``LAST_N_US:n``: the n whole Us before the current one; ``NEXT_N_US:n``: the n after it;
* ``N_US_AGO:n``: the one U n before the current one.

Days differ: ``LAST_N_DAYS:n`` (and ``LAST_90_DAYS``) include today, ``NEXT_N_DAYS:n`` (and
``NEXT_90_DAYS``) start tomorrow.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

#: The month a fiscal year starts in (Organization.FiscalYearStartMonth).
FISCAL_YEAR_START_MONTH = 1

_UNITS = {
    "DAY": "day", "WEEK": "week", "MONTH": "month", "QUARTER": "quarter", "YEAR": "year",
    "FISCAL_QUARTER": "fquarter", "FISCAL_YEAR": "fyear",
}
_PLURAL = r"(DAYS|WEEKS|MONTHS|QUARTERS|YEARS|FISCAL_QUARTERS|FISCAL_YEARS)"
_FIXED = re.compile(r"^(THIS|LAST|NEXT)_(WEEK|MONTH|QUARTER|YEAR|FISCAL_QUARTER|FISCAL_YEAR)$")
_WITH_N = re.compile(rf"^(?:(LAST|NEXT)_N_{_PLURAL}|N_{_PLURAL}_AGO)$")
_DAYS = {"TODAY", "YESTERDAY", "TOMORROW", "LAST_90_DAYS", "NEXT_90_DAYS"}


def is_literal(name: str) -> bool:
    """Whether ``name`` (upper case) is a date literal without ``:n``."""
    return name in _DAYS or bool(_FIXED.match(name))


def takes_n(name: str) -> bool:
    """Whether ``name`` (upper case) is a date literal that needs ``:n``."""
    return bool(_WITH_N.match(name))


def date_range(name: str, n: int, today: date) -> tuple[date, date]:
    """Return ``[start, end)`` of the literal ``name`` (``n`` for the ``:n`` forms)."""
    if name == "TODAY":
        return today, today + timedelta(days=1)
    if name == "YESTERDAY":
        return today - timedelta(days=1), today
    if name == "TOMORROW":
        return today + timedelta(days=1), today + timedelta(days=2)
    if name == "LAST_90_DAYS":
        name, n = "LAST_N_DAYS", 90
    elif name == "NEXT_90_DAYS":
        name, n = "NEXT_N_DAYS", 90
    fixed = _FIXED.match(name)
    if fixed:
        unit = _UNITS[fixed.group(2)]
        start = _start(today, unit)
        offset = {"THIS": 0, "LAST": -1, "NEXT": 1}[fixed.group(1)]
        return _shift(start, unit, offset), _shift(start, unit, offset + 1)
    with_n = _WITH_N.match(name)
    if with_n is None:
        raise ValueError(f"not a date literal: {name}")
    direction, plural = with_n.group(1), with_n.group(2) or with_n.group(3)
    unit = _UNITS[plural[:-1]]
    if unit == "day" and direction == "LAST":
        return today - timedelta(days=n), today + timedelta(days=1)
    start = _start(today, unit)
    if direction == "LAST":
        return _shift(start, unit, -n), start
    if direction == "NEXT":
        return _shift(start, unit, 1), _shift(start, unit, n + 1)
    return _shift(start, unit, -n), _shift(start, unit, -n + 1)  # N_..._AGO


def _start(today: date, unit: str) -> date:
    if unit == "day":
        return today
    if unit == "week":
        return today - timedelta(days=(today.weekday() + 1) % 7)  # back to Sunday
    if unit == "month":
        return today.replace(day=1)
    if unit == "quarter":
        return today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1)
    if unit == "year":
        return today.replace(month=1, day=1)
    # Fiscal units count from the fiscal year's first month.
    months_in = (today.month - FISCAL_YEAR_START_MONTH) % 12
    size = 3 if unit == "fquarter" else 12
    return _add_months(today.replace(day=1), -(months_in % size))


def _shift(start: date, unit: str, k: int) -> date:
    if unit == "day":
        return start + timedelta(days=k)
    if unit == "week":
        return start + timedelta(days=7 * k)
    months = {"month": 1, "quarter": 3, "fquarter": 3, "year": 12, "fyear": 12}[unit]
    return _add_months(start, months * k)


def _add_months(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
