"""Seeded field history and closed deals, served as the real APIs serve them.

HubSpot: ``propertiesWithHistory`` on basic and batch contact reads (newest first, shape of
``ValueWithTimestamp`` in shared/specs/hubspot/contacts.v3.json), deals with ``closedate`` and
``dealstage`` associated with their contact. Salesforce: ``ContactHistory`` rows (``Field``,
``OldValue``, ``NewValue``, ``CreatedDate``, ``ContactId``) and ``Opportunity`` ``IsClosed``/
``IsWon``/``CloseDate``, all through SOQL with simple-salesforce. Expected values come from the
seed (:mod:`crmsync.sandbox.history`), never from the emulator.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crmsync.sandbox.history import Change
from crmsync.sandbox.seed import Org, Person, generate_org

#: Reference specs live beside the project (never copied into it), as for test_hubspot_schemas.
SPEC = Path(__file__).resolve().parents[2].parent / "shared" / "specs" / "hubspot" / \
    "contacts.v3.json"


def _with_change(org: Org, attribute: str) -> tuple[Person, Change]:
    for person in org.people:
        for change in person.history.changes:
            if change.attribute == attribute and bool(change.old) != bool(change.new):
                return person, change
    raise AssertionError(f"the seed has no {attribute} change")


def _bool_text(value: Any) -> str | None:
    return None if value is None else ("true" if value else "false")


def _ms_iso(moment: datetime) -> str:
    ms = int(moment.timestamp() * 1000)
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + \
        f".{ms % 1000:03d}Z"


# -- the seed ----------------------------------------------------------------------------------


def test_history_is_deterministic_and_ends_at_todays_values() -> None:
    anchor = datetime(2026, 11, 23, tzinfo=UTC)
    one, two = generate_org(600, 5, anchor), generate_org(600, 5, anchor)
    assert [p.history for p in one.people] == [p.history for p in two.people]
    changed = 0
    for person in one.people:
        latest: dict[str, Any] = {}
        for change in person.history.changes:
            latest[change.attribute] = change.new
            target = person.history.target
            assert target is not None and target.close_date < change.at <= anchor
        for attribute, value in latest.items():
            assert getattr(person, attribute) == value  # today's value is the last change
        changed += bool(latest)
    assert changed > 50


def test_won_contacts_fit_the_profile_more_often_at_the_close() -> None:
    org = generate_org(2000, 1, datetime(2026, 11, 23, tzinfo=UTC))
    budget: dict[str, list[bool]] = {"won": [], "lost": []}
    for person in org.people:
        target = person.history.target
        if target is None or person.history.missing:
            continue
        before = person.history.first_values()
        budget[target.outcome].append(bool(before.get("budget_confirmed",
                                                      person.budget_confirmed)))
    won = sum(budget["won"]) / len(budget["won"])
    lost = sum(budget["lost"]) / len(budget["lost"])
    assert won > lost + 0.3, (won, lost)


# -- HubSpot -----------------------------------------------------------------------------------


def test_hubspot_basic_read_serves_history_newest_first(hubspot_api: Any, hubspot_org: Org) -> None:
    person, change = _with_change(hubspot_org, "budget_confirmed")
    contact = hubspot_api.crm.contacts.basic_api.get_by_id(
        person.email, id_property="email", properties=["budget_confirmed"],
        properties_with_history=["budget_confirmed"])
    entries = contact.properties_with_history["budget_confirmed"]
    assert [e.value for e in entries] == [_bool_text(change.new) or "", _bool_text(change.old)]
    assert entries[0].timestamp == change.at
    assert entries[1].timestamp == person.created_at.replace(
        microsecond=person.created_at.microsecond // 1000 * 1000)
    assert contact.properties["budget_confirmed"] == _bool_text(change.new)


def test_hubspot_batch_read_history_has_the_spec_shape(hubspot_http: Any,
                                                       hubspot_org: Org) -> None:
    if not SPEC.is_file():
        pytest.skip(f"HubSpot OpenAPI spec not found at {SPEC}")
    person, change = _with_change(hubspot_org, "demo_requested")
    required = json.loads(SPEC.read_text("utf-8"))["components"]["schemas"][
        "ValueWithTimestamp"]["required"]
    status, body, _ = hubspot_http("POST", "/crm/v3/objects/contacts/batch/read", {
        "idProperty": "email", "inputs": [{"id": person.email}],
        "properties": ["demo_requested"], "propertiesWithHistory": ["demo_requested", "email"]})
    assert status == 200
    [record] = body["results"]
    history = record["propertiesWithHistory"]
    for entry in history["demo_requested"] + history["email"]:
        assert set(required) <= set(entry) and all(isinstance(entry[k], str) for k in required)
    assert [e["timestamp"] for e in history["demo_requested"]][0] == _ms_iso(change.at)
    assert [e["value"] for e in history["demo_requested"]] == [
        _bool_text(change.new), _bool_text(change.old)]


def test_hubspot_missing_history_is_empty_and_writes_start_one(hubspot_api: Any,
                                                              hubspot_org: Org) -> None:
    from hubspot.crm.contacts import SimplePublicObjectInput

    person = next(p for p in hubspot_org.people if p.history.missing and p.title)
    contact = hubspot_api.crm.contacts.basic_api.get_by_id(
        person.email, id_property="email", properties_with_history=["jobtitle"])
    assert contact.properties_with_history["jobtitle"] == []
    hubspot_api.crm.contacts.basic_api.update(
        contact.id, SimplePublicObjectInput(properties={"jobtitle": "Head of Sales"}))
    again = hubspot_api.crm.contacts.basic_api.get_by_id(
        contact.id, properties_with_history=["jobtitle"])
    assert [e.value for e in again.properties_with_history["jobtitle"]] == ["Head of Sales"]


def test_hubspot_closed_deals_carry_close_date_and_stage(hubspot_api: Any,
                                                         hubspot_org: Org) -> None:
    person = next(p for p in hubspot_org.people
                  if len(p.deals) == 1 and p.deals[0].outcome in ("won", "lost"))
    deal = person.deals[0]
    contact = hubspot_api.crm.contacts.basic_api.get_by_id(
        person.email, id_property="email", associations=["deals"])
    [link] = contact.associations["deals"].results
    read = hubspot_api.crm.deals.basic_api.get_by_id(
        link.id, properties=["closedate", "dealstage"], associations=["contacts"])
    assert read.properties["dealstage"] == {"won": "closedwon", "lost": "closedlost"}[deal.outcome]
    assert read.properties["closedate"] == _ms_iso(deal.close_date)
    assert [c.id for c in read.associations["contacts"].results] == [contact.id]


# -- Salesforce --------------------------------------------------------------------------------


def _contact_id(sf: Any, person: Person) -> str:
    [row] = sf.query(f"SELECT Id FROM Contact WHERE Email = '{person.email}'")["records"]
    return str(row["Id"])


def test_salesforce_contact_history_rows_are_the_seeded_changes(sf: Any, sf_org: Org) -> None:
    person, change = _with_change(sf_org, "budget_confirmed")
    contact_id = _contact_id(sf, person)
    rows = sf.query_all(
        "SELECT ContactId, Field, DataType, OldValue, NewValue, CreatedDate FROM ContactHistory "
        f"WHERE ContactId = '{contact_id}' ORDER BY CreatedDate ASC")["records"]
    assert rows[0]["Field"] == "created" and rows[0]["OldValue"] is None
    budget = [r for r in rows if r["Field"] == "Budget_Confirmed__c"]
    assert [(r["OldValue"], r["NewValue"]) for r in budget] == [
        (bool(change.old), bool(change.new))]
    assert budget[0]["CreatedDate"] == change.at.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    assert {r["ContactId"] for r in rows} == {contact_id}


def test_salesforce_missing_history_has_no_rows(sf: Any, sf_org: Org) -> None:
    person = next(p for p in sf_org.people
                  if p.history.missing and not p.is_lead and p.history.target is not None)
    contact_id = _contact_id(sf, person)
    assert sf.query(f"SELECT Id FROM ContactHistory WHERE ContactId = '{contact_id}'")[
        "totalSize"] == 0


def test_salesforce_closed_opportunities(sf: Any, sf_org: Org) -> None:
    person = next(p for p in sf_org.people
                  if not p.is_lead and len(p.deals) == 1 and p.deals[0].outcome == "won")
    contact_id = _contact_id(sf, person)
    [opp] = sf.query("SELECT StageName, IsClosed, IsWon, CloseDate, ContactId FROM Opportunity "
                     f"WHERE ContactId = '{contact_id}'")["records"]
    assert (opp["StageName"], opp["IsClosed"], opp["IsWon"]) == ("Closed Won", True, True)
    assert opp["CloseDate"] == person.deals[0].close_date.date().isoformat()


def test_salesforce_update_of_a_tracked_field_adds_a_row(sf: Any, sf_org: Org) -> None:
    person = next(p for p in sf_org.people if not p.is_lead and not p.history.missing)
    contact_id = _contact_id(sf, person)
    before = sf.query(f"SELECT Title FROM Contact WHERE Id = '{contact_id}'")["records"][0]
    sf.Contact.update(contact_id, {"Title": "Chief Revenue Officer", "LeadSource": "Web"})
    rows = sf.query("SELECT Field, OldValue, NewValue FROM ContactHistory "
                    f"WHERE ContactId = '{contact_id}' AND Field IN ('Title', 'LeadSource')")
    assert [(r["Field"], r["OldValue"], r["NewValue"]) for r in rows["records"]] == [
        ("Title", before["Title"], "Chief Revenue Officer")]  # LeadSource is not tracked
