"""The HTTP stack under both emulators (issue 10 item 1): chunked request bodies, keep-alive
connections that stay in step, header names as the services spell them, and the connection-level
faults — ``disconnect`` (nothing applied) and ``lost_response`` (applied, answer lost)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import urllib3
from hubspot import HubSpot
from hubspot.crm.objects.tasks import SimplePublicObjectInputForCreate
from simple_salesforce.exceptions import SalesforceResourceNotFound
from urllib3.util.retry import Retry

TASK = {
    "hs_timestamp": "2026-12-01T09:00:00.000Z",
    "hs_task_subject": "Call back",
    "hs_task_status": "NOT_STARTED",
}


def _pieces(payload: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(payload), size):
        yield payload[start:start + size]


def test_a_chunked_body_is_read_whole_and_the_connection_stays_in_step(hubspot_server) -> None:
    inputs = [{"properties": {**TASK, "hs_task_subject": f"chunked {i}"}} for i in range(30)]
    payload = json.dumps({"inputs": inputs}).encode()
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {hubspot_server.token}"
        # A generator body: requests sends it with Transfer-Encoding: chunked, no length.
        created = session.post(f"{hubspot_server.base_url}/crm/v3/objects/tasks/batch/create",
                               data=_pieces(payload, 97),
                               headers={"Content-Type": "application/json"})
        assert created.request.headers.get("Transfer-Encoding") == "chunked"
        assert created.status_code == 201, created.text
        assert len(created.json()["results"]) == 30
        # The same keep-alive connection answers the next call (no chunk bytes left over).
        after = session.get(f"{hubspot_server.base_url}/crm/v3/objects/tasks?limit=100"
                            "&properties=hs_task_subject")
    assert after.status_code == 200
    subjects = {r["properties"]["hs_task_subject"] for r in after.json()["results"]}
    assert {f"chunked {i}" for i in range(30)} <= subjects


def _read_response(stream: Any) -> tuple[int, dict[str, str], bytes]:
    status = int(stream.readline().split()[1])
    headers: dict[str, str] = {}
    while (line := stream.readline().decode("latin-1").strip()):
        name, _, value = line.partition(":")
        headers[name.strip()] = value.strip()
    return status, headers, stream.read(int(headers["Content-Length"]))


def test_raw_socket_chunked_post_then_get_on_one_connection(sf_server) -> None:
    body = json.dumps({"LastName": "Chunky", "Company": "Raw Socket GmbH"}).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in _pieces(body, 7))
    auth = f"Authorization: Bearer {sf_server.token}\r\n".encode()
    host = f"Host: 127.0.0.1:{sf_server.port}\r\n".encode()
    with socket.create_connection(("127.0.0.1", sf_server.port), timeout=10) as conn:
        conn.sendall(b"POST /services/data/v59.0/sobjects/Lead HTTP/1.1\r\n" + host + auth +
                     b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
                     chunks + b"0\r\n\r\n")
        stream = conn.makefile("rb")
        status, _, raw = _read_response(stream)
        assert status == 201, raw
        lead_id = json.loads(raw)["id"]
        conn.sendall(f"GET /services/data/v59.0/sobjects/Lead/{lead_id} HTTP/1.1\r\n".encode() +
                     host + auth + b"\r\n")
        status, headers, raw = _read_response(stream)
    assert status == 200
    assert json.loads(raw)["LastName"] == "Chunky"
    assert headers["Sforce-Limit-Info"].startswith("api-usage=")


def test_response_header_names_keep_the_services_spelling(hubspot_server) -> None:
    with socket.create_connection(("127.0.0.1", hubspot_server.port), timeout=10) as conn:
        conn.sendall(f"GET /crm/v3/owners HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                     f"{hubspot_server.token}\r\n\r\n".encode())
        status, headers, _ = _read_response(conn.makefile("rb"))
    assert status == 200
    assert {"X-HubSpot-RateLimit-Max", "X-HubSpot-Correlation-Id"} <= set(headers)


def test_disconnect_applies_nothing(hubspot_server) -> None:
    api = HubSpot(access_token=hubspot_server.token, host=hubspot_server.base_url,
                  retry=Retry(total=0, raise_on_status=False))
    before = len(hubspot_server.emulator.records("tasks"))
    hubspot_server.install_faults({"rules": [
        {"method": "POST", "path": "/crm/v3/objects/tasks", "kind": "disconnect"}]})
    with pytest.raises((urllib3.exceptions.ProtocolError, urllib3.exceptions.MaxRetryError)):
        api.crm.objects.tasks.basic_api.create(SimplePublicObjectInputForCreate(properties=TASK))
    assert len(hubspot_server.emulator.records("tasks")) == before
    assert hubspot_server.call_counts()["by_status"] == {"dropped": 1}


def test_a_create_whose_answer_is_lost_still_lands(hubspot_server) -> None:
    api = HubSpot(access_token=hubspot_server.token, host=hubspot_server.base_url,
                  retry=Retry(total=0, raise_on_status=False))
    before = {r["id"] for r in hubspot_server.emulator.records("tasks")}
    hubspot_server.install_faults({"rules": [
        {"method": "POST", "path": "/crm/v3/objects/tasks", "kind": "lost_response"}]})
    with pytest.raises((urllib3.exceptions.ProtocolError, urllib3.exceptions.MaxRetryError)) as e:
        api.crm.objects.tasks.basic_api.create(SimplePublicObjectInputForCreate(properties=TASK))
    # No byte of an answer came back: the connection closed before the status line.
    assert "without response" in str(e.value) or "aborted" in str(e.value)
    landed = [r for r in hubspot_server.emulator.records("tasks") if r["id"] not in before]
    assert [r["properties"]["hs_task_subject"] for r in landed] == ["Call back"]
    assert hubspot_server.call_counts()["by_status"] == {"dropped": 1}
    assert hubspot_server.faults.plan.rules[0].fired == 1
    # The fault is spent: the next call on a new connection is answered.
    assert api.crm.objects.tasks.basic_api.get_by_id(landed[0]["id"]).id == landed[0]["id"]


def test_a_salesforce_create_whose_answer_is_lost_still_lands(sf, sf_server) -> None:
    sf_server.install_faults({"rules": [
        {"method": "POST", "path": "/services/data/v59.0/sobjects/Lead", "kind": "lost_response"}]})
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.Lead.create({"LastName": "Lost Answer", "Company": "Nowhere Ltd"})
    found = sf.query("SELECT Id, LastName FROM Lead WHERE LastName = 'Lost Answer'")
    assert found["totalSize"] == 1
    # The record is really there, readable by id, not a phantom of the fault.
    record = sf.Lead.get(found["records"][0]["Id"])
    assert record["Company"] == "Nowhere Ltd"
    with pytest.raises(SalesforceResourceNotFound):
        sf.Lead.get("00Q000000000000AAA")


def test_lost_response_is_a_known_fault_kind(hubspot_http) -> None:
    status, plan, _ = hubspot_http("POST", "/_sandbox/faults", {"rules": [
        {"path": "/crm/v3/objects/tasks", "kind": "lost_response", "times": 2}]})
    assert status == 200 and plan["rules"][0]["kind"] == "lost_response"


def test_a_half_sent_request_does_not_hold_up_other_clients(hubspot_server) -> None:
    auth = f"Authorization: Bearer {hubspot_server.token}\r\n".encode()
    body = json.dumps({"properties": {**TASK, "hs_task_subject": "late"}}).encode()
    with socket.create_connection(("127.0.0.1", hubspot_server.port), timeout=10) as slow:
        # A client that sent half a request and stalls (the rest of its body has not come).
        slow.sendall(b"POST /crm/v3/objects/tasks HTTP/1.1\r\nHost: x\r\n" + auth +
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                     % len(body) + body[:10])
        for _ in range(3):  # others are answered meanwhile, each on its own connection
            with socket.create_connection(("127.0.0.1", hubspot_server.port), timeout=10) as c:
                c.sendall(b"GET /crm/v3/owners HTTP/1.1\r\nHost: x\r\n" + auth + b"\r\n")
                status, _, _ = _read_response(c.makefile("rb"))
                assert status == 200
        # The stalled request still completes once its body arrives.
        slow.sendall(body[10:])
        status, _, raw = _read_response(slow.makefile("rb"))
    assert status == 201, raw
    assert json.loads(raw)["properties"]["hs_task_subject"] == "late"
