"""sObject Collections through ``sf.restful`` (CRM_WIRE_CONTRACT.md §2.7, §2.8)."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from crmsync.sandbox.faults import FaultPlan, FaultRule


def _contacts(sf: Any, n: int) -> list[str]:
    rows = sf.query(f"SELECT Id FROM Contact ORDER BY Id LIMIT {n}")["records"]
    return [r["Id"] for r in rows]


def test_update_partial_failure_is_http_200_in_input_order(sf: Any) -> None:
    good, other = _contacts(sf, 2)
    lead = sf.query("SELECT Id FROM Lead LIMIT 1")["records"][0]["Id"]
    results = sf.restful("composite/sobjects", method="PATCH", json={
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Contact"}, "id": good, "Title": "VP Sales"},
            {"attributes": {"type": "Lead"}, "id": "00Qxx00000000BAD", "Title": "x"},
            {"attributes": {"type": "Lead"}, "id": lead, "Status": "Not A Status"},
            {"attributes": {"type": "Contact"}, "id": other[:15], "Title": "CTO"},
        ],
    })
    assert [r["success"] for r in results] == [True, False, False, True]
    assert results[0] == {"id": good, "success": True, "errors": []}
    assert results[1]["errors"][0]["statusCode"] == "MALFORMED_ID"
    assert results[1]["errors"][0]["fields"] == ["Id"]
    assert results[2]["errors"] == [{
        "statusCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "message": "Lead Status: bad value for restricted picklist field: Not A Status",
        "fields": ["Status"],
    }]
    assert results[3]["id"] == other  # 15-character ids in, 18 out
    soql = f"SELECT Id, Title FROM Contact WHERE Id IN ('{good}', '{other}')"
    titles = {r["Id"]: r["Title"] for r in sf.query(soql)["records"]}
    assert titles == {good: "VP Sales", other: "CTO"}


def test_all_or_none_rolls_everything_back(sf: Any) -> None:
    good, _ = _contacts(sf, 2)
    before = sf.Contact.get(good)
    count_before = sf.query("SELECT COUNT() FROM Task")["totalSize"]
    results = sf.restful("composite/sobjects", method="POST", json={
        "allOrNone": True,
        "records": [
            {"attributes": {"type": "Task"}, "WhoId": good, "Subject": "Call",
             "Status": "Not Started"},
            {"attributes": {"type": "Task"}, "WhoId": good, "Subject": "Call",
             "Priority": "Urgent"},
        ],
    })
    assert results[0]["success"] is False
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert sf.query("SELECT COUNT() FROM Task")["totalSize"] == count_before
    assert sf.Contact.get(good)["SystemModstamp"] == before["SystemModstamp"]


def test_create_tasks_with_defaults_and_lead_rule(sf: Any) -> None:
    contact = _contacts(sf, 1)[0]
    account = sf.Contact.get(contact)["AccountId"]
    lead = sf.query("SELECT Id FROM Lead LIMIT 1")["records"][0]["Id"]
    reps = sf.query("SELECT Id FROM User WHERE IsActive = true AND Alias LIKE 'rep%' LIMIT 1")
    owner = reps["records"][0]["Id"]
    results = sf.restful("composite/sobjects", method="POST", json={
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Task"}, "WhoId": contact, "WhatId": account,
             "Subject": "Follow up", "ActivityDate": "2026-12-01", "Priority": "High",
             "OwnerId": owner,
             "Description": "Pricing page x3"},
            {"attributes": {"type": "Task"}, "WhoId": lead, "WhatId": account, "Subject": "Call"},
            {"attributes": {"type": "Task"}, "WhoId": lead, "Subject": "Call",
             "Status": "Completed"},
        ],
    })
    assert [r["success"] for r in results] == [True, False, True]
    assert results[1]["errors"][0]["statusCode"] == "FIELD_INTEGRITY_EXCEPTION"
    assert results[1]["errors"][0]["fields"] == ["WhatId"]
    task = sf.Task.get(results[0]["id"])
    assert task["Status"] == "Not Started" and task["IsClosed"] is False
    assert task["IsHighPriority"] is True and task["ActivityDate"] == "2026-12-01"
    assert task["OwnerId"] == owner
    done = sf.Task.get(results[2]["id"])
    assert done["IsClosed"] is True and done["Priority"] == "Normal"
    assert done["OwnerId"].startswith("005")  # defaults to the API user


def test_more_than_200_records_fails_the_whole_request(sf: Any) -> None:
    records = [{"attributes": {"type": "Contact"}, "LastName": f"N{i}"} for i in range(201)]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.restful("composite/sobjects", method="POST", json={"records": records})
    assert caught.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


@pytest.mark.parametrize(
    ("record", "code"),
    [
        ({"LastName": "x"}, "INVALID_TYPE"),  # no attributes
        ({"attributes": {"type": "Contact"}, "LastName": "x", "Nope__c": 1}, "INVALID_FIELD"),
        ({"attributes": {"type": "Contact"}, "LastName": "x", "Page_Views__c": "lots"},
         "JSON_PARSER_ERROR"),
    ],
)
def test_malformed_requests_are_400_lists(sf: Any, record: dict[str, Any], code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.restful("composite/sobjects", method="POST", json={"records": [record]})
    assert caught.value.content[0]["errorCode"] == code


def test_per_record_validation_errors(sf: Any) -> None:
    results = sf.restful("composite/sobjects", method="POST", json={"records": [
        {"attributes": {"type": "Contact"}, "FirstName": "No last name"},
        {"attributes": {"type": "Contact"}, "LastName": "x" * 81},
        {"attributes": {"type": "Contact"}, "LastName": "ok",
         "SystemModstamp": "2020-01-01T00:00:00Z"},
        {"attributes": {"type": "Contact"}, "LastName": "ok", "AccountId": "0035g0000000001AAA"},
    ]})
    codes = [r["errors"][0]["statusCode"] for r in results]
    assert codes == [
        "REQUIRED_FIELD_MISSING", "STRING_TOO_LONG", "INVALID_FIELD_FOR_INSERT_UPDATE",
        "FIELD_INTEGRITY_EXCEPTION",
    ]
    assert results[0]["errors"][0]["fields"] == ["LastName"]


def test_retrieve_and_delete(sf: Any) -> None:
    a, b = _contacts(sf, 2)
    got = sf.restful("composite/sobjects/Contact",
                     params={"ids": f"{a},{b},0035g0000099999AAA", "fields": "Id,LastName"})
    assert [g and g["Id"] for g in got] == [a, b, None]
    assert list(got[0]) == ["attributes", "Id", "LastName"]
    results = sf.restful("composite/sobjects", method="DELETE",
                         params={"ids": f"{a},bogus", "allOrNone": "false"})
    assert results[0] == {"id": a, "success": True, "errors": []}
    assert results[1]["success"] is False
    assert sf.query(f"SELECT COUNT() FROM Contact WHERE Id = '{a}'")["totalSize"] == 0


def test_reject_record_fault_gives_unable_to_lock_row(sf: Any, sf_server: Any) -> None:
    a, b = _contacts(sf, 2)
    sf_server.install_faults(FaultPlan(rules=[
        FaultRule(method="PATCH", path="/services/data/", kind="reject_record", ids=frozenset({b}))
    ]))
    results = sf.restful("composite/sobjects", method="PATCH", json={"records": [
        {"attributes": {"type": "Contact"}, "id": a, "Title": "A"},
        {"attributes": {"type": "Contact"}, "id": b, "Title": "B"},
    ]})
    assert results[0]["success"] is True
    assert results[1]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    # The rule fired once; a retry of the same record succeeds.
    again = sf.restful("composite/sobjects", method="PATCH", json={"records": [
        {"attributes": {"type": "Contact"}, "id": b, "Title": "B"},
    ]})
    assert again[0]["success"] is True


def test_reject_record_by_field(sf: Any, sf_server: Any) -> None:
    a, b = _contacts(sf, 2)
    sf_server.install_faults({"rules": [{"method": "*", "path": "/services/data/v59.0/composite/",
                                         "kind": "reject_record", "field": "Title", "times": None,
                                         "error_code": "FIELD_CUSTOM_VALIDATION_EXCEPTION"}]})
    results = sf.restful("composite/sobjects", method="PATCH", json={"records": [
        {"attributes": {"type": "Contact"}, "id": a, "Title": "A"},
        {"attributes": {"type": "Contact"}, "id": b, "LastName": "B"},
    ]})
    assert results[0]["errors"][0]["statusCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert results[0]["errors"][0]["fields"] == ["Title"]
    assert results[1]["success"] is True


def test_writes_bump_system_modstamp_to_the_clock(sf: Any, sf_clock: Any) -> None:
    a = _contacts(sf, 1)[0]
    sf_clock.advance(3600)
    sf.restful("composite/sobjects", method="PATCH", json={"records": [
        {"attributes": {"type": "Contact"}, "id": a, "Title": "Later"}]})
    record = sf.Contact.get(a)
    assert record["SystemModstamp"] == "2026-11-23T02:00:00.000+0000"
    assert record["LastModifiedDate"] == record["SystemModstamp"]


def test_stamp_resolution_knob_makes_ties(sf: Any, sf_http: Any, sf_clock: Any) -> None:
    sf_http("POST", "/_sandbox/config", {"stamp_resolution_ms": 1000})
    a, b = _contacts(sf, 2)
    sf_clock.advance(3600.2)
    sf.Contact.update(a, {"Title": "first"})
    sf_clock.advance(0.5)
    sf.Contact.update(b, {"Title": "second"})
    stamps = {sf.Contact.get(i)["SystemModstamp"] for i in (a, b)}
    assert stamps == {"2026-11-23T02:00:00.000+0000"}


def test_update_of_a_deleted_or_purged_record_fails_per_record(sf: Any) -> None:
    # What Salesforce answers in a Collections update (HTTP 200, per-record): a record in the
    # recycle bin is ENTITY_IS_DELETED; an id of the right type that no longer exists (purged
    # from the recycle bin) is INVALID_CROSS_REFERENCE_KEY; a wrong-type id is MALFORMED_ID.
    contact = _contacts(sf, 1)[0]
    task_id = sf.Task.create({"WhoId": contact, "Subject": "Call"})["id"]
    sf.Task.delete(task_id)
    purged = "00T5g0000099999AAA"
    results = sf.restful("composite/sobjects", method="PATCH", json={
        "allOrNone": False,
        "records": [{"attributes": {"type": "Task"}, "id": rid, "Status": "Completed"}
                    for rid in (task_id, purged, contact)],
    })
    codes = [(r["success"], r["errors"][0]["statusCode"], r["errors"][0]["fields"])
             for r in results]
    assert codes[:2] == [(False, "ENTITY_IS_DELETED", []),
                         (False, "INVALID_CROSS_REFERENCE_KEY", [])]
    assert codes[2][:2] == (False, "MALFORMED_ID")
