"""Salesforce Bulk API 2.0 ingest (``write_fields_bulk``) against the sandbox's Bulk 2.0 emulator.

Nothing is mocked: the real simple-salesforce talks HTTP to :class:`SalesforceEmulator`, whose
jobs apply the CSV to its records and whose ``reject_record`` faults fail single rows.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmsync.connectors.base import BulkWriter, RecordUpdate
from crmsync.connectors.hubspot import HubSpotConnector
from crmsync.connectors.salesforce import SalesforceAuth, SalesforceConnector
from crmsync.connectors.salesforce.bulk import BulkQuery, _lines, csv_records
from crmsync.errors import ConfigError, CrmRequestError
from crmsync.retry import RetryPolicy

pytestmark = pytest.mark.filterwarnings(
    "ignore:The 'initial' parameter is deprecated:DeprecationWarning")

LEAD, CONTACT = "salesforce:Lead", "salesforce:Contact"
JOBS = "/services/data/v59.0/jobs/ingest"


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def connector(
    salesforce_server: Any, salesforce_fieldmap: Any, sleeps: list[float]
) -> Iterator[SalesforceConnector]:
    made = SalesforceConnector(
        salesforce_fieldmap, policy=RetryPolicy(attempts=4, budget_s=600), sleep=sleeps.append,
        auth=SalesforceAuth.with_session(salesforce_server.base_url, salesforce_server.token))
    yield made
    made.close()


def _ids(connector: SalesforceConnector, stream: str, count: int) -> list[str]:
    return [c.id for page in connector.read(stream, None) for c in page.contacts][:count]


def _stored(admin: Any, obj: str, record_id: str) -> dict[str, Any]:
    status, body = admin("GET", f"/_sandbox/records/{obj}/{record_id}")
    assert status == 200
    return dict(body)


def _updates(obj: str, ids: list[str], reason: str = "ICP fit, trial") -> list[RecordUpdate]:
    return [RecordUpdate(i, obj, {"status": "prospect", "score": n, "reason": reason})
            for n, i in enumerate(ids)]


def test_the_salesforce_connector_says_it_writes_in_bulk(connector: SalesforceConnector,
                                                         hubspot_fieldmap: Any) -> None:
    assert connector.limits.bulk_write and isinstance(connector, BulkWriter)
    hubspot = HubSpotConnector(hubspot_fieldmap, token="pat-x", base_url="http://127.0.0.1:9")
    assert not hubspot.limits.bulk_write and not isinstance(hubspot, BulkWriter)


def test_one_job_per_object_with_per_record_failures(
    connector: SalesforceConnector, salesforce_server: Any, salesforce_admin: Any,
) -> None:
    leads = _ids(connector, LEAD, 150)
    contacts = _ids(connector, CONTACT, 60)
    # The first row the sandbox applies (the first Lead) fails on a field; one Contact on a lock.
    picklist, locked = leads[0], contacts[5]
    salesforce_server.install_faults({"rules": [
        {"kind": "reject_record", "ids": [locked], "error_code": "UNABLE_TO_LOCK_ROW"},
        {"kind": "reject_record", "field": "Crmsync_Status__c", "times": 1,
         "error_code": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"}]})
    updates = [*_updates("Lead", leads, "secret reason 1"),
               *_updates("Contact", contacts, "secret reason 2")]
    # The same record twice: merged into one row, the later value wins, one result each.
    updates.append(RecordUpdate(leads[1], "Lead", {"score": 99}))
    calls = connector.api_calls()
    results = connector.write_fields_bulk(updates)
    assert [r.record_id for r in results] == [u.record_id for u in updates]
    failed = [(r.record_id, r.error_code, r.retryable, r.message) for r in results if not r.ok]
    assert failed == [(picklist, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", False,
                       "fields: Crmsync_Status__c"),
                      (locked, "UNABLE_TO_LOCK_ROW", True, None)]
    assert not any("secret" in (r.message or "") for r in results)
    by_endpoint = salesforce_server.call_counts()["by_endpoint"]
    assert by_endpoint[f"POST {JOBS}"] == 2  # one job per object
    assert "PATCH /services/data/v59.0/composite/sobjects" not in by_endpoint
    # Per job: create, upload, close (the sandbox finishes on close), failed results.
    assert connector.api_calls() - calls == 8
    assert connector.api_calls() == int(salesforce_server.call_counts()["total"])
    first = _stored(salesforce_admin, "Lead", leads[1])
    assert (first["Crmsync_Status__c"], first["Crmsync_Score__c"]) == ("prospect", 99)
    last = _stored(salesforce_admin, "Contact", contacts[-1])
    assert (last["Crmsync_Score__c"], last["Crmsync_Reason__c"]) == (59, "secret reason 2")
    assert _stored(salesforce_admin, "Lead", picklist)["Crmsync_Status__c"] is None
    assert _stored(salesforce_admin, "Contact", locked)["Crmsync_Status__c"] is None


def test_none_clears_a_field_and_unset_fields_are_left_alone(
    connector: SalesforceConnector, salesforce_admin: Any,
) -> None:
    leads = _ids(connector, LEAD, 3)
    for lead in leads:
        assert salesforce_admin("PATCH", f"/_sandbox/records/Lead/{lead}",
                                {"Crmsync_Reason__c": "old", "Crmsync_Score__c": 5})[0] == 200
    results = connector.write_fields_bulk([
        RecordUpdate(leads[0], "Lead", {"reason": None}),
        RecordUpdate(leads[1], "Lead", {"score": 8}),
        RecordUpdate(leads[2], "Lead", {"reason": "a, \"quoted\"\nreason", "score": 0})])
    assert all(r.ok for r in results)
    rows = [_stored(salesforce_admin, "Lead", lead) for lead in leads]
    assert [(r["Crmsync_Reason__c"], r["Crmsync_Score__c"]) for r in rows] == [
        (None, 5), ("old", 8), ("a, \"quoted\"\nreason", 0)]


def test_a_slow_job_is_polled_with_growing_waits(
    connector: SalesforceConnector, salesforce_server: Any, salesforce_admin: Any,
    sleeps: list[float],
) -> None:
    assert salesforce_admin("POST", "/_sandbox/config", {"bulk_polls": 4})[0] == 200
    leads = _ids(connector, LEAD, 20)
    results = connector.write_fields_bulk(_updates("Lead", leads))
    assert all(r.ok for r in results)
    polls = salesforce_server.call_counts()["by_endpoint"][f"GET {JOBS}/{{id}}"]
    assert polls == 5  # four answers "InProgress", the fifth "JobComplete"
    assert len(sleeps) == polls and sleeps == sorted(sleeps) and sleeps[-1] > sleeps[0]
    assert _stored(salesforce_admin, "Lead", leads[-1])["Crmsync_Score__c"] == 19


def test_an_expired_session_during_a_job_logs_in_again(
    salesforce_server: Any, salesforce_fieldmap: Any, salesforce_login: dict[str, str],
    salesforce_admin: Any,
) -> None:
    """sf.bulk2 copies the session id once: crmsync's own job steps refresh it."""
    auth = SalesforceAuth.with_password(**salesforce_login,
                                        instance_url=salesforce_server.base_url)
    connector = SalesforceConnector(salesforce_fieldmap, auth=auth)
    leads = _ids(connector, LEAD, 30)
    salesforce_server.install_faults({"rules": [
        {"method": "PUT", "path": f"{JOBS}/", "kind": "session_expired", "times": 1}]})
    results = connector.write_fields_bulk(_updates("Lead", leads))
    assert all(r.ok for r in results)
    by_endpoint = salesforce_server.call_counts()["by_endpoint"]
    assert by_endpoint["POST /services/Soap/u/59.0"] == 2  # the first login and one more
    assert by_endpoint[f"PUT {JOBS}/{{id}}/batches"] == 2
    assert _stored(salesforce_admin, "Lead", leads[0])["Crmsync_Status__c"] == "prospect"
    connector.close()


def test_a_job_salesforce_fails_as_a_whole_is_a_request_error(
    salesforce_bare_server: Any, salesforce_fieldmap: Any, salesforce_admin: Any,
) -> None:
    """Without crmsync's fields (setup not run), the job fails on its CSV header."""
    connector = SalesforceConnector(salesforce_fieldmap, auth=SalesforceAuth.with_session(
        salesforce_bare_server.base_url, salesforce_bare_server.token))
    status, body = salesforce_admin("GET", "/_sandbox/records/Lead")
    assert status == 200
    leads = [r["Id"] for r in body["records"]][:5]
    with pytest.raises(CrmRequestError, match="Failed: InvalidBatch : Field name not found"):
        connector.write_fields_bulk(_updates("Lead", leads))
    connector.close()


def test_a_404_inside_a_job_is_the_job_missing_not_a_wrong_base_url(
    connector: SalesforceConnector, salesforce_server: Any,
) -> None:
    leads = _ids(connector, LEAD, 5)
    salesforce_server.install_faults({"rules": [
        {"method": "PUT", "path": f"{JOBS}/", "status": 404, "times": 1}]})
    with pytest.raises(CrmRequestError, match="HTTP 404") as caught:
        connector.write_fields_bulk(_updates("Lead", leads))
    assert not isinstance(caught.value, ConfigError)
    by_endpoint = salesforce_server.call_counts()["by_endpoint"]
    assert by_endpoint[f"PATCH {JOBS}/{{id}}"] == 1  # the unclosed job was aborted
    # A 404 for the jobs resource itself is the address being wrong.
    salesforce_server.install_faults({"rules": [
        {"method": "POST", "path": JOBS, "status": 404, "times": 1}]})
    with pytest.raises(ConfigError, match="base_url"):
        connector.write_fields_bulk(_updates("Lead", leads))


def test_bulk_threshold_routes_large_write_fields_calls_through_a_job(
    salesforce_server: Any, salesforce_fieldmap: Any,
) -> None:
    connector = SalesforceConnector(
        salesforce_fieldmap, bulk_threshold=50,
        auth=SalesforceAuth.with_session(salesforce_server.base_url, salesforce_server.token))
    leads = _ids(connector, LEAD, 60)
    contacts = _ids(connector, CONTACT, 10)
    results = connector.write_fields([*_updates("Lead", leads), *_updates("Contact", contacts)])
    assert all(r.ok for r in results) and len(results) == 70
    by_endpoint = salesforce_server.call_counts()["by_endpoint"]
    assert by_endpoint[f"POST {JOBS}"] == 1  # the 60 Leads
    assert by_endpoint["PATCH /services/data/v59.0/composite/sobjects"] == 1  # 10 Contacts
    connector.close()


# -- full reads through a Bulk 2.0 query -------------------------------------------------------


def _facts(pages: list[Any]) -> dict[str, Any]:
    return {c.id: (c.facts, c.outputs, c.modified_at, c.owner_id, c.object_type)
            for p in pages for c in p.contacts}


def test_bulk_read_pays_only_when_it_saves_calls() -> None:
    from crmsync.connectors.salesforce.reading import bulk_read_pays

    assert not bulk_read_pays(2_000) and not bulk_read_pays(10_000)
    assert bulk_read_pays(20_000) and bulk_read_pays(100_000)
    assert bulk_read_pays(200, page=20)  # 9 more pages of 20 against a job of about 5 calls


@pytest.mark.parametrize("stream", [LEAD, CONTACT])
def test_a_large_full_read_goes_through_one_bulk_query_with_the_same_contacts(
    connector: SalesforceConnector, salesforce_server: Any, salesforce_admin: Any, stream: str,
) -> None:
    """The sandbox serves REST pages of 20, so the hundreds of records of the seed org are a
    'large' object: more REST pages than a query job costs."""
    leads = _ids(connector, stream, 3)
    obj = stream.split(":")[1]
    connector.write_fields([RecordUpdate(leads[0], obj, {"status": "prospect", "score": 3,
                                                         "reason": "comma, \"quote\""})])
    by_rest = list(connector.read(stream, None))  # one REST page of up to 2,000
    assert all(p.ordered for p in by_rest) and len(_facts(by_rest)) > 150
    assert salesforce_admin("POST", "/_sandbox/config", {"page_size": 20})[0] == 200
    salesforce_server.reset()
    calls = connector.api_calls()
    by_bulk = list(connector.read(stream, None))
    assert _facts(by_bulk) == _facts(by_rest)
    assert sum(len(p.contacts) for p in by_bulk) == len(_facts(by_rest))  # each once
    assert not any(p.ordered for p in by_bulk)  # the cursor moves only at the end
    by_endpoint = salesforce_server.call_counts()["by_endpoint"]
    jobs = "/services/data/v59.0/jobs/query"
    assert by_endpoint[f"POST {jobs}"] == 1 and by_endpoint[f"GET {jobs}/{{id}}/results"] == 1
    rest = sum(v for k, v in by_endpoint.items()
               if k.startswith("GET /services/data/v59.0/query"))
    if obj == "Lead":
        assert rest == 1  # only the first page, whose totalSize chose the job
    # REST pages of 20 would have cost one call per 20 records (plus the same deal pages).
    spent = connector.api_calls() - calls
    assert spent == int(salesforce_server.call_counts()["total"])
    assert spent - (rest - 1) < math.ceil(len(_facts(by_rest)) / 20)
    stored = _facts(by_bulk)[leads[0]]
    assert stored[1]["reason"] == "comma, \"quote\"" and stored[1]["score"] == 3


def test_incremental_and_small_full_reads_stay_on_rest(
    connector: SalesforceConnector, salesforce_server: Any, salesforce_admin: Any,
) -> None:
    assert salesforce_admin("POST", "/_sandbox/config", {"page_size": 50})[0] == 200
    from datetime import UTC, datetime

    pages = list(connector.read(LEAD, datetime(2000, 1, 1, tzinfo=UTC)))  # incremental: ordered
    assert pages and all(p.ordered for p in pages)
    assert "POST /services/data/v59.0/jobs/query" not in salesforce_server.call_counts()[
        "by_endpoint"]


def test_a_query_job_result_is_handed_on_in_chunks_from_one_results_call(
    connector: SalesforceConnector, salesforce_server: Any,
) -> None:
    """One results call of up to 10,000 records; the reader decides them 2,000 at a time (here
    50), so a run never holds a whole result page of built records."""
    every = [r["Id"] for page in connector.client.query_pages("query Lead", "SELECT Id FROM Lead")
             for r in page]
    salesforce_server.reset()
    pages = BulkQuery(connector.client, 10_000).pages("Lead", "SELECT Id, Email FROM Lead",
                                                     chunk=50)
    first = next(pages)
    by_endpoint = salesforce_server.call_counts()["by_endpoint"]
    assert by_endpoint["GET /services/data/v59.0/jobs/query/{id}/results"] == 1
    rest = list(pages)
    sizes = [len(first)] + [len(p) for p in rest]
    assert sizes[0] == 50 and all(0 < n <= 50 for n in sizes) and len(sizes) > 3
    ids = [r["Id"] for page in [first, *rest] for r in page]
    assert len(ids) == len(set(ids)) and sorted(ids) == sorted(every)
    # Every chunk came from that one call.
    by_endpoint = salesforce_server.call_counts()["by_endpoint"]
    assert by_endpoint["GET /services/data/v59.0/jobs/query/{id}/results"] == 1


def test_query_csv_becomes_rest_shaped_records() -> None:
    # Quoted commas and line breaks, an empty cell, a parent with one field set, a parent with
    # every field empty, a two-level parent, a short row and a blank line.
    text = (
        'Id,Name,Account.Name,Account.Industry,Account.Owner.Name,Title\n'
        '003A,"Ng, Ada","Acme, Inc",,Sam,"VP\nSales"\n'
        '003B,Bo,,,,\n'
        '\n'
        '003C,Cy\n'
    )
    assert csv_records(text) == [
        {"Id": "003A", "Name": "Ng, Ada", "Title": "VP\nSales",
         "Account": {"Name": "Acme, Inc", "Industry": None, "Owner": {"Name": "Sam"}}},
        {"Id": "003B", "Name": "Bo", "Title": None, "Account": None},
        {"Id": "003C", "Name": "Cy", "Title": None, "Account": None},
    ]
    assert csv_records("") == []
    assert csv_records("Id,Name\n") == []


@given(st.text(alphabet=st.sampled_from(['a', ',', '"', '\n', '\r', '\u2028', '\x85', 'é', ' ']),
               max_size=60))
def test_query_csv_lines_are_read_as_stringio_reads_them(text: str) -> None:
    """Result pages are parsed line by line (no StringIO copy of the page): same rows, same
    errors, whatever quotes, carriage returns and Unicode line separators the text holds."""
    def parse(lines: Any) -> Any:
        try:
            return list(csv.reader(lines))
        except csv.Error as error:
            return str(error)

    assert parse(_lines(text)) == parse(io.StringIO(text))
