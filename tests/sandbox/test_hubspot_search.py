"""HubSpot emulator: search filters, sorts, offset paging, the 10,000 cap, lag and scale."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hubspot.crm.contacts import ApiException, PublicObjectSearchRequest

from crmsync.sandbox.hubspot import HubSpotEmulator, RateLimits
from crmsync.sandbox.hubspot.store import Record
from crmsync.sandbox.server import Request

HAS_EMAIL = {"propertyName": "email", "operator": "HAS_PROPERTY"}


def _search(api, filters=(), *, groups=None, sorts=None, limit=200, after=None, props=None):
    request = PublicObjectSearchRequest(
        filter_groups=groups if groups is not None else [{"filters": list(filters)}],
        sorts=sorts or [],
        properties=props or ["email", "lifecyclestage", "numemployees", "country"],
        limit=limit,
        after=after,
    )
    return api.crm.contacts.search_api.do_search(request)


def _all(api, filters=(), **kw):
    results, after = [], None
    while True:
        page = _search(api, filters, after=after, **kw)
        results.extend(page.results)
        if page.paging is None:
            return page.total, results
        after = page.paging.next.after


def _records(emulator: HubSpotEmulator) -> list[dict]:
    return [r for r in emulator.records("contacts") if not r["archived"]]


def test_total_counts_all_matches_and_pages_by_offset(hubspot_api, hubspot_emulator) -> None:
    expected = [r for r in _records(hubspot_emulator)
                if r["properties"].get("lifecyclestage") == "lead"]
    first = _search(hubspot_api, [{"propertyName": "lifecyclestage", "operator": "EQ",
                                   "value": "LEAD"}], limit=10)
    assert first.total == len(expected) > 10
    assert first.paging.next.after == "10"
    total, everything = _all(
        hubspot_api, [{"propertyName": "lifecyclestage", "operator": "EQ", "value": "lead"}],
        limit=7,
    )
    assert sorted(c.id for c in everything) == sorted(r["id"] for r in expected)


@pytest.mark.parametrize(
    ("flt", "keep"),
    [
        ({"operator": "NEQ", "value": "US"}, lambda p: p.get("country", "").upper() != "US"),
        ({"operator": "IN", "values": ["de", "FR"]}, lambda p: p.get("country") in ("DE", "FR")),
        ({"operator": "NOT_IN", "values": ["US"]}, lambda p: p.get("country") != "US"),
        ({"operator": "HAS_PROPERTY"}, lambda p: p.get("country") is not None),
        ({"operator": "NOT_HAS_PROPERTY"}, lambda p: p.get("country") is None),
    ],
)
def test_string_operators(hubspot_api, hubspot_emulator, flt, keep) -> None:
    total, found = _all(hubspot_api, [{"propertyName": "country", **flt}])
    expected = {r["id"] for r in _records(hubspot_emulator) if keep(r["properties"])}
    assert {c.id for c in found} == expected and total == len(expected)


@pytest.mark.parametrize(
    ("flt", "keep"),
    [
        ({"operator": "LT", "value": "50"}, lambda n: n < 50),
        ({"operator": "LTE", "value": "50"}, lambda n: n <= 50),
        ({"operator": "GT", "value": "5000"}, lambda n: n > 5000),
        ({"operator": "GTE", "value": "5000"}, lambda n: n >= 5000),
        ({"operator": "EQ", "value": "5000"}, lambda n: n == 5000),
        ({"operator": "BETWEEN", "value": "10", "highValue": "49"}, lambda n: 10 <= n <= 49),
    ],
)
def test_numeric_operators_compare_numbers_not_strings(hubspot_api, hubspot_emulator, flt,
                                                       keep) -> None:
    _, found = _all(hubspot_api, [{"propertyName": "numemployees", **flt}])
    expected = {
        r["id"] for r in _records(hubspot_emulator)
        if r["properties"].get("numemployees") is not None
        and keep(float(r["properties"]["numemployees"]))
    }
    assert {c.id for c in found} == expected


def test_contains_token_with_wildcards(hubspot_api, hubspot_emulator) -> None:
    _, found = _all(hubspot_api, [{"propertyName": "email", "operator": "CONTAINS_TOKEN",
                                   "value": "*@gmail.com"}])
    expected = {r["id"] for r in _records(hubspot_emulator)
                if r["properties"]["email"].endswith("@gmail.com")}
    assert expected and {c.id for c in found} == expected
    _, rest = _all(hubspot_api, [{"propertyName": "email", "operator": "NOT_CONTAINS_TOKEN",
                                  "value": "*@gmail.com"}])
    assert len(rest) + len(found) == len(_records(hubspot_emulator))


def test_groups_are_ored_and_filters_anded(hubspot_api, hubspot_emulator) -> None:
    groups = [
        {"filters": [{"propertyName": "country", "operator": "EQ", "value": "DE"},
                     {"propertyName": "lifecyclestage", "operator": "EQ", "value": "lead"}]},
        {"filters": [{"propertyName": "country", "operator": "EQ", "value": "FR"}]},
    ]
    _, found = _all(hubspot_api, groups=groups)
    expected = {
        r["id"] for r in _records(hubspot_emulator)
        if (r["properties"].get("country") == "DE"
            and r["properties"].get("lifecyclestage") == "lead")
        or r["properties"].get("country") == "FR"
    }
    assert {c.id for c in found} == expected


def test_datetime_filters_take_epoch_ms_or_iso_and_sort_by_lastmodifieddate(
    hubspot_api, hubspot_emulator
) -> None:
    since = datetime(2026, 10, 1, tzinfo=UTC)
    as_ms = str(int(since.timestamp() * 1000))
    sort = [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
    _, by_ms = _all(hubspot_api, [{"propertyName": "lastmodifieddate", "operator": "GTE",
                                   "value": as_ms}], sorts=sort)
    _, by_iso = _all(hubspot_api, [{"propertyName": "lastmodifieddate", "operator": "GTE",
                                    "value": "2026-10-01T00:00:00Z"}], sorts=sort)
    assert [c.id for c in by_ms] == [c.id for c in by_iso]
    stamps = [c.updated_at for c in by_ms]
    assert stamps == sorted(stamps) and stamps[0] >= since
    expected = {r["id"] for r in _records(hubspot_emulator) if r["updatedAt"] >= "2026-10-01"}
    assert {c.id for c in by_ms} == expected


def test_sorts_accept_a_bare_property_name_and_descending(hubspot_api) -> None:
    _, bare = _all(hubspot_api, sorts=["numemployees"])
    _, down = _all(hubspot_api, sorts=[{"propertyName": "numemployees",
                                        "direction": "DESCENDING"}])
    numbers = [float(c.properties["numemployees"]) for c in bare
               if c.properties["numemployees"] is not None]
    assert numbers == sorted(numbers)
    numbers_down = [float(c.properties["numemployees"]) for c in down
                    if c.properties["numemployees"] is not None]
    assert numbers_down == sorted(numbers, reverse=True)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"limit": 201}, "limit"),
        ({"limit": 200, "after": "9801"}, "10000"),
        ({"limit": 100, "after": "9901"}, "10000"),
        ({"filterGroups": [{"filters": []}] * 6}, "filter groups"),
        ({"filterGroups": [{"filters": [HAS_EMAIL] * 7}]}, "filters in a group"),
        ({"filterGroups": [{"filters": [HAS_EMAIL] * 6}] * 4}, "Too many filters"),
        ({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "LIKE",
                                         "value": "x"}]}]}, "operator"),
        ({"sorts": [{"propertyName": "email", "direction": "UP"}]}, "direction"),
    ],
)
def test_search_rejections_are_400_validation_errors(hubspot_http, body, why) -> None:
    status, answer, _ = hubspot_http("POST", "/crm/v3/objects/contacts/search", body)
    assert status == 400, answer
    assert answer["category"] == "VALIDATION_ERROR" and why in answer["message"]


def test_the_10000_cap_surfaces_as_an_api_exception_even_with_few_matches(hubspot_api) -> None:
    assert _search(hubspot_api, limit=100, after="9900").results == []  # exactly at the cap
    with pytest.raises(ApiException) as caught:
        _search(hubspot_api, limit=200, after="9900")
    assert caught.value.status == 400


def test_archived_records_are_never_found(hubspot_api, hubspot_http) -> None:
    before = _search(hubspot_api, limit=1).total
    hubspot_http("DELETE", "/crm/v3/objects/contacts/101")
    assert _search(hubspot_api, limit=1).total == before - 1


def test_index_lag_hides_fresh_writes_until_the_clock_moves_on(
    hubspot_api, hubspot_emulator, hubspot_clock, hubspot_http
) -> None:
    hubspot_emulator.configure({"search_lag_seconds": 5})
    hubspot_http("PATCH", "/crm/v3/objects/contacts/101", {"properties": {"jobtitle": "Fresh"}})
    flt = [{"propertyName": "jobtitle", "operator": "EQ", "value": "fresh"}]
    assert _search(hubspot_api, flt).total == 0
    hubspot_clock.advance(6)
    assert [c.id for c in _search(hubspot_api, flt).results] == ["101"]


def test_unknown_filter_property_is_rejected(hubspot_http) -> None:
    status, body, _ = hubspot_http(
        "POST", "/crm/v3/objects/contacts/search",
        {"filterGroups": [{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "1"}]}]},
    )
    assert status == 400 and body["errors"][0]["code"] == "PROPERTY_DOESNT_EXIST"


def test_a_windowed_scan_of_100k_contacts_sorts_once_per_window() -> None:
    emulator = HubSpotEmulator(rate_limits=RateLimits(enabled=False))
    store = emulator.account.stores["contacts"]
    base = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
    for i in range(100_000):
        # Spread over ~4 days, in an order unrelated to ids, with ties.
        stamp = base + (i * 7919 % 100_000) * 3_000
        store.add(Record(str(1000 + i), {"email": f"c{i}@example.com"}, stamp, stamp))
    searcher = emulator.account.searchers["contacts"]
    body = {
        "filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE",
                                       "value": str(base + 150_000_000)}]}],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["email"],
        "limit": 200,
    }
    seen: list[str] = []
    after = "0"
    for _ in range(10):
        request = Request("POST", "/crm/v3/objects/contacts/search", {},
                          {"authorization": f"Bearer {emulator.token}"},
                          json.dumps({**body, "after": after}).encode())
        answer = emulator.handle(request)
        assert answer.status == 200
        seen += [r["id"] for r in answer.body["results"]]
        after = answer.body["paging"]["next"]["after"]
    assert answer.body["total"] == 50_000
    assert len(seen) == len(set(seen)) == 2_000
    assert searcher.evaluations == 1  # ten pages, one filter-and-sort
