"""Versions, describe, single-record calls, replication and limits (§2.1, 2.5, 2.6, 2.9)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from simple_salesforce.exceptions import (
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from crmsync.sandbox.salesforce.ids import checksum

REQUIRED_OBJECTS = {"User", "Account", "Lead", "Contact", "Opportunity", "Task", "Organization"}


def test_versions_list_needs_no_auth_and_is_not_counted(sf_http: Any, sf_server: Any) -> None:
    status, body, headers = sf_http("GET", "/services/data/", token=None)
    assert status == 200
    assert {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"} in body
    assert "Sforce-Limit-Info" not in headers
    assert sf_http("GET", "/services/data/v99.0/limits/")[0] == 404


def test_bad_token_is_401_list(sf_http: Any) -> None:
    status, body, _ = sf_http("GET", "/services/data/v59.0/limits", token="nope")
    assert status == 401
    assert body == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_ids_are_18_characters_with_valid_checksums(sf: Any) -> None:
    for obj, prefix in (("Contact", "003"), ("Lead", "00Q"), ("User", "005"), ("Account", "001"),
                        ("Task", "00T"), ("Opportunity", "006"), ("Organization", "00D")):
        record_id = sf.query(f"SELECT Id FROM {obj} LIMIT 1")["records"][0]["Id"]
        assert len(record_id) == 18 and record_id.startswith(prefix)
        assert checksum(record_id[:15]) == record_id[15:]


def test_describe_global_and_object(sf: Any) -> None:
    described = sf.describe()
    assert described["maxBatchSize"] == 200 and described["encoding"] == "UTF-8"
    assert {o["name"] for o in described["sobjects"]} >= REQUIRED_OBJECTS
    contact = sf.Contact.describe()
    fields = {f["name"]: f for f in contact["fields"]}
    assert contact["keyPrefix"] == "003" and contact["name"] == "Contact"
    for key in ("label", "labelPlural", "custom", "createable", "updateable", "queryable", "urls",
                "childRelationships", "recordTypeInfos"):
        assert key in contact
    assert fields["Budget_Confirmed__c"]["type"] == "boolean"
    assert fields["Budget_Confirmed__c"]["custom"] is True
    assert fields["Page_Views__c"]["type"] == "double"
    assert fields["AccountId"]["referenceTo"] == ["Account"]
    assert fields["AccountId"]["relationshipName"] == "Account"
    task = {f["name"]: f for f in sf.Task.describe()["fields"]}
    assert task["WhoId"]["referenceTo"] == ["Contact", "Lead"]
    statuses = [p["value"] for p in task["Status"]["picklistValues"]]
    assert statuses[:2] == ["Not Started", "In Progress"]
    assert task["Status"]["restrictedPicklist"] is True
    opp = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}
    assert {"Loss_Reason__c", "Competitor__c", "StageName", "IsWon", "IsClosed"} <= set(opp)
    short = sf.restful("sobjects/Lead/")
    assert short["objectDescribe"]["keyPrefix"] == "00Q" and short["recentItems"] == []


def test_seeded_fields_are_populated(sf: Any) -> None:
    leads = sf.query_all(
        "SELECT Company, Country, Status, IsConverted, Budget_Confirmed__c, Decision_Maker__c, "
        "LastActivityDate, Last_Contacted_At__c FROM Lead"
    )["records"]
    assert all(r["Company"] and r["IsConverted"] is False for r in leads)
    assert all(r["Budget_Confirmed__c"] in (True, False) for r in leads)  # never null
    seeded = {"Open - Not Contacted", "Working - Contacted", "Closed - Not Converted"}
    assert {r["Status"] for r in leads} <= seeded
    assert any(r["Country"] and len(r["Country"]) == 2 for r in leads)
    lost = sf.query_all(
        "SELECT Loss_Reason__c, IsClosed, IsWon, Contact.Email FROM Opportunity "
        "WHERE StageName = 'Closed Lost'"
    )
    assert lost["totalSize"] > 0
    assert all(r["IsClosed"] and not r["IsWon"] for r in lost["records"])
    assert any(r["Loss_Reason__c"] for r in lost["records"])


def test_single_record_crud(sf: Any) -> None:
    created = sf.Lead.create({"LastName": "Ng", "Company": "Acme", "Email": "ng@acme.example"})
    assert created == {"id": created["id"], "success": True, "errors": []}
    lead = sf.Lead.get(created["id"])
    assert lead["Status"] == "Open - Not Contacted" and lead["Name"] == "Ng"
    assert lead["attributes"]["type"] == "Lead"
    assert sf.Lead.update(created["id"], {"FirstName": "Ada"}) == 204
    assert sf.Lead.get(created["id"])["Name"] == "Ada Ng"
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.update(created["id"], {"Unknown__c": 1})
    assert caught.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create({"LastName": "NoCompany"})
    assert caught.value.content[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert sf.Lead.delete(created["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Lead.get(created["id"])
    with pytest.raises(SalesforceResourceNotFound):
        sf.Lead.get("00Q5g0000099999AAA")


def test_updated_and_deleted_endpoints(sf: Any, sf_clock: Any) -> None:
    start = datetime.fromtimestamp(sf_clock.now, UTC)
    contact = sf.query("SELECT Id FROM Contact LIMIT 1")["records"][0]["Id"]
    sf_clock.advance(120)
    sf.Contact.update(contact, {"Title": "Changed"})
    victim = sf.Contact.create({"LastName": "Temp"})["id"]
    sf_clock.advance(60)
    sf.Contact.delete(victim)
    sf_clock.advance(120)
    end = datetime.fromtimestamp(sf_clock.now, UTC)
    updated = sf.Contact.updated(start, end)
    assert contact in updated["ids"] and victim not in updated["ids"]
    assert updated["latestDateCovered"].endswith(":00.000+0000")
    deleted = sf.Contact.deleted(start, end)
    assert [d["id"] for d in deleted["deletedRecords"]] == [victim]
    with pytest.raises(SalesforceMalformedRequest):
        sf.Contact.updated(start - timedelta(days=40), end)


def test_limit_header_and_limits_resource(sf: Any, sf_http: Any) -> None:
    sf.query("SELECT Id FROM User")
    used = sf.api_usage["api-usage"].used
    limits = sf.limits()
    assert limits["DailyApiRequests"] == {"Max": 15000, "Remaining": 15000 - used - 1}
    for key in ("DailyBulkV2QueryJobs", "DailyBulkV2QueryFileStorageMB", "DataStorageMB"):
        assert set(limits[key]) == {"Max", "Remaining"}
    status, _, headers = sf_http("GET", "/services/data/v59.0/limits")
    assert status == 200 and headers["Sforce-Limit-Info"].startswith("api-usage=")


def test_daily_limit_is_403_request_limit_exceeded(sf: Any, sf_http: Any, sf_clock: Any) -> None:
    sf_http("POST", "/_sandbox/config", {"daily_limit": 3, "api_usage": 0})
    for _ in range(3):
        sf.query("SELECT Id FROM User LIMIT 1")
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.query("SELECT Id FROM User LIMIT 1")
    assert caught.value.status == 403
    assert caught.value.content == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    sf_clock.advance(24 * 3600)  # a rolling 24-hour window
    assert sf.query("SELECT Id FROM User LIMIT 1")["totalSize"] == 1


def test_upsert_of_an_existing_record_before_v46_answers_204(sf: Any, sf_http: Any) -> None:
    sf.toolingexecute("sobjects/CustomField", method="POST", data={
        "FullName": "Contact.Ext_Key__c",
        "Metadata": {"label": "Ext Key", "type": "Text", "length": 64, "externalId": True,
                     "unique": False},
    })
    path = "/services/data/v45.0/sobjects/Contact/Ext_Key__c/old-1"
    assert sf_http("PATCH", path, {"LastName": "First"})[0] == 201
    status, body, _ = sf_http("PATCH", path, {"LastName": "Second"})
    assert (status, body) == (204, None)


def test_upsert_single_record_by_external_id(sf: Any) -> None:
    sf.toolingexecute("sobjects/CustomField", method="POST", data={
        "FullName": "Contact.Ext_Key__c",
        "Metadata": {"label": "Ext Key", "type": "Text", "length": 64, "externalId": True,
                     "unique": False},
    })
    created = sf.Contact.upsert("Ext_Key__c/k-1", {"LastName": "Upserted"}, raw_response=True)
    assert created.status_code == 201
    assert created.json() == {"id": created.json()["id"], "success": True, "errors": [],
                              "created": True}
    # Since v46.0 an update by upsert answers 200 with a body (204 and no body before).
    updated = sf.Contact.upsert("Ext_Key__c/k-1", {"LastName": "Again"}, raw_response=True)
    assert updated.status_code == 200
    assert updated.json() == {"id": created.json()["id"], "success": True, "errors": [],
                              "created": False}
    found = sf.Contact.get_by_custom_id("Ext_Key__c", "k-1")
    assert found["LastName"] == "Again" and found["Id"] == created.json()["id"]
    sf.restful("sobjects/Contact/" + sf.Contact.create({"LastName": "Dup"})["id"], method="PATCH",
               json={"Ext_Key__c": "k-1"})
    with pytest.raises(SalesforceMoreThanOneRecord):
        sf.Contact.upsert("Ext_Key__c/k-1", {"LastName": "Which?"})
