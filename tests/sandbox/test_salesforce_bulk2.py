"""Bulk API 2.0 query and ingest jobs as ``sf.bulk2`` drives them (§2.10); always ``wait=0``."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceOperationError


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_query_job_pages_with_locators(sf: Any, sf_server: Any) -> None:
    expected = sf.query("SELECT COUNT() FROM Lead")["totalSize"]
    pages = list(sf.bulk2.Lead.query(
        "SELECT Id, Email, Owner.Name, CreatedDate, Trial_Signup__c FROM Lead ORDER BY Id",
        max_records=100, wait=0,
    ))
    assert len(pages) == -(-expected // 100)
    rows = [row for page in pages for row in _rows(page)]
    assert len(rows) == expected
    assert list(rows[0]) == ["Id", "Email", "Owner.Name", "CreatedDate", "Trial_Signup__c"]
    assert rows[0]["CreatedDate"].endswith("Z") and rows[0]["Trial_Signup__c"] in ("true", "false")
    assert [r["Id"] for r in rows] == sorted(r["Id"] for r in rows)
    assert pages[0].startswith('"Id","Email","Owner.Name"')
    counts = sf_server.call_counts()["by_endpoint"]
    assert counts["POST /services/data/v59.0/jobs/query"] == 1
    assert counts["GET /services/data/v59.0/jobs/query/{id}/results"] == len(pages)


def test_query_job_stays_in_progress_for_configured_polls(
    sf: Any, sf_http: Any, sf_server: Any
) -> None:
    sf_http("POST", "/_sandbox/config", {"bulk_polls": 2})
    pages = list(sf.bulk2.User.query("SELECT Id FROM User", wait=0))
    assert len(_rows(pages[0])) == 9
    assert sf_server.call_counts()["by_endpoint"]["GET /services/data/v59.0/jobs/query/{id}"] == 3


def test_results_before_completion_and_bad_soql(sf_http: Any) -> None:
    sf_http("POST", "/_sandbox/config", {"bulk_polls": 5})
    status, job, _ = sf_http("POST", "/services/data/v59.0/jobs/query", {
        "operation": "query", "query": "SELECT Id FROM Contact", "columnDelimiter": "COMMA",
        "lineEnding": "LF"})
    assert status == 200 and job["state"] == "UploadComplete" and job["id"].startswith("750")
    status, body, _ = sf_http("GET", f"/services/data/v59.0/jobs/query/{job['id']}/results")
    assert status == 400 and body[0]["errorCode"] == "JOB_NOT_COMPLETE"
    status, body, _ = sf_http("POST", "/services/data/v59.0/jobs/query", {
        "operation": "query", "query": "SELECT Nope FROM Contact"})
    assert status == 400 and body[0]["errorCode"] == "INVALID_FIELD"


def test_ingest_update_with_failures(sf: Any) -> None:
    ids = [r["Id"] for r in sf.query("SELECT Id FROM Contact ORDER BY Id LIMIT 3")["records"]]
    results = sf.bulk2.Contact.update(records=[
        {"Id": ids[0], "Title": "Bulk title", "LeadSource": ""},
        {"Id": ids[1], "Title": "#N/A", "LeadSource": "Web"},
        {"Id": "003BAD", "Title": "x", "LeadSource": "Web"},
    ], wait=0)
    assert results[0]["numberRecordsProcessed"] == 3 and results[0]["numberRecordsFailed"] == 1
    job_id = results[0]["job_id"]
    ok = _rows(sf.bulk2.Contact.get_successful_records(job_id))
    assert {r["sf__Id"] for r in ok} == {ids[0], ids[1]}
    assert {r["sf__Created"] for r in ok} == {"false"}
    failed = _rows(sf.bulk2.Contact.get_failed_records(job_id))
    assert failed[0]["sf__Error"].startswith("MALFORMED_ID:") and failed[0]["Title"] == "x"
    assert _rows(sf.bulk2.Contact.get_unprocessed_records(job_id)) == []
    soql = f"SELECT Id, Title, LeadSource FROM Contact WHERE Id IN ('{ids[0]}','{ids[1]}')"
    rows = {r["Id"]: r for r in sf.query(soql)["records"]}
    assert rows[ids[0]]["Title"] == "Bulk title"
    assert rows[ids[0]]["LeadSource"] is not None  # an empty cell leaves the value alone
    assert rows[ids[1]]["Title"] is None and rows[ids[1]]["LeadSource"] == "Web"


def test_ingest_insert_upsert_delete(sf: Any) -> None:
    sf.toolingexecute("sobjects/CustomField", method="POST", data={
        "FullName": "Contact.Ext_Key__c",
        "Metadata": {"label": "Ext", "type": "Text", "length": 20, "externalId": True}})
    inserted = sf.bulk2.Contact.insert(records=[{"LastName": "Bulk1", "Ext_Key__c": "e1"},
                                                {"LastName": "Bulk2", "Ext_Key__c": "e2"}], wait=0)
    assert inserted[0]["numberRecordsFailed"] == 0
    upserted = sf.bulk2.Contact.upsert(records=[{"Ext_Key__c": "e1", "LastName": "Bulk1b"},
                                                {"Ext_Key__c": "e3", "LastName": "Bulk3"}],
                                       external_id_field="Ext_Key__c", wait=0)
    successes = _rows(sf.bulk2.Contact.get_successful_records(upserted[0]["job_id"]))
    created = {r["sf__Created"] for r in successes}
    assert created == {"true", "false"}
    keyed = sf.query("SELECT LastName FROM Contact WHERE Ext_Key__c != null")["records"]
    names = sorted(r["LastName"] for r in keyed)
    assert names == ["Bulk1b", "Bulk2", "Bulk3"]
    victim = sf.query("SELECT Id FROM Contact WHERE Ext_Key__c = 'e2'")["records"][0]["Id"]
    deleted = sf.bulk2.Contact.delete(records=[{"Id": victim}], wait=0)
    assert deleted[0]["numberRecordsFailed"] == 0
    assert sf.query("SELECT COUNT() FROM Contact WHERE Ext_Key__c = 'e2'")["totalSize"] == 0


def test_failed_ingest_job_raises(sf: Any) -> None:
    with pytest.raises(SalesforceOperationError):
        sf.bulk2.Contact.update(records=[{"Id": "0035g0000000001AAA", "NoSuchField": "x"}], wait=0)
