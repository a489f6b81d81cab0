"""The connectors' read-only "outcomes + history" read, through the real SDKs, both CRMs.

Expected values come from the seed org (deals, outcomes, recorded changes), and today's values
from the connector's ordinary contact read: never from the history code under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from crmsync.connectors.asof import CURRENT, DEALS, HISTORY, UNKNOWN, OutcomeRecord
from crmsync.sandbox.seed import Deal, Org, Person

SINCE = datetime(2025, 9, 1, tzinfo=UTC)
UNTIL = datetime(2026, 11, 24, tzinfo=UTC)
STREAM = {"hubspot": "hubspot:contacts", "salesforce": "salesforce:Contact"}


class Case:
    """One CRM's connector, its seed org, and the outcomes it read for the window."""

    def __init__(self, crm: str, connector: Any, org: Org) -> None:
        self.crm, self.connector, self.org = crm, connector, org
        self.records = list(connector.read_outcomes(SINCE, UNTIL))
        current = connector.read_ids(STREAM[crm], [r.contact_id for r in self.records])
        self.today = {c.id: c.facts for c in current}
        by_email = {p.email: p for p in org.people}
        self.person = {r.contact_id: by_email[self.today[r.contact_id]["email"]]
                       for r in self.records}

    def record_of(self, person: Person) -> OutcomeRecord:
        return next(r for r in self.records if self.person[r.contact_id] is person)


@pytest.fixture(params=["hubspot", "salesforce"])
def case(request: pytest.FixtureRequest) -> Iterator[Case]:
    crm = request.param
    connector = request.getfixturevalue(f"{crm}_connector")
    yield Case(crm, connector, request.getfixturevalue(f"{crm}_org"))


def _judged_deal(person: Person) -> Deal | None:
    closed = [d for d in person.deals if d.outcome in ("won", "lost")
              and SINCE.date() <= d.close_date.date() < UNTIL.date()]
    return max(closed, key=lambda d: d.close_date) if closed else None


def test_every_contact_with_a_deal_closed_in_the_window_and_its_outcome(case: Case) -> None:
    expected = {p.email: _judged_deal(p).outcome for p in case.org.people  # type: ignore[union-attr]
                if _judged_deal(p) is not None}
    got = {case.person[r.contact_id].email: r.outcome for r in case.records}
    assert got == expected
    assert len(got) > 10 and {"won", "lost"} == set(got.values())
    for record in case.records:
        deal = _judged_deal(case.person[record.contact_id])
        assert deal is not None and record.closed_at.date() == deal.close_date.date()
        assert record.as_of == record.closed_at


def test_a_value_changed_after_the_close_is_rewound(case: Case) -> None:
    judged = {id(p) for p in case.person.values()}
    person, change = next(
        (p, c) for p in case.org.people if id(p) in judged
        for c in p.history.changes
        if c.attribute == "budget_confirmed" and bool(c.old) != bool(c.new))
    record = case.record_of(person)
    assert record.facts["budget_confirmed"] is bool(change.old)
    assert bool(case.today[record.contact_id]["budget_confirmed"]) is bool(change.new)
    assert record.sources["budget_confirmed"] == HISTORY
    assert "budget_confirmed" in record.from_history()


def test_missing_history_is_labelled_and_uses_current_values(case: Case) -> None:
    person = next(p for p in case.person.values() if p.history.missing)
    record = case.record_of(person)
    assert record.from_history() == []
    assert "budget_confirmed" in record.from_current()
    assert record.sources["budget_confirmed"] == CURRENT
    today = case.today[record.contact_id]
    for fact in ("budget_confirmed", "country", "title", "pricing_page_views"):
        assert record.facts[fact] == today[fact], fact
    assert all(record.sources[f] == DEALS for f in ("won_deals", "lost_deals", "open_deals"))
    assert record.facts["previous_status"] is None and record.sources["previous_status"] == UNKNOWN


def test_the_judged_deal_is_left_out_of_the_deal_facts(case: Case) -> None:
    single = next(p for p in case.person.values() if len(p.deals) == 1)
    facts = case.record_of(single).facts
    assert (facts["won_deals"], facts["lost_deals"], facts["open_deals"]) == (0, 0, 0)
    # Two deals: the other one counts as it stood at the judged close.
    pair = next(p for p in case.person.values() if len(p.deals) == 2)
    judged = _judged_deal(pair)
    other = next(d for d in pair.deals if d is not judged)
    facts = case.record_of(pair).facts
    assert judged is not None
    if other.created_at >= judged.close_date:
        expected = (0, 0, 0)  # did not exist yet
    elif other.outcome == "open" or other.close_date >= judged.close_date:
        expected = (0, 0, 1)
    else:
        expected = (int(other.outcome == "won"), int(other.outcome == "lost"), 0)
    assert (facts["won_deals"], facts["lost_deals"], facts["open_deals"]) == expected


def test_crm_specific_history_gaps(case: Case) -> None:
    record = next(r for r in case.records if not case.person[r.contact_id].history.missing
                  and case.today[r.contact_id]["employees"] is not None)
    if case.crm == "salesforce":
        # Employees live on the Account, which has no ContactHistory; the last activity is a
        # system field without history: today's date after the close cannot have been known.
        assert record.sources["employees"] == CURRENT
        after = next(r for r in case.records
                     if (case.today[r.contact_id]["last_activity_at"] or r.as_of) > r.as_of)
        assert after.sources["last_activity_at"] == UNKNOWN
        assert after.facts["last_activity_at"] is None
    else:
        assert record.sources["employees"] == HISTORY
        person, change = next(
            (case.person[r.contact_id], c) for r in case.records
            for c in case.person[r.contact_id].history.changes if c.attribute == "last_activity_at")
        rewound = case.record_of(person).facts["last_activity_at"]
        assert rewound == change.old.replace(microsecond=change.old.microsecond // 1000 * 1000)
