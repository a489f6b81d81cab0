"""HubSpot emulator: batch read/create/update/upsert/archive through the real client."""

from __future__ import annotations

import pytest
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchInputSimplePublicObjectId,
    BatchReadInputSimplePublicObjectId,
)

from crmsync.sandbox.faults import FaultPlan, FaultRule


def _ids(api, n):
    return [c.id for c in api.crm.contacts.basic_api.get_page(limit=n).results]


def test_batch_read_200_and_unordered(hubspot_api) -> None:
    ids = _ids(hubspot_api, 20)
    answer = hubspot_api.crm.contacts.batch_api.read(
        BatchReadInputSimplePublicObjectId(inputs=[{"id": i} for i in ids],
                                           properties=["email"], properties_with_history=[])
    )
    assert type(answer).__name__ == "BatchResponseSimplePublicObject"  # a 200
    assert answer.status == "COMPLETE"
    got = [r.id for r in answer.results]
    assert sorted(got) == sorted(ids) and got != ids


def test_batch_read_by_email_with_missing_ids_is_207_with_one_combined_error(hubspot_api) -> None:
    emails = [c.properties["email"] for c in
              hubspot_api.crm.contacts.basic_api.get_page(limit=3).results]
    answer = hubspot_api.crm.contacts.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            id_property="email", properties=["email"], properties_with_history=[],
            inputs=[{"id": e} for e in [*emails, "ghost@example.com", "nobody@example.com"]],
        )
    )
    assert type(answer).__name__ == "BatchResponseSimplePublicObjectWithErrors"
    assert {r.properties["email"] for r in answer.results} == set(emails)
    assert answer.num_errors == 1
    assert answer.errors[0].category == "OBJECT_NOT_FOUND"
    assert sorted(answer.errors[0].context["ids"]) == ["ghost@example.com", "nobody@example.com"]


def test_batch_update_reports_missing_ids_together_and_updates_the_rest(hubspot_api) -> None:
    ids = _ids(hubspot_api, 3)
    answer = hubspot_api.crm.contacts.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[{"id": i, "properties": {"jobtitle": "VP"}} for i in [*ids, "998", "999"]]
        )
    )
    assert sorted(r.id for r in answer.results) == sorted(ids)
    assert all(r.properties["jobtitle"] == "VP" for r in answer.results)
    assert "email" not in answer.results[0].properties  # only what was written (+ system)
    assert answer.errors[0].context["ids"] == ["998", "999"]


def test_batch_update_rejected_record_is_a_207_error_while_others_succeed(
    hubspot_api, hubspot_server
) -> None:
    ids = _ids(hubspot_api, 4)
    hubspot_server.install_faults(FaultPlan(rules=[
        FaultRule(method="POST", path="/crm/v3/objects/contacts/batch/update",
                  kind="reject_record", ids=frozenset({ids[1]}), times=None)
    ]))
    answer = hubspot_api.crm.contacts.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[{"id": i, "properties": {"hs_lead_status": "OPEN"}} for i in ids]
        )
    )
    assert sorted(r.id for r in answer.results) == sorted(ids[:1] + ids[2:])
    assert answer.errors[0].category == "VALIDATION_ERROR"
    assert answer.errors[0].context["ids"] == [ids[1]]


def test_validation_problems_fail_the_whole_batch(hubspot_api, hubspot_emulator) -> None:
    ids = _ids(hubspot_api, 2)
    before = {r["id"]: r["updatedAt"] for r in hubspot_emulator.records("contacts")}
    with pytest.raises(ApiException) as caught:
        hubspot_api.crm.contacts.batch_api.update(
            BatchInputSimplePublicObjectBatchInput(inputs=[
                {"id": ids[0], "properties": {"jobtitle": "ok"}},
                {"id": ids[1], "properties": {"hs_lead_status": "MAYBE"}},
            ])
        )
    assert caught.value.status == 400
    assert "INVALID_OPTION" in caught.value.body
    after = {r["id"]: r["updatedAt"] for r in hubspot_emulator.records("contacts")}
    assert after == before


def test_more_than_100_inputs_is_a_400(hubspot_api) -> None:
    with pytest.raises(ApiException) as caught:
        hubspot_api.crm.contacts.batch_api.read(
            BatchReadInputSimplePublicObjectId(inputs=[{"id": str(i)} for i in range(101)],
                                               properties=[], properties_with_history=[])
        )
    assert caught.value.status == 400


def test_batch_create_201_and_existing_email_conflicts_for_the_whole_batch(hubspot_api) -> None:
    created = hubspot_api.crm.contacts.batch_api.create(
        BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
            {"properties": {"email": f"batch{i}@example.com"}, "associations": []}
            for i in range(3)
        ])
    )
    assert created is not None and len(created.results) == 3
    with pytest.raises(ApiException) as caught:
        hubspot_api.crm.contacts.batch_api.create(
            BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
                {"properties": {"email": "fresh@example.com"}, "associations": []},
                {"properties": {"email": "batch1@example.com"}, "associations": []},
            ])
        )
    assert caught.value.status == 409
    with pytest.raises(Exception, match="404"):
        hubspot_api.crm.contacts.basic_api.get_by_id("fresh@example.com", id_property="email")


def test_batch_upsert_by_email_creates_and_updates(hubspot_api) -> None:
    existing = hubspot_api.crm.contacts.basic_api.get_page(limit=1, properties=["email"]).results[0]
    answer = hubspot_api.crm.contacts.batch_api.upsert(
        BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
            {"idProperty": "email", "id": existing.properties["email"],
             "properties": {"jobtitle": "Upserted"}},
            {"idProperty": "email", "id": "upsert-new@example.com",
             "properties": {"firstname": "Una"}},
        ])
    )
    flags = {r.id: r.new for r in answer.results}
    assert flags[existing.id] is False
    assert sorted(flags.values()) == [False, True]


def test_update_and_upsert_by_a_non_unique_property_are_rejected(hubspot_http) -> None:
    status, body, _ = hubspot_http("POST", "/crm/v3/objects/contacts/batch/upsert", {
        "inputs": [{"idProperty": "firstname", "id": "Ana", "properties": {"jobtitle": "x"}}]
    })
    assert status == 400 and "non-unique" in body["message"]


def test_batch_archive_is_204(hubspot_api, hubspot_http) -> None:
    ids = _ids(hubspot_api, 2)
    assert hubspot_api.crm.contacts.batch_api.archive(
        BatchInputSimplePublicObjectId(inputs=[{"id": i} for i in ids])
    ) is None
    status, body, _ = hubspot_http("GET", f"/crm/v3/objects/contacts/{ids[0]}")
    assert status == 404
