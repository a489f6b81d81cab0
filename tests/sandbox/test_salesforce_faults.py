"""Scripted faults as the real simple-salesforce surfaces them; login refresh; call accounting."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceRefusedRequest,
)

QUERY = "SELECT Id FROM User LIMIT 1"


def _fault(server: Any, **rule: Any) -> None:
    server.install_faults({"rules": [{"method": "*", "path": "/services/data/", **rule}]})


@pytest.mark.parametrize("status", [429, 500, 503])
def test_status_faults_raise_general_error(sf: Any, sf_server: Any, status: int) -> None:
    _fault(sf_server, status=status, retry_after=1)
    with pytest.raises(SalesforceGeneralError) as caught:
        sf.query(QUERY)
    assert caught.value.status == status
    assert isinstance(caught.value.content, list) and "errorCode" in caught.value.content[0]
    assert sf.query(QUERY)["totalSize"] == 1  # times=1: the next call goes through


def test_retry_after_header_is_sent(sf_http: Any, sf_server: Any) -> None:
    _fault(sf_server, status=503, retry_after=2)
    status, body, headers = sf_http("GET", "/services/data/v59.0/limits")
    assert status == 503 and headers["Retry-After"] == "2"
    assert body[0]["errorCode"] == "SERVER_UNAVAILABLE"
    assert headers["Sforce-Limit-Info"].startswith("api-usage=")


def test_session_expired_is_401_expired_session(sf: Any, sf_server: Any) -> None:
    _fault(sf_server, kind="session_expired")
    with pytest.raises(SalesforceExpiredSession) as caught:
        sf.query(QUERY)
    assert caught.value.content == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


def test_rate_limit_is_403_concurrent_requests(sf: Any, sf_server: Any) -> None:
    _fault(sf_server, kind="rate_limit")
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.query(QUERY)
    assert caught.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert "ConcurrentRequests" in caught.value.content[0]["message"]


def test_daily_limit_fault_is_403_total_requests(sf: Any, sf_server: Any) -> None:
    _fault(sf_server, kind="daily_limit", path="/services/data/v59.0/composite/")
    sf.query(QUERY)  # other paths are untouched
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.restful("composite/sobjects", method="POST", json={"records": [
            {"attributes": {"type": "Contact"}, "LastName": "x"}]})
    assert caught.value.content[0]["message"] == "TotalRequests Limit exceeded."


def test_disconnect_surfaces_as_requests_error(sf: Any, sf_server: Any) -> None:
    _fault(sf_server, kind="disconnect")
    broken = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)
    with pytest.raises(broken):
        sf.query(QUERY)
    assert sf.query(QUERY)["totalSize"] == 1


def test_latency_fault_still_answers(sf: Any, sf_server: Any) -> None:
    sf_server.install_faults({"latency_ms": 5, "rules": []})
    assert sf.query(QUERY)["totalSize"] == 1


class _ToEmulator(HTTPAdapter):
    """Send login.salesforce.com and the emulator origin to the plain-HTTP emulator."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        request.url = self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().send(request, **kwargs)


def _password_client(
    server: Any, credentials: tuple[str, str, str], password: str | None = None
) -> Salesforce:
    username, right_password, token = credentials
    session = requests.Session()
    session.trust_env = False
    adapter = _ToEmulator(server.base_url)
    session.mount("https://login.salesforce.com/", adapter)
    session.mount(f"https://127.0.0.1:{server.port}/", adapter)
    return Salesforce(username=username, password=password or right_password,
                      security_token=token, session=session, version="59.0")


def test_password_client_logs_in_again_after_401(sf_server: Any, sf_credentials: Any) -> None:
    client = _password_client(sf_server, sf_credentials)
    assert client.sf_instance == f"127.0.0.1:{sf_server.port}"
    first_session = client.session_id
    _fault(sf_server, kind="session_expired", times=2)
    assert client.query(QUERY)["totalSize"] == 1
    assert client.Contact.describe()["name"] == "Contact"  # the SFType path re-logs in too
    assert client.session_id != first_session
    counts = sf_server.call_counts()["by_endpoint"]
    assert counts["POST /services/Soap/u/59.0"] == 3  # start-up + one per 401


def test_bad_credentials_fail_login(sf_server: Any, sf_credentials: Any) -> None:
    with pytest.raises(SalesforceAuthenticationFailed):
        _password_client(sf_server, sf_credentials, password="wrong")


def test_call_counts_fold_ids_and_split_reads_writes(sf: Any, sf_http: Any) -> None:
    contact = sf.query("SELECT Id FROM Contact LIMIT 1")["records"][0]["Id"]
    sf.Contact.get(contact)
    sf.Contact.update(contact, {"Title": "x"})
    sf.restful("composite/sobjects", method="PATCH", json={"records": [
        {"attributes": {"type": "Contact"}, "id": contact, "Title": "y"}]})
    status, calls, _ = sf_http("GET", "/_sandbox/calls", token=None)
    assert status == 200
    assert calls["by_endpoint"] == {
        "GET /services/data/v59.0/query/": 1,
        "GET /services/data/v59.0/sobjects/Contact/{id}": 1,
        "PATCH /services/data/v59.0/sobjects/Contact/{id}": 1,
        "PATCH /services/data/v59.0/composite/sobjects": 1,
    }
    assert (calls["reads"], calls["writes"], calls["total"]) == (2, 2, 4)


def test_admin_records_and_user_edits(sf: Any, sf_http: Any, sf_clock: Any) -> None:
    status, body, _ = sf_http("GET", "/_sandbox/records/Lead", token=None)
    assert status == 200 and body["totalSize"] == len(body["records"]) > 0
    lead = body["records"][0]
    sf_clock.advance(60)
    status, edited, _ = sf_http("PATCH", f"/_sandbox/records/Lead/{lead['Id']}",
                                {"Title": "Edited by a user"}, token=None)
    assert status == 200 and edited["Title"] == "Edited by a user"
    assert edited["SystemModstamp"] > lead["SystemModstamp"]
    assert edited["LastModifiedDate"] == edited["SystemModstamp"]
    assert sf_http("GET", "/_sandbox/calls", token=None)[1]["total"] == 0
    got = sf.query(f"SELECT Title FROM Lead WHERE Id = '{lead['Id']}'")["records"][0]
    assert got["Title"] == "Edited by a user"


def test_snapshot_restore_round_trip(sf: Any, sf_emulator: Any, sf_clock: Any) -> None:
    from crmsync.sandbox.salesforce import SalesforceEmulator

    sf.toolingexecute("sobjects/CustomField", method="POST", data={
        "FullName": "Lead.Crmsync_Score__c",
        "Metadata": {"label": "Score", "type": "Number", "precision": 5, "scale": 1}})
    lead = sf.query("SELECT Id FROM Lead LIMIT 1")["records"][0]["Id"]
    sf.Lead.update(lead, {"Crmsync_Score__c": 7.5})
    data = sf_emulator.snapshot()
    copy = SalesforceEmulator(clock=sf_clock)
    copy.restore(data)
    assert copy.snapshot() == data
    new_id = copy.store.new_id("Lead")
    assert new_id not in copy.store.tables["Lead"]


@pytest.mark.parametrize(
    ("method", "path", "endpoint", "write"),
    [
        ("GET", "/services/data/v59.0/query/0r85g0000000001AAA-2000",
         "GET /services/data/v59.0/query/{locator}", False),
        ("PATCH", "/services/data/v59.0/sobjects/Task/Crmsync_Task_Key__c/abc-123",
         "PATCH /services/data/v59.0/sobjects/Task/Crmsync_Task_Key__c/{value}", True),
        ("GET", "/services/data/v59.0/sobjects/Contact/describe",
         "GET /services/data/v59.0/sobjects/Contact/describe", False),
        ("PATCH", "/services/data/v59.0/composite/sobjects/Task/Crmsync_Task_Key__c",
         "PATCH /services/data/v59.0/composite/sobjects/Task/Crmsync_Task_Key__c", True),
        ("POST", "/services/data/v59.0/composite/sobjects/Contact",
         "POST /services/data/v59.0/composite/sobjects/Contact", False),
        ("PUT", "/services/data/v59.0/jobs/ingest/7505g0000000001AAA/batches",
         "PUT /services/data/v59.0/jobs/ingest/{id}/batches", True),
        ("POST", "/services/data/v59.0/jobs/query", "POST /services/data/v59.0/jobs/query", False),
        ("GET", "/services/data/v59.0/tooling/sobjects/CustomField/00N5g0000000001AAA",
         "GET /services/data/v59.0/tooling/sobjects/CustomField/{id}", False),
        ("POST", "/services/Soap/u/59.0", "POST /services/Soap/u/59.0", False),
    ],
)
def test_classify_folds_ids(
    sf_emulator: Any, method: str, path: str, endpoint: str, write: bool
) -> None:
    from crmsync.sandbox.server import Request

    assert sf_emulator.classify(Request(method, path, {}, {})) == (endpoint, write)
