"""HubSpot emulator: tasks with associations, v4 associations, and owners."""

from __future__ import annotations

import pytest
from hubspot.crm.associations.v4 import AssociationSpec
from hubspot.crm.objects.tasks import ApiException as TaskApiException
from hubspot.crm.objects.tasks import (
    BatchInputSimplePublicObjectBatchInputForCreate,
    SimplePublicObjectInputForCreate,
)

TASK = {
    "hs_timestamp": "2026-12-01T09:00:00.000Z",
    "hs_task_subject": "Call back - MQL",
    "hs_task_body": "Rule R7 fired",
    "hs_task_status": "NOT_STARTED",
    "hs_task_priority": "HIGH",
    "hs_task_type": "CALL",
}


def _to_contact(contact_id: str, type_id: int = 204) -> list[dict]:
    return [{"to": {"id": contact_id},
             "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}]


def _contact(api):
    return api.crm.contacts.basic_api.get_page(limit=1, properties=["hubspot_owner_id"]).results[0]


def test_create_task_with_contact_association_then_read_it_both_ways(hubspot_api) -> None:
    contact = _contact(hubspot_api)
    task = hubspot_api.crm.objects.tasks.basic_api.create(SimplePublicObjectInputForCreate(
        properties={**TASK, "hubspot_owner_id": contact.properties["hubspot_owner_id"]},
        associations=_to_contact(contact.id),
    ))
    assert task is not None and task.properties["hs_task_subject"] == TASK["hs_task_subject"]

    v4 = hubspot_api.crm.associations.v4.basic_api.get_page("contacts", contact.id, "tasks")
    assert [(str(r.to_object_id), r.association_types[0].type_id) for r in v4.results] == [
        (task.id, 203)]
    seen = hubspot_api.crm.contacts.basic_api.get_by_id(contact.id, associations=["tasks"])
    assert [(a.id, a.type) for a in seen.associations["tasks"].results] == [
        (task.id, "contact_to_task")]
    read = hubspot_api.crm.objects.tasks.basic_api.get_by_id(
        task.id, properties=list(TASK), associations=["contacts"])
    assert read.properties["hs_timestamp"] == TASK["hs_timestamp"]
    assert read.associations["contacts"].results[0].id == contact.id


def test_hs_timestamp_is_required(hubspot_api) -> None:
    with pytest.raises(TaskApiException) as caught:
        hubspot_api.crm.objects.tasks.basic_api.create(SimplePublicObjectInputForCreate(
            properties={"hs_task_subject": "no due date"}, associations=[]))
    assert caught.value.status == 400


@pytest.mark.parametrize("type_id", [203, 999, 3])
def test_wrong_association_type_is_400(hubspot_api, type_id) -> None:
    contact = _contact(hubspot_api)
    with pytest.raises(TaskApiException) as caught:
        hubspot_api.crm.objects.tasks.basic_api.create(SimplePublicObjectInputForCreate(
            properties=TASK, associations=_to_contact(contact.id, type_id)))
    assert caught.value.status == 400


def test_unknown_target_is_400_and_unknown_owner_is_an_invalid_option(hubspot_api) -> None:
    with pytest.raises(TaskApiException) as target:
        hubspot_api.crm.objects.tasks.basic_api.create(SimplePublicObjectInputForCreate(
            properties=TASK, associations=_to_contact("987654321")))
    with pytest.raises(TaskApiException) as owner:
        hubspot_api.crm.objects.tasks.basic_api.create(SimplePublicObjectInputForCreate(
            properties={**TASK, "hubspot_owner_id": "1"}, associations=[]))
    assert target.value.status == owner.value.status == 400
    assert "INVALID_OPTION" in owner.value.body


def test_batch_create_tasks_201_and_epoch_ms_due_dates(hubspot_api) -> None:
    ids = [c.id for c in hubspot_api.crm.contacts.basic_api.get_page(limit=3).results]
    answer = hubspot_api.crm.objects.tasks.batch_api.create(
        BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
            {"properties": {**TASK, "hs_timestamp": "1796115600000"},
             "associations": _to_contact(i)} for i in ids
        ]))
    assert type(answer).__name__ == "BatchResponseSimplePublicObject"
    assert {r.properties["hs_timestamp"] for r in answer.results} == {"2026-12-01T09:00:00.000Z"}


def test_v4_put_links_after_creation(hubspot_api) -> None:
    contact = _contact(hubspot_api)
    task = hubspot_api.crm.objects.tasks.basic_api.create(
        SimplePublicObjectInputForCreate(properties=TASK, associations=[]))
    labelled = hubspot_api.crm.associations.v4.basic_api.create(
        "tasks", task.id, "contacts", contact.id,
        [AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=204)])
    assert (labelled.from_object_type_id, labelled.to_object_type_id) == ("0-27", "0-1")

    other = hubspot_api.crm.objects.tasks.basic_api.create(
        SimplePublicObjectInputForCreate(properties=TASK, associations=[]))
    default = hubspot_api.crm.associations.v4.basic_api.create_default(
        "tasks", other.id, "contacts", contact.id)
    assert default.results[0].association_spec.association_type_id == 204
    linked = hubspot_api.crm.associations.v4.basic_api.get_page("contacts", contact.id, "tasks")
    assert sorted(str(r.to_object_id) for r in linked.results) == sorted([task.id, other.id])


def test_v4_put_with_a_wrong_type_is_400(hubspot_http) -> None:
    status, _, _ = hubspot_http(
        "PUT", "/crm/v4/objects/tasks/101/associations/contacts/102",
        [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 203}])
    assert status == 400


def test_v4_ids_are_json_numbers(hubspot_http) -> None:
    _, deals, _ = hubspot_http("GET", "/crm/v3/objects/deals?limit=1&associations=contacts")
    deal = deals["results"][0]
    contact_id = deal["associations"]["contacts"]["results"][0]["id"]
    _, body, _ = hubspot_http("GET", f"/crm/v4/objects/contacts/{contact_id}/associations/deals")
    assert int(deal["id"]) in [r["toObjectId"] for r in body["results"]]
    assert body["results"][0]["associationTypes"][0]["typeId"] == 4


def test_owners_with_and_without_trailing_slash(hubspot_api, hubspot_http, hubspot_org) -> None:
    owners = hubspot_api.crm.owners.get_all()
    assert len(owners) == len(hubspot_org.owners)
    assert all(o.id.isdigit() for o in owners)
    _, body, _ = hubspot_http("GET", "/crm/v3/owners?limit=2")
    assert [o["id"] for o in body["results"]] == [o.id for o in owners[:2]]
    one = hubspot_api.crm.owners.owners_api.get_by_id(int(owners[0].id))
    assert one.email == owners[0].email
    by_user = hubspot_api.crm.owners.owners_api.get_by_id(owners[0].user_id, id_property="userId")
    assert by_user.id == owners[0].id
    _, by_email, _ = hubspot_http("GET", f"/crm/v3/owners/?email={owners[1].email}")
    assert [o["id"] for o in by_email["results"]] == [owners[1].id]


def test_task_search_by_associated_contact(hubspot_api) -> None:
    from hubspot.crm.objects.tasks import PublicObjectSearchRequest

    first, second = [c.id for c in hubspot_api.crm.contacts.basic_api.get_page(limit=2).results]
    mine = hubspot_api.crm.objects.tasks.basic_api.create(
        SimplePublicObjectInputForCreate(properties=TASK, associations=_to_contact(first)))
    hubspot_api.crm.objects.tasks.basic_api.create(
        SimplePublicObjectInputForCreate(properties=TASK, associations=_to_contact(second)))
    found = hubspot_api.crm.objects.tasks.search_api.do_search(PublicObjectSearchRequest(
        filter_groups=[{"filters": [
            {"propertyName": "associations.contact", "operator": "EQ", "value": first},
            {"propertyName": "hs_task_status", "operator": "NEQ", "value": "COMPLETED"}]}],
        properties=["hs_task_subject"], limit=10))
    assert [t.id for t in found.results] == [mine.id]
