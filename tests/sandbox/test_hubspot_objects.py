"""HubSpot emulator: list, get, create, update and archive through the real client."""

from __future__ import annotations

import pytest
from hubspot.crm.contacts import (
    ApiException,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.contacts.exceptions import NotFoundException

from crmsync.sandbox.hubspot import HubSpotEmulator


def test_get_all_pages_through_every_contact_in_id_order(hubspot_api, hubspot_server) -> None:
    contacts = hubspot_api.crm.contacts.get_all(properties=["email", "lifecyclestage"])

    assert len(contacts) == 250
    ids = [int(c.id) for c in contacts]
    assert ids == sorted(ids)
    assert set(contacts[0].properties) >= {"email", "lifecyclestage", "hs_object_id"}
    assert hubspot_server.call_counts()["by_endpoint"]["GET /crm/v3/objects/contacts"] == 3


def test_list_cursor_is_opaque_and_paging_is_absent_on_the_last_page(hubspot_api) -> None:
    first = hubspot_api.crm.contacts.basic_api.get_page(limit=100)
    assert not first.paging.next.after.isdigit()
    second = hubspot_api.crm.contacts.basic_api.get_page(limit=100, after=first.paging.next.after)
    third = hubspot_api.crm.contacts.basic_api.get_page(limit=100, after=second.paging.next.after)

    assert len(third.results) == 50
    assert third.paging is None
    assert {r.id for r in first.results}.isdisjoint(r.id for r in second.results)


def test_defaults_when_no_properties_are_asked_for(hubspot_api) -> None:
    page = hubspot_api.crm.contacts.basic_api.get_page(limit=1)
    assert set(page.results[0].properties) == {
        "createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname",
    }


def test_unknown_properties_are_ignored_on_read_and_unset_ones_are_null(hubspot_api) -> None:
    page = hubspot_api.crm.contacts.basic_api.get_page(
        limit=5, properties=["email", "no_such_property", "jobtitle"]
    )
    for contact in page.results:
        assert "no_such_property" not in contact.properties
        assert "jobtitle" in contact.properties  # None when unset, never missing


def test_limit_above_100_is_rejected(hubspot_http) -> None:
    status, body, _ = hubspot_http("GET", "/crm/v3/objects/contacts?limit=101")
    assert status == 400
    assert body["category"] == "VALIDATION_ERROR"
    assert set(body) >= {"status", "message", "correlationId", "category"}


def test_repeated_and_comma_joined_lists_and_any_boolean_case(hubspot_http) -> None:
    _, repeated, _ = hubspot_http(
        "GET", "/crm/v3/objects/contacts?limit=2&properties=email&properties=country&archived=False"
    )
    _, joined, _ = hubspot_http(
        "GET", "/crm/v3/objects/contacts?limit=2&properties=email,country&archived=false"
    )
    assert repeated["results"] == joined["results"]
    assert set(repeated["results"][0]["properties"]) >= {"email", "country"}


def test_get_by_id_and_by_email(hubspot_api) -> None:
    some = hubspot_api.crm.contacts.basic_api.get_page(limit=1, properties=["email"]).results[0]
    by_email = hubspot_api.crm.contacts.basic_api.get_by_id(
        some.properties["email"], id_property="email", properties=["email"]
    )
    assert by_email.id == some.id

    with pytest.raises(NotFoundException):
        hubspot_api.crm.contacts.basic_api.get_by_id("999999999")


def test_create_returns_201_and_a_duplicate_email_conflicts(hubspot_api, hubspot_clock) -> None:
    created = hubspot_api.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": "new@example.com", "firstname": "N"})
    )
    assert created is not None  # None would mean the emulator answered 200, not 201
    assert created.properties["hs_object_id"] == created.id
    assert created.created_at.timestamp() == hubspot_clock.now

    with pytest.raises(ApiException) as caught:
        hubspot_api.crm.contacts.basic_api.create(
            SimplePublicObjectInputForCreate(properties={"email": "NEW@example.com"})
        )
    assert caught.value.status == 409
    assert f"Existing ID: {created.id}" in caught.value.body


def test_update_bumps_lastmodifieddate_to_the_emulator_clock(hubspot_api, hubspot_clock) -> None:
    contact = hubspot_api.crm.contacts.basic_api.get_page(limit=1).results[0]
    hubspot_clock.advance(60)

    updated = hubspot_api.crm.contacts.basic_api.update(
        contact.id, SimplePublicObjectInput(properties={"jobtitle": "CFO", "numemployees": 42})
    )

    assert updated.properties["jobtitle"] == "CFO"
    assert updated.properties["numemployees"] == "42"  # every value is a string on the wire
    assert updated.updated_at.timestamp() == hubspot_clock.now
    again = hubspot_api.crm.contacts.basic_api.get_by_id(contact.id)
    assert again.properties["lastmodifieddate"] == updated.properties["lastmodifieddate"]


def test_clearing_a_value_with_an_empty_string(hubspot_api) -> None:
    contact = hubspot_api.crm.contacts.basic_api.get_page(limit=1).results[0]
    hubspot_api.crm.contacts.basic_api.update(
        contact.id, SimplePublicObjectInput(properties={"jobtitle": ""})
    )
    read = hubspot_api.crm.contacts.basic_api.get_by_id(contact.id, properties=["jobtitle"])
    assert read.properties["jobtitle"] is None


def test_read_only_system_properties_cannot_be_written(hubspot_http) -> None:
    status, body, _ = hubspot_http(
        "PATCH", "/crm/v3/objects/contacts/101", {"properties": {"lastmodifieddate": "0"}}
    )
    assert status == 400
    assert body["errors"][0]["code"] == "READ_ONLY_VALUE"


def _contact_at_stage(emulator: HubSpotEmulator, stage: str) -> str:
    for record in emulator.records("contacts"):
        if record["properties"].get("lifecyclestage") == stage:
            return str(record["id"])
    raise AssertionError(f"no seeded contact at {stage}")


def test_lifecycle_stage_moves_only_forward_unless_switched_off(
    hubspot_api, hubspot_emulator
) -> None:
    contact_id = _contact_at_stage(hubspot_emulator, "salesqualifiedlead")
    api = hubspot_api.crm.contacts.basic_api

    back = api.update(contact_id, SimplePublicObjectInput(properties={"lifecyclestage": "lead"}))
    assert back.properties["lifecyclestage"] == "salesqualifiedlead"  # 2xx, silently ignored

    api.update(contact_id, SimplePublicObjectInput(properties={"lifecyclestage": ""}))
    api.update(contact_id, SimplePublicObjectInput(properties={"lifecyclestage": "lead"}))
    assert api.get_by_id(contact_id, properties=["lifecyclestage"]).properties[
        "lifecyclestage"
    ] == "lead"

    hubspot_emulator.configure({"lifecycle_forward_only": False})
    api.update(contact_id, SimplePublicObjectInput(properties={"lifecyclestage": "opportunity"}))
    api.update(contact_id, SimplePublicObjectInput(properties={"lifecyclestage": "subscriber"}))
    assert api.get_by_id(contact_id, properties=["lifecyclestage"]).properties[
        "lifecyclestage"
    ] == "subscriber"


def test_archive_answers_204_and_archived_listing_shows_it(hubspot_api, hubspot_http) -> None:
    contact = hubspot_api.crm.contacts.basic_api.get_page(limit=1).results[0]
    status, body, _ = hubspot_http("DELETE", f"/crm/v3/objects/contacts/{contact.id}")
    assert (status, body) == (204, None)

    with pytest.raises(NotFoundException):
        hubspot_api.crm.contacts.basic_api.get_by_id(contact.id)
    archived = hubspot_api.crm.contacts.basic_api.get_page(archived=True)
    assert [c.id for c in archived.results] == [contact.id]
    assert archived.results[0].archived_at is not None


def test_deals_carry_loss_reasons_and_contact_associations(hubspot_api) -> None:
    deals = hubspot_api.crm.deals.get_all(
        properties=["dealstage", "closed_lost_reason", "competitor", "pipeline"],
        associations=["contacts"],
    )
    lost = [d for d in deals if d.properties["dealstage"] == "closedlost"]
    assert lost and any(d.properties["closed_lost_reason"] for d in lost)
    assert {d.properties["pipeline"] for d in deals} == {"default"}
    for deal in deals:
        links = deal.associations["contacts"].results
        assert len(links) == 1 and links[0].type == "deal_to_contact"


def test_createdate_may_be_backdated_on_create(hubspot_http) -> None:
    status, body, _ = hubspot_http("POST", "/crm/v3/objects/contacts", {"properties": {
        "email": "imported@example.com", "createdate": "2020-01-02T03:04:05.000Z"}})
    assert status == 201
    assert body["createdAt"] == body["properties"]["createdate"] == "2020-01-02T03:04:05.000Z"
