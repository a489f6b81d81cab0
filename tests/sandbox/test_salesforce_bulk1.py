"""Bulk API 1.0 (issue 10 item 4): JSON jobs through simple-salesforce's ``sf.bulk``, and XML
jobs with CSV batches over plain HTTP as jsforce sends them (``X-SFDC-Session``)."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import requests

NS = "{http://www.force.com/2009/06/asyncapi/dataload}"


def test_json_insert_update_query_delete_through_sf_bulk(sf: Any) -> None:
    rows = [{"LastName": f"Bulk{i}", "Company": "Bulk One Ltd"} for i in range(5)]
    rows.append({"FirstName": "No last name"})  # refused: LastName is required
    inserted = sf.bulk.Lead.insert(rows, batch_size=10)
    assert [r["success"] for r in inserted] == [True] * 5 + [False]
    assert all(r["created"] for r in inserted[:5]) and inserted[5]["id"] is None
    assert inserted[5]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    ids = [r["id"] for r in inserted[:5]]

    updated = sf.bulk.Lead.update([{"Id": i, "Title": "Bulk CTO"} for i in ids])
    assert all(r["success"] and not r["created"] for r in updated)

    found = sf.bulk.Lead.query("SELECT Id, LastName, Title FROM Lead WHERE Company = "
                               "'Bulk One Ltd' ORDER BY LastName")
    assert [r["LastName"] for r in found] == [f"Bulk{i}" for i in range(5)]
    assert {r["Title"] for r in found} == {"Bulk CTO"}
    assert found[0]["attributes"]["type"] == "Lead"

    deleted = sf.bulk.Lead.delete([{"Id": i} for i in ids[:2]])
    assert all(r["success"] for r in deleted)
    left = sf.query("SELECT Id FROM Lead WHERE Company = 'Bulk One Ltd'")["records"]
    assert sorted(r["Id"] for r in left) == sorted(ids[2:])


def _xml(text: str, tag: str) -> str:
    match = re.search(f"<{tag}>([^<]*)</{tag}>", text)
    assert match, text
    return match.group(1)


def test_xml_job_with_csv_batches_as_jsforce_sends_them(sf_server: Any) -> None:
    base = f"{sf_server.base_url}/services/async/59.0"
    session = requests.Session()
    session.headers["X-SFDC-Session"] = sf_server.token
    xml = {"Content-Type": "application/xml; charset=UTF-8"}
    job = session.post(f"{base}/job", headers=xml, data=(
        '<?xml version="1.0" encoding="UTF-8"?><jobInfo xmlns="http://www.force.com/2009/06/'
        "asyncapi/dataload\"><operation>insert</operation><object>Contact</object>"
        "<contentType>CSV</contentType></jobInfo>"))
    assert job.status_code == 201 and job.headers["Content-Type"].startswith("application/xml")
    job_id = _xml(job.text, "id")
    assert _xml(job.text, "state") == "Open" and _xml(job.text, "contentType") == "CSV"

    data = 'LastName,Email\n"O\'Brien, Jr.",obrien@example.com\nNi Bhriain,\n'
    batch = session.post(f"{base}/job/{job_id}/batch", data=data.encode(),
                         headers={"Content-Type": "text/csv; charset=UTF-8"})
    assert batch.status_code == 201
    batch_id = _xml(batch.text, "id")
    info = session.get(f"{base}/job/{job_id}/batch/{batch_id}")
    assert _xml(info.text, "state") == "Completed"
    assert _xml(info.text, "numberRecordsProcessed") == "2"

    results = session.get(f"{base}/job/{job_id}/batch/{batch_id}/result")
    table = list(csv.reader(io.StringIO(results.text)))
    assert table[0] == ["Id", "Success", "Created", "Error"]
    assert [row[1:3] for row in table[1:]] == [["true", "true"], ["true", "true"]]

    closed = session.post(f"{base}/job/{job_id}", headers=xml, data=(
        f'<jobInfo xmlns="{NS[1:-1]}"><state>Closed</state></jobInfo>'))
    assert _xml(closed.text, "state") == "Closed"
    assert _xml(closed.text, "numberRecordsProcessed") == "2"

    query_job = session.post(f"{base}/job", headers=xml, data=(
        f'<jobInfo xmlns="{NS[1:-1]}"><operation>query</operation><object>Contact</object>'
        "<contentType>CSV</contentType></jobInfo>"))
    qid = _xml(query_job.text, "id")
    qbatch = session.post(f"{base}/job/{qid}/batch", headers={"Content-Type": "text/csv"},
                          data="SELECT Id, LastName, Email FROM Contact WHERE LastName LIKE "
                               "'O%Brien, Jr.'")
    qbatch_id = _xml(qbatch.text, "id")
    listing = session.get(f"{base}/job/{qid}/batch/{qbatch_id}/result")
    result_id = _xml(listing.text, "result")
    rows = list(csv.reader(io.StringIO(
        session.get(f"{base}/job/{qid}/batch/{qbatch_id}/result/{result_id}").text)))
    assert rows[0] == ["Id", "LastName", "Email"]
    assert rows[1][1:] == ["O'Brien, Jr.", "obrien@example.com"]
    assert rows[1][0] == table[1][0]


def test_bad_session_and_unknown_job_are_bulk_errors(sf_server: Any) -> None:
    base = f"{sf_server.base_url}/services/async/59.0"
    refused = requests.post(f"{base}/job", headers={"X-SFDC-Session": "nope",
                                                    "Content-Type": "application/xml"},
                            data="<jobInfo/>", timeout=10)
    assert refused.status_code == 400
    assert _xml(refused.text, "exceptionCode") == "InvalidSessionId"
    missing = requests.get(f"{base}/job/750000000000000AAA", timeout=10,
                           headers={"X-SFDC-Session": sf_server.token,
                                    "Content-Type": "application/json"})
    assert missing.status_code == 400 and missing.json()["exceptionCode"] == "InvalidJob"
