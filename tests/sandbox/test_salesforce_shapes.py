"""Emulator bodies have the shapes of real Salesforce bodies (restforce fixtures in shared/specs).

Top-level keys and value types are compared (and one level into lists and ``attributes``);
values are not, since the fixtures come from other orgs and API versions.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
FIXTURES = SHARED / "specs" / "salesforce" / "restforce-fixtures"

pytestmark = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"reference fixtures not present at {FIXTURES}"
)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def assert_same_shape(expected: Any, actual: Any, where: str = "$", depth: int = 0) -> None:
    """Every key of ``expected`` is in ``actual`` with a compatible type (null matches any)."""
    if expected is None or actual is None:
        return
    assert _kind(expected) == _kind(actual), f"{where}: {_kind(expected)} != {_kind(actual)}"
    if isinstance(expected, dict):
        keys = set(expected)
        if "attributes" in expected:
            # A record of some other org's object: its envelope must match, and the fields both
            # objects have must have the same types.
            keys = {"attributes"} | (keys & set(actual))
        missing = keys - set(actual)
        assert not missing, f"{where}: missing keys {sorted(missing)}"
        if depth < 3:
            for key in sorted(keys):
                assert_same_shape(expected[key], actual[key], f"{where}.{key}", depth + 1)
    elif isinstance(expected, list) and expected and actual and depth < 3:
        assert_same_shape(expected[0], actual[0], f"{where}[0]", depth + 1)


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text("utf-8"))


Call = Callable[[Any, Any], tuple[int, Any]]
WINDOW = "start=2026-11-01T00:00:00Z&end=2026-11-23T00:00:00Z"


def _ids(sf: Any, obj: str, n: int = 1) -> list[str]:
    return [r["Id"] for r in sf.query(f"SELECT Id FROM {obj} ORDER BY Id LIMIT {n}")["records"]]


def _http(sf_http: Any, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
    status, parsed, _ = sf_http(method, "/services/data/v59.0/" + path, body, **kw)
    return status, parsed


CASES: dict[str, Call] = {
    "services_data_success_response.json":
        lambda sf, h: h("GET", "/services/data/", token=None)[:2],
    "expired_session_response.json": lambda sf, h: _http(h, "GET", "limits", token="expired"),
    "sobject_composite_sobjects_destroy_bad_request_response.json":
        lambda sf, h: _http(h, "DELETE", "composite/sobjects"),
    "sobject_composite_sobjects_destroy_success_response.json":
        lambda sf, h: _http(h, "DELETE", f"composite/sobjects?ids={_ids(sf, 'Task')[0]}"),
    "sobject_composite_sobjects_success_response.json":
        lambda sf, h: _http(h, "POST", "composite/sobjects", {"records": [
            {"attributes": {"type": "Contact"}, "LastName": "Shape"}]}),
    "sobject_create_success_response.json":
        lambda sf, h: _http(h, "POST", "sobjects/Contact/", {"LastName": "Shape"}),
    "sobject_delete_error_response.json":
        lambda sf, h: _http(h, "DELETE", "sobjects/Contact/rid"),
    "sobject_describe_sobjects_success_response.json": lambda sf, h: _http(h, "GET", "sobjects/"),
    "sobject_get_deleted_success_response.json":
        lambda sf, h: _http(h, "GET", f"sobjects/Contact/deleted/?{WINDOW}"),
    "sobject_get_updated_success_response.json":
        lambda sf, h: _http(h, "GET", f"sobjects/Contact/updated/?{WINDOW}"),
    "sobject_query_aggregate_success_response.json":
        lambda sf, h: _http(h, "GET", "query?q=SELECT+COUNT(Id)+FROM+Contact"),
    "sobject_query_empty_response.json":
        lambda sf, h: _http(h, "GET", "query/?q=SELECT+Id+FROM+Contact+WHERE+LastName+=+'nobody'"),
    "sobject_query_error_response.json":
        lambda sf, h: _http(h, "GET", "query?q=SELECT+Nope+FROM+Contact"),
    "sobject_query_paginated_first_page_response.json":
        lambda sf, h: _http(h, "GET", "query?q=SELECT+Id+FROM+Lead",
                            headers={"Sforce-Query-Options": "batchSize=200"}),
    "sobject_query_paginated_last_page_response.json":
        lambda sf, h: _http(h, "GET", "query?q=SELECT+Id+FROM+User"),
    "sobject_query_success_response.json":
        lambda sf, h: _http(h, "GET", "query?q=SELECT+Id,+Email,+Account.Name+FROM+Contact"
                            "+WHERE+AccountId+!=+null+LIMIT+1"),
    "sobject_sobject_describe_error_response.json":
        lambda sf, h: _http(h, "GET", "sobjects/Whizbang/describe"),
    "sobject_sobject_describe_success_response.json":
        lambda sf, h: _http(h, "GET", "sobjects/Contact/describe"),
    "sobject_sobject_find_error_response.json":
        lambda sf, h: _http(h, "GET", "sobjects/Contact/23foo"),
    "sobject_sobject_find_success_response.json":
        lambda sf, h: _http(h, "GET", f"sobjects/Contact/{_ids(sf, 'Contact')[0]}"),
    "sobject_upsert_created_success_response.json": lambda sf, h: _upsert(sf, h, created=True),
    "sobject_upsert_error_response.json":
        lambda sf, h: _http(h, "PATCH", "sobjects/Contact/Namez/foo", {"LastName": "x"}),
    "sobject_upsert_multiple_error_response.json": lambda sf, h: _upsert(sf, h, created=False),
    "sobject_write_error_response.json":
        lambda sf, h: _http(h, "PATCH", f"sobjects/Contact/{_ids(sf, 'Contact')[0]}",
                            {"foo": "bar"}),
}
EXPECTED_STATUS = {
    "expired_session_response.json": 401,
    "sobject_composite_sobjects_destroy_bad_request_response.json": 400,
    "sobject_delete_error_response.json": 404,
    "sobject_query_error_response.json": 400,
    "sobject_sobject_describe_error_response.json": 404,
    "sobject_sobject_find_error_response.json": 404,
    "sobject_upsert_created_success_response.json": 201,
    "sobject_upsert_error_response.json": 404,
    "sobject_upsert_multiple_error_response.json": 300,
    "sobject_write_error_response.json": 400,
    "sobject_create_success_response.json": 201,
}
# OAuth token bodies: the emulator serves the SOAP login simple-salesforce uses instead.
NOT_SERVED = {"auth_success_response.json", "auth_error_response.json"}


def _upsert(sf: Any, h: Any, *, created: bool) -> tuple[int, Any]:
    sf.toolingexecute("sobjects/CustomField", method="POST", data={
        "FullName": "Contact.Ext__c",
        "Metadata": {"label": "Ext", "type": "Text", "length": 20, "externalId": True}})
    if created:
        return _http(h, "PATCH", "sobjects/Contact/Ext__c/new-key", {"LastName": "x"})
    for record_id in _ids(sf, "Contact", 2):
        sf.Contact.update(record_id, {"Ext__c": "dup"})
    return _http(h, "PATCH", "sobjects/Contact/Ext__c/dup", {"LastName": "x"})


def test_every_fixture_has_a_case() -> None:
    assert {p.name for p in FIXTURES.glob("*.json")} - NOT_SERVED <= set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_body_shape_matches_fixture(name: str, sf: Any, sf_http: Any) -> None:
    status, body = CASES[name](sf, sf_http)
    assert status == EXPECTED_STATUS.get(name, 200), body
    expected = _fixture(name)
    assert_same_shape(expected, body)
    if name == "sobject_sobject_describe_success_response.json":
        ours = {f["name"]: f for f in body["fields"]}
        theirs = {f["name"]: f for f in expected["fields"]}
        for field in ("Id", "OwnerId", "IsDeleted", "CreatedDate", "SystemModstamp"):
            assert_same_shape(theirs[field], ours[field], f"fields[{field}]")
