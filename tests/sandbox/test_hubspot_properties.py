"""HubSpot emulator: property groups and properties, as ``crmsync setup`` creates them."""

from __future__ import annotations

import pytest
from hubspot.crm.contacts import PublicObjectSearchRequest, SimplePublicObjectInput
from hubspot.crm.properties import ApiException, PropertyCreate, PropertyGroupCreate, PropertyUpdate

STATUS_OPTIONS = [
    {"label": "Lead", "value": "lead", "displayOrder": 0, "hidden": False},
    {"label": "Prospect", "value": "prospect", "displayOrder": 1, "hidden": False},
]


def _setup_crmsync(api) -> None:
    api.crm.properties.groups_api.create(
        "contacts", PropertyGroupCreate(name="crmsync", label="CRM Sync", display_order=-1)
    )
    core = api.crm.properties.core_api
    core.create("contacts", PropertyCreate(
        name="crmsync_status", label="Funnel status", group_name="crmsync", type="enumeration",
        field_type="select", options=STATUS_OPTIONS))
    core.create("contacts", PropertyCreate(
        name="crmsync_score", label="Score", group_name="crmsync", type="number",
        field_type="number"))
    core.create("contacts", PropertyCreate(
        name="crmsync_reason", label="Reason", group_name="crmsync", type="string",
        field_type="textarea"))
    core.create("contacts", PropertyCreate(
        name="crmsync_evaluated_at", label="Evaluated", group_name="crmsync", type="datetime",
        field_type="date"))
    core.create("contacts", PropertyCreate(
        name="crmsync_status_since", label="Since", group_name="crmsync", type="date",
        field_type="date"))


def test_setup_then_write_read_and_search(hubspot_api) -> None:
    _setup_crmsync(hubspot_api)
    prop = hubspot_api.crm.properties.core_api.get_by_name("contacts", "crmsync_status")
    assert prop.hubspot_defined is False and [o.value for o in prop.options] == ["lead", "prospect"]
    contact = hubspot_api.crm.contacts.basic_api.get_page(limit=1).results[0]

    hubspot_api.crm.contacts.basic_api.update(contact.id, SimplePublicObjectInput(properties={
        "crmsync_status": "prospect", "crmsync_score": "87", "crmsync_reason": "R7 fired",
        "crmsync_evaluated_at": "1795395600000", "crmsync_status_since": "2026-11-23",
    }))
    read = hubspot_api.crm.contacts.basic_api.get_by_id(
        contact.id, properties=["crmsync_status", "crmsync_score", "crmsync_evaluated_at",
                                "crmsync_status_since"])
    assert read.properties["crmsync_status"] == "prospect"
    assert read.properties["crmsync_evaluated_at"] == "2026-11-23T01:00:00.000Z"
    assert read.properties["crmsync_status_since"] == "2026-11-23"
    found = hubspot_api.crm.contacts.search_api.do_search(PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "crmsync_score", "operator": "GTE",
                                     "value": "80"}]}], properties=["crmsync_score"], limit=10))
    assert [c.id for c in found.results] == [contact.id]


def test_writing_before_setup_is_property_doesnt_exist(hubspot_http) -> None:
    status, body, _ = hubspot_http(
        "PATCH", "/crm/v3/objects/contacts/101", {"properties": {"crmsync_status": "lead"}})
    assert status == 400
    assert body["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"
    assert body["errors"][0]["context"] == {"propertyName": ["crmsync_status"]}


def test_option_labels_are_not_values(hubspot_api, hubspot_http) -> None:
    _setup_crmsync(hubspot_api)
    status, body, _ = hubspot_http(
        "PATCH", "/crm/v3/objects/contacts/101", {"properties": {"crmsync_status": "Prospect"}})
    assert status == 400 and body["errors"][0]["code"] == "INVALID_OPTION"


def test_existing_group_and_property_names_conflict(hubspot_api) -> None:
    _setup_crmsync(hubspot_api)
    with pytest.raises(ApiException) as group:
        hubspot_api.crm.properties.groups_api.create(
            "contacts", PropertyGroupCreate(name="crmsync", label="again"))
    with pytest.raises(ApiException) as prop:
        hubspot_api.crm.properties.core_api.create("contacts", PropertyCreate(
            name="crmsync_score", label="x", group_name="crmsync", type="number",
            field_type="number"))
    assert group.value.status == prop.value.status == 409
    assert "OBJECT_ALREADY_EXISTS" in prop.value.body


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"name": "Bad-Name", "type": "string", "fieldType": "text"}, "invalid"),
        ({"name": "hs_mine", "type": "string", "fieldType": "text"}, "reserved"),
        ({"name": "ok_name", "type": "number", "fieldType": "select"}, "not valid for type"),
        ({"name": "ok_name", "type": "text", "fieldType": "text"}, "Invalid property type"),
        ({"name": "ok_name", "type": "string", "fieldType": "text", "groupName": "nope"},
         "does not exist"),
        ({"name": "ok_name", "type": "string"}, "missing required"),
    ],
)
def test_property_definitions_are_validated(hubspot_http, body, why) -> None:
    payload = {"label": "L", "groupName": "contactinformation", **body}
    status, answer, _ = hubspot_http("POST", "/crm/v3/properties/contacts", payload)
    assert status == 400 and why in answer["message"]


def test_patch_replaces_options_and_get_unknown_is_404(hubspot_api) -> None:
    _setup_crmsync(hubspot_api)
    core = hubspot_api.crm.properties.core_api
    updated = core.update("contacts", "crmsync_status", PropertyUpdate(options=[
        {"label": "Opportunity", "value": "opportunity", "displayOrder": 0, "hidden": False}]))
    assert [o.value for o in updated.options] == ["opportunity"]
    with pytest.raises(Exception, match="404"):
        core.get_by_name("contacts", "crmsync_nothing")


def test_seeded_schema_has_the_engagement_group_but_not_crmsync(hubspot_api) -> None:
    groups = {g.name for g in hubspot_api.crm.properties.groups_api.get_all("contacts").results}
    props = {p.name: p for p in hubspot_api.crm.properties.core_api.get_all("contacts").results}
    assert "engagement" in groups and "crmsync" not in groups
    assert props["trial_signup"].type == "bool"
    assert props["lifecyclestage"].type == "enumeration"
    assert not any(name.startswith("crmsync_") for name in props)
    deals = {p.name for p in hubspot_api.crm.properties.core_api.get_all("deals").results}
    assert {"closed_lost_reason", "competitor", "dealstage", "pipeline"} <= deals


def test_unset_booleans_stay_null_and_set_ones_are_strings(hubspot_api) -> None:
    contacts = hubspot_api.crm.contacts.get_all(properties=["budget_confirmed", "trial_signup"])
    values = {c.properties["budget_confirmed"] for c in contacts}
    assert values == {None, "true", "false"}
    assert {c.properties["trial_signup"] for c in contacts} <= {"true", "false"}
