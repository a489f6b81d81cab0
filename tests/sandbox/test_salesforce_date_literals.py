"""SOQL date literals (issue 10 item 3): every documented literal, as Salesforce defines it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from crmsync.sandbox.salesforce.dates import date_range

# Wednesday 2026-11-25: its week started Sunday 2026-11-22; Q4 2026 started 2026-10-01.
TODAY = date(2026, 11, 25)
D = date

EXPECTED = {
    "TODAY": (D(2026, 11, 25), D(2026, 11, 26)),
    "YESTERDAY": (D(2026, 11, 24), D(2026, 11, 25)),
    "TOMORROW": (D(2026, 11, 26), D(2026, 11, 27)),
    "THIS_WEEK": (D(2026, 11, 22), D(2026, 11, 29)),
    "LAST_WEEK": (D(2026, 11, 15), D(2026, 11, 22)),
    "NEXT_WEEK": (D(2026, 11, 29), D(2026, 12, 6)),
    "THIS_MONTH": (D(2026, 11, 1), D(2026, 12, 1)),
    "LAST_MONTH": (D(2026, 10, 1), D(2026, 11, 1)),
    "NEXT_MONTH": (D(2026, 12, 1), D(2027, 1, 1)),
    "LAST_90_DAYS": (D(2026, 8, 27), D(2026, 11, 26)),  # today included: 91 days
    "NEXT_90_DAYS": (D(2026, 11, 26), D(2027, 2, 24)),
    "THIS_QUARTER": (D(2026, 10, 1), D(2027, 1, 1)),
    "LAST_QUARTER": (D(2026, 7, 1), D(2026, 10, 1)),
    "NEXT_QUARTER": (D(2027, 1, 1), D(2027, 4, 1)),
    "THIS_YEAR": (D(2026, 1, 1), D(2027, 1, 1)),
    "LAST_YEAR": (D(2025, 1, 1), D(2026, 1, 1)),
    "NEXT_YEAR": (D(2027, 1, 1), D(2028, 1, 1)),
    "THIS_FISCAL_QUARTER": (D(2026, 10, 1), D(2027, 1, 1)),
    "LAST_FISCAL_YEAR": (D(2025, 1, 1), D(2026, 1, 1)),
    "NEXT_FISCAL_QUARTER": (D(2027, 1, 1), D(2027, 4, 1)),
}
EXPECTED_N = {
    ("LAST_N_DAYS", 7): (D(2026, 11, 18), D(2026, 11, 26)),
    ("NEXT_N_DAYS", 7): (D(2026, 11, 26), D(2026, 12, 3)),
    ("N_DAYS_AGO", 3): (D(2026, 11, 22), D(2026, 11, 23)),
    ("LAST_N_WEEKS", 2): (D(2026, 11, 8), D(2026, 11, 22)),
    ("NEXT_N_WEEKS", 2): (D(2026, 11, 29), D(2026, 12, 13)),
    ("N_WEEKS_AGO", 1): (D(2026, 11, 15), D(2026, 11, 22)),
    ("LAST_N_MONTHS", 3): (D(2026, 8, 1), D(2026, 11, 1)),
    ("NEXT_N_MONTHS", 2): (D(2026, 12, 1), D(2027, 2, 1)),
    ("N_MONTHS_AGO", 11): (D(2025, 12, 1), D(2026, 1, 1)),
    ("LAST_N_QUARTERS", 2): (D(2026, 4, 1), D(2026, 10, 1)),
    ("NEXT_N_QUARTERS", 1): (D(2027, 1, 1), D(2027, 4, 1)),
    ("N_QUARTERS_AGO", 4): (D(2025, 10, 1), D(2026, 1, 1)),
    ("LAST_N_YEARS", 2): (D(2024, 1, 1), D(2026, 1, 1)),
    ("NEXT_N_YEARS", 1): (D(2027, 1, 1), D(2028, 1, 1)),
    ("N_YEARS_AGO", 1): (D(2025, 1, 1), D(2026, 1, 1)),
    ("LAST_N_FISCAL_QUARTERS", 1): (D(2026, 7, 1), D(2026, 10, 1)),
    ("N_FISCAL_YEARS_AGO", 2): (D(2024, 1, 1), D(2025, 1, 1)),
    ("NEXT_N_FISCAL_YEARS", 2): (D(2027, 1, 1), D(2029, 1, 1)),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixed_literals(name: str) -> None:
    assert date_range(name, 0, TODAY) == EXPECTED[name]


@pytest.mark.parametrize(("name", "n"), sorted(EXPECTED_N))
def test_literals_with_n(name: str, n: int) -> None:
    assert date_range(name, n, TODAY) == EXPECTED_N[(name, n)]


def _created(sf_http: Any) -> list[datetime]:
    rows = sf_http("GET", "/_sandbox/records/Lead")[1]["records"]
    return [datetime.fromisoformat(r["CreatedDate"].replace("+0000", "+00:00")) for r in rows]


def test_literals_filter_through_the_client(sf: Any, sf_http: Any) -> None:
    # The emulator clock reads Monday 2026-11-23 01:00 UTC; its week began Sunday 2026-11-22.
    created = [c.date() for c in _created(sf_http)]
    two_weeks = sum(D(2026, 11, 8) <= c < D(2026, 11, 22) for c in created)
    last_quarter = sum(D(2026, 7, 1) <= c < D(2026, 10, 1) for c in created)
    ago = sum(c == D(2026, 11, 13) for c in created)
    assert two_weeks and last_quarter  # the seed has Leads in both ranges

    def count(where: str) -> int:
        return int(sf.query(f"SELECT COUNT() FROM Lead WHERE {where}")["totalSize"])

    assert count("CreatedDate = LAST_N_WEEKS:2") == two_weeks
    assert count("CreatedDate = LAST_QUARTER") == last_quarter
    assert count("CreatedDate = LAST_FISCAL_QUARTER") == last_quarter
    assert count("CreatedDate = N_DAYS_AGO:10") == ago
    assert count("CreatedDate < THIS_FISCAL_YEAR") + count("CreatedDate >= THIS_FISCAL_YEAR") == (
        len(created))


def test_an_unknown_literal_or_a_missing_n_is_malformed(sf: Any) -> None:
    for where in ("CreatedDate = LAST_N_FORTNIGHTS:2", "CreatedDate = LAST_N_WEEKS"):
        with pytest.raises(SalesforceMalformedRequest) as caught:
            sf.query(f"SELECT Id FROM Lead WHERE {where}")
        assert caught.value.content[0]["errorCode"] in ("MALFORMED_QUERY", "INVALID_FIELD")
