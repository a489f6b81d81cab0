"""HubSpot emulator: rate limits, scripted faults and how each surfaces in the real client."""

from __future__ import annotations

import json

import pytest
import urllib3
from hubspot import HubSpot
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    PublicObjectSearchRequest,
)
from hubspot.crm.contacts.exceptions import ServiceException, UnauthorizedException
from urllib3.util.retry import Retry

from crmsync.sandbox.faults import FaultPlan, FaultRule

RATE_HEADERS = {
    "X-HubSpot-RateLimit-Max", "X-HubSpot-RateLimit-Remaining",
    "X-HubSpot-RateLimit-Interval-Milliseconds", "X-HubSpot-RateLimit-Daily",
    "X-HubSpot-RateLimit-Daily-Remaining",
}


def _search_body() -> dict:
    return {"filterGroups": [], "limit": 1}


def test_ten_second_bucket_with_headers_and_a_policy_named_429(
    hubspot_emulator, hubspot_http, hubspot_clock
) -> None:
    hubspot_emulator.configure({"rate_limits": {"per_10s": 3}})
    remaining = []
    for _ in range(3):
        status, _, headers = hubspot_http("GET", "/crm/v3/objects/contacts?limit=1")
        assert status == 200 and set(headers) >= RATE_HEADERS
        remaining.append(headers["X-HubSpot-RateLimit-Remaining"])
    assert remaining == ["2", "1", "0"]
    assert headers["X-HubSpot-RateLimit-Max"] == "3"
    assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"

    status, body, headers = hubspot_http("GET", "/crm/v3/objects/contacts?limit=1")
    assert status == 429
    assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
    assert int(headers["Retry-After"]) >= 1

    hubspot_clock.advance(10)
    assert hubspot_http("GET", "/crm/v3/objects/contacts?limit=1")[0] == 200

    hubspot_emulator.configure({"rate_limits": {"retry_after": False}})
    for _ in range(3):
        status, _, headers = hubspot_http("GET", "/crm/v3/objects/contacts?limit=1")
    assert status == 429 and "Retry-After" not in headers


def test_search_has_its_own_per_second_bucket_and_no_rate_headers(
    hubspot_emulator, hubspot_http, hubspot_clock
) -> None:
    hubspot_emulator.configure({"rate_limits": {"search_per_s": 2, "per_10s": 1000}})
    for _ in range(2):
        status, _, headers = hubspot_http("POST", "/crm/v3/objects/contacts/search",
                                          _search_body())
        assert status == 200 and not RATE_HEADERS & set(headers)
    status, body, _ = hubspot_http("POST", "/crm/v3/objects/contacts/search", _search_body())
    assert status == 429 and body["policyName"] == "SECONDLY"
    assert hubspot_http("GET", "/crm/v3/objects/contacts?limit=1")[0] == 200  # other bucket
    hubspot_clock.advance(1)
    assert hubspot_http("POST", "/crm/v3/objects/contacts/search", _search_body())[0] == 200


def test_daily_limit_counts_every_call_and_resets_at_midnight(
    hubspot_emulator, hubspot_http, hubspot_clock
) -> None:
    hubspot_emulator.configure({"rate_limits": {"daily": 2}})
    hubspot_http("GET", "/crm/v3/objects/contacts?limit=1")
    _, _, headers = hubspot_http("POST", "/crm/v3/objects/contacts/search", _search_body())
    status, body, headers = hubspot_http("GET", "/crm/v3/objects/contacts?limit=1")
    assert status == 429 and body["policyName"] == "DAILY"
    assert headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    hubspot_clock.advance(24 * 3600)
    assert hubspot_http("GET", "/crm/v3/objects/contacts?limit=1")[0] == 200


def test_rate_limits_can_be_switched_off(hubspot_emulator, hubspot_http) -> None:
    hubspot_emulator.configure({"rate_limits": {"per_10s": 1, "enabled": False}})
    assert [hubspot_http("GET", "/crm/v3/owners")[0] for _ in range(3)] == [200, 200, 200]


def test_scripted_429_surfaces_as_api_exception_with_policy_name(
    hubspot_api, hubspot_server
) -> None:
    hubspot_server.install_faults({"rules": [
        {"method": "POST", "path": "/crm/v3/objects/contacts/batch/update", "times": 1,
         "status": 429, "retry_after": 1}]})
    with pytest.raises(ApiException) as caught:
        hubspot_api.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(
            inputs=[{"id": "101", "properties": {"jobtitle": "x"}}]))
    assert caught.value.status == 429
    assert json.loads(caught.value.body)["policyName"] == "TEN_SECONDLY_ROLLING"
    assert caught.value.headers["Retry-After"] == "1"


def test_default_client_retries_a_get_429_only_when_retry_after_is_sent(
    hubspot_api, hubspot_server
) -> None:
    # urllib3's default Retry(3) retries GET on 413/429/503 *with* Retry-After, so a GET 429
    # without the header is what reaches the caller (POSTs are never retried by default).
    hubspot_server.install_faults({"rules": [
        {"method": "GET", "path": "/crm/v3/objects/contacts", "times": 1, "status": 429}]})
    with pytest.raises(ApiException) as caught:
        hubspot_api.crm.contacts.basic_api.get_page(limit=1)
    assert caught.value.status == 429


def test_urllib3_retry_honours_retry_after_and_retries_posts(hubspot_server) -> None:
    api = HubSpot(
        access_token=hubspot_server.token, host=hubspot_server.base_url,
        retry=Retry(total=3, status_forcelist=(429,), allowed_methods=None, backoff_factor=0,
                    respect_retry_after_header=True, raise_on_status=False),
    )
    hubspot_server.install_faults({"rules": [
        {"method": "POST", "path": "/crm/v3/objects/contacts/batch/update", "times": 1,
         "status": 429, "retry_after": 1}]})
    answer = api.crm.contacts.batch_api.update(BatchInputSimplePublicObjectBatchInput(
        inputs=[{"id": "101", "properties": {"jobtitle": "Retried"}}]))
    assert [r.properties["jobtitle"] for r in answer.results] == ["Retried"]
    counts = hubspot_server.call_counts()["by_endpoint"]
    assert counts["POST /crm/v3/objects/contacts/batch/update"] == 2
    assert hubspot_server.faults.plan.rules[0].fired == 1


def test_search_rate_limit_fault_uses_the_secondly_policy(hubspot_api, hubspot_server) -> None:
    hubspot_server.install_faults(FaultPlan(rules=[
        FaultRule(method="POST", path="/crm/v3/objects/contacts/search", kind="rate_limit")]))
    with pytest.raises(ApiException) as caught:
        hubspot_api.crm.contacts.search_api.do_search(PublicObjectSearchRequest(limit=1))
    assert json.loads(caught.value.body)["policyName"] == "SECONDLY"
    assert "Retry-After" not in caught.value.headers  # optional, and the sync must cope


def test_daily_limit_fault(hubspot_api, hubspot_server) -> None:
    hubspot_server.install_faults(FaultPlan(rules=[FaultRule(kind="daily_limit")]))
    with pytest.raises(ApiException) as caught:
        hubspot_api.crm.contacts.basic_api.get_page(limit=1)
    assert caught.value.status == 429
    assert json.loads(caught.value.body)["policyName"] == "DAILY"


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_a_service_exception(hubspot_api, hubspot_server, status) -> None:
    hubspot_server.install_faults(FaultPlan(rules=[FaultRule(status=status)]))
    with pytest.raises(ServiceException) as caught:
        hubspot_api.crm.contacts.basic_api.get_page(limit=1)
    assert caught.value.status == status
    hubspot_api.crm.contacts.basic_api.get_page(limit=1)  # only once


def test_expired_session_and_bad_token_are_unauthorized(hubspot_api, hubspot_server) -> None:
    hubspot_server.install_faults(FaultPlan(rules=[FaultRule(kind="session_expired")]))
    with pytest.raises(UnauthorizedException) as expired:
        hubspot_api.crm.contacts.basic_api.get_page(limit=1)
    assert json.loads(expired.value.body)["category"] == "EXPIRED_AUTHENTICATION"

    stranger = HubSpot(access_token="pat-wrong", host=hubspot_server.base_url)
    with pytest.raises(UnauthorizedException) as wrong:
        stranger.crm.contacts.basic_api.get_page(limit=1)
    assert json.loads(wrong.value.body)["category"] == "INVALID_AUTHENTICATION"


def test_disconnect_mid_response_is_a_urllib3_error(hubspot_server) -> None:
    api = HubSpot(access_token=hubspot_server.token, host=hubspot_server.base_url,
                  retry=Retry(total=0, raise_on_status=False))
    hubspot_server.install_faults(FaultPlan(rules=[FaultRule(kind="disconnect")]))
    with pytest.raises((urllib3.exceptions.ProtocolError, urllib3.exceptions.MaxRetryError)):
        api.crm.contacts.basic_api.get_page(limit=1)


def test_calls_fold_ids_and_split_reads_from_writes(hubspot_api, hubspot_http) -> None:
    hubspot_http("GET", "/crm/v3/objects/contacts/101")
    hubspot_http("GET", "/crm/v3/objects/contacts/102?properties=email")
    hubspot_http("PATCH", "/crm/v3/objects/contacts/102", {"properties": {"jobtitle": "x"}})
    hubspot_http("POST", "/crm/v3/objects/contacts/search", _search_body())
    hubspot_http("POST", "/crm/v3/objects/contacts/batch/read", {"inputs": [{"id": "101"}]})
    hubspot_http("GET", "/crm/v4/objects/contacts/101/associations/tasks")
    hubspot_http("GET", "/crm/v3/owners/")
    hubspot_http("GET", "/crm/v3/properties/contacts/email")
    _, calls, _ = hubspot_http("GET", "/_sandbox/calls")
    assert calls == {
        "total": 8, "reads": 7, "writes": 1,
        "by_endpoint": {
            "GET /crm/v3/objects/contacts/{id}": 2,
            "GET /crm/v3/owners": 1,
            "GET /crm/v3/properties/contacts/{name}": 1,
            "GET /crm/v4/objects/contacts/{id}/associations/tasks": 1,
            "PATCH /crm/v3/objects/contacts/{id}": 1,
            "POST /crm/v3/objects/contacts/batch/read": 1,
            "POST /crm/v3/objects/contacts/search": 1,
        },
        "by_status": {"200": 8}, "rate_limited": 0, "rate_limited_by_policy": {},
    }
    hubspot_http("POST", "/_sandbox/reset")
    assert hubspot_http("GET", "/_sandbox/calls")[1]["total"] == 0


def test_fault_plan_json_from_the_issue_is_accepted(hubspot_http) -> None:
    plan = {"latency_ms": 50, "rules": [
        {"method": "POST", "path": "/crm/v3/objects/contacts/batch/update", "times": 3,
         "status": 429, "retry_after": 1},
        {"method": "*", "path": "/services/data/", "times": 1, "kind": "session_expired"}]}
    status, installed, _ = hubspot_http("POST", "/_sandbox/faults", plan)
    assert status == 200 and installed["latency_ms"] == 50
    assert [r["kind"] for r in installed["rules"]] == ["status", "session_expired"]
    for _ in range(3):
        status, body, headers = hubspot_http(
            "POST", "/crm/v3/objects/contacts/batch/update",
            {"inputs": [{"id": "101", "properties": {"jobtitle": "x"}}]})
        assert (status, body["policyName"], headers["Retry-After"]) == (
            429, "TEN_SECONDLY_ROLLING", "1")
    assert hubspot_http("POST", "/crm/v3/objects/contacts/batch/update",
                        {"inputs": [{"id": "101", "properties": {"jobtitle": "x"}}]})[0] == 200
    _, shown, _ = hubspot_http("GET", "/_sandbox/faults")
    assert shown["rules"][0]["fired"] == 3 and shown["rules"][1]["fired"] == 0
