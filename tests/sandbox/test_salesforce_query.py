"""SOQL and query paging through the real simple-salesforce client (wire contract §2.3-2.4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

BATCH_200 = {"Sforce-Query-Options": "batchSize=200"}


def test_query_all_pages_through_next_records_url(sf: Any, sf_server: Any) -> None:
    first = sf.query("SELECT Id FROM Lead ORDER BY Id", headers=BATCH_200)
    assert first["done"] is False and len(first["records"]) == 200
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/0r8")
    total = first["totalSize"]
    assert total > 200

    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True, headers=BATCH_200)
    assert second["totalSize"] == total  # the whole match count on every page
    everything = sf.query_all("SELECT Id FROM Lead ORDER BY Id", headers=BATCH_200)
    ids = [r["Id"] for r in everything["records"]]
    assert len(ids) == total == len(set(ids))
    assert ids == sorted(ids)
    assert sf_server.call_counts()["by_endpoint"]["GET /services/data/v59.0/query/{locator}"] >= 2


def test_last_page_has_no_next_records_url(sf: Any) -> None:
    page = sf.query("SELECT Id FROM Lead", headers=BATCH_200)
    while not page["done"]:
        page = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True, headers=BATCH_200)
    assert "nextRecordsUrl" not in page


def test_page_size_knob_forces_short_pages(sf: Any, sf_http: Any) -> None:
    status, _, _ = sf_http("POST", "/_sandbox/config", {"page_size": 7})
    assert status == 200
    page = sf.query("SELECT Id FROM User")
    assert len(page["records"]) == 7 and page["totalSize"] == 9
    assert len(sf.query_all("SELECT Id FROM User")["records"]) == 9


def test_batch_size_is_clamped_to_200_2000(sf: Any) -> None:
    page = sf.query("SELECT Id FROM Lead", headers={"Sforce-Query-Options": "batchSize=5"})
    assert len(page["records"]) == 200


def test_unknown_and_expired_locators(sf: Any, sf_clock: Any) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query_more("/services/data/v59.0/query/0r85g0000000099AAA-200", identifier_is_url=True)
    assert caught.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
    first = sf.query("SELECT Id FROM Lead", headers=BATCH_200)
    sf_clock.advance(timedelta(days=2, minutes=1).total_seconds())
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert caught.value.content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_records_have_attributes_then_select_order_with_canonical_names(sf: Any) -> None:
    result = sf.query(
        "select email, ID, account.name, lastname from contact where accountid != null limit 1"
    )
    record = result["records"][0]
    assert list(record) == ["attributes", "Email", "Id", "Account", "LastName"]
    assert record["attributes"] == {
        "type": "Contact", "url": f"/services/data/v59.0/sobjects/Contact/{record['Id']}",
    }
    assert list(record["Account"]) == ["attributes", "Name"]
    assert record["Account"]["attributes"]["type"] == "Account"
    assert len(record["Id"]) == 18


def test_missing_parent_is_null(sf: Any) -> None:
    result = sf.query(
        "SELECT Id, Account.Name, Account.Industry FROM Contact WHERE AccountId = null"
    )
    assert result["totalSize"] > 0
    assert all(r["Account"] is None for r in result["records"])


def test_sync_query_with_watermark_and_ties(sf: Any) -> None:
    everything = sf.query_all(
        "SELECT Id, SystemModstamp FROM Contact ORDER BY SystemModstamp ASC, Id ASC"
    )["records"]
    stamps = [r["SystemModstamp"] for r in everything]
    assert stamps == sorted(stamps)
    middle = stamps[len(stamps) // 2]
    watermark = middle.replace("+0000", "Z")
    after = sf.query_all(
        "SELECT Id FROM Contact WHERE SystemModstamp > " + watermark + " AND IsDeleted = false "
        "ORDER BY SystemModstamp ASC, Id ASC"
    )["records"]
    at_or_after = sf.query_all(
        "SELECT Id FROM Contact WHERE SystemModstamp >= " + watermark
        + " ORDER BY SystemModstamp, Id"
    )["records"]
    assert len(after) == sum(1 for s in stamps if s > middle)
    assert len(at_or_after) == sum(1 for s in stamps if s >= middle)
    # An offset datetime (the "+" must arrive as %2B, which requests does for params).
    moment = datetime.fromisoformat(middle).astimezone(UTC) + timedelta(hours=2)
    shifted = moment.replace(tzinfo=None).isoformat(timespec="milliseconds") + "+02:00"
    same = sf.query_all("SELECT Id FROM Contact WHERE SystemModstamp >= " + shifted)["records"]
    assert len(same) == len(at_or_after)


def test_where_operators(sf: Any) -> None:
    def count(where: str, obj: str = "Lead") -> int:
        return int(sf.query(f"SELECT COUNT() FROM {obj} WHERE {where}")["totalSize"])

    total = int(sf.query("SELECT COUNT() FROM Lead")["totalSize"])
    working = count("Status = 'Working - Contacted'")
    assert 0 < working < total
    assert count("Status = 'working - contacted'") == working  # text matches ignore case
    assert count("Status != 'Working - Contacted'") == total - working
    assert count("NOT Status = 'Working - Contacted'") == total - working
    both = count("Status IN ('Working - Contacted', 'Open - Not Contacted')")
    assert both == working + count("Status = 'Open - Not Contacted'")
    assert count("Status NOT IN ('Working - Contacted', 'Open - Not Contacted')") == total - both
    gmail = count("Email LIKE '%@GMAIL.com'")
    assert 0 < gmail < total
    either = "(Email LIKE '%@gmail.com' OR Status = 'Working - Contacted') AND IsConverted = false"
    both_ = "Email LIKE '%@gmail.com' AND Status = 'Working - Contacted'"
    assert count(either) == gmail + working - count(both_)
    assert count("Country = null") + count("Country != null") == total
    assert count("Trial_Signup__c = true") + count("Trial_Signup__c = false") == total
    assert count("NumberOfEmployees >= 50 AND NumberOfEmployees < 5000") > 0
    assert count("Page_Views__c > 100.5") <= count("Page_Views__c > 100")
    assert count("CreatedDate = LAST_N_DAYS:30") <= count("CreatedDate = LAST_N_DAYS:365") <= total
    assert count("CreatedDate < TODAY") == total  # the seed ends at the anchor; "now" is 01:00
    assert count("LastActivityDate >= 2020-01-01") == count("LastActivityDate != null")
    assert count("CreatedDate > YESTERDAY") == 0


def test_order_by_several_keys_and_nulls(sf: Any) -> None:
    rows = sf.query_all(
        "SELECT Id, Country, NumberOfEmployees FROM Lead "
        "ORDER BY Country DESC NULLS LAST, NumberOfEmployees ASC NULLS FIRST, Id"
    )["records"]
    countries = [r["Country"] for r in rows]
    non_null = [c for c in countries if c is not None]
    assert countries[: len(non_null)] == sorted(non_null, key=str.casefold, reverse=True)
    assert all(c is None for c in countries[len(non_null) :])
    first_country = [r for r in rows if r["Country"] == countries[0]]
    sizes = [r["NumberOfEmployees"] for r in first_country]
    nulls = sizes.count(None)
    assert all(s is None for s in sizes[:nulls])
    assert sizes[nulls:] == sorted(sizes[nulls:])
    default = sf.query_all("SELECT Country FROM Lead ORDER BY Country")["records"]
    assert default[0]["Country"] is None  # ASC defaults to NULLS FIRST


def test_limit_offset_and_count(sf: Any) -> None:
    ids = [r["Id"] for r in sf.query_all("SELECT Id FROM Contact ORDER BY Id")["records"]]
    page = sf.query("SELECT Id FROM Contact ORDER BY Id LIMIT 5 OFFSET 10")
    assert [r["Id"] for r in page["records"]] == ids[10:15]
    assert page["totalSize"] == 5 and page["done"] is True
    counted = sf.query("SELECT COUNT() FROM Contact")
    assert counted == {"totalSize": len(ids), "done": True, "records": []}
    aggregate = sf.query("SELECT COUNT(Id) FROM Contact")
    assert aggregate["records"][0]["expr0"] == len(ids)
    assert aggregate["records"][0]["attributes"] == {"type": "AggregateResult"}


def test_polymorphic_and_parent_paths(sf: Any) -> None:
    tasks = sf.query_all("SELECT Id, Who.Type, Who.Name, What.Name, Owner.Email FROM Task LIMIT 50")
    types = {r["Who"]["Type"] for r in tasks["records"] if r["Who"]}
    assert types <= {"Contact", "Lead"} and types
    leads = sf.query("SELECT Id, WhatId FROM Task WHERE Who.Type = 'Lead'")
    assert leads["totalSize"] > 0 and all(r["WhatId"] is None for r in leads["records"])


def test_query_all_includes_deleted_rows(sf: Any) -> None:
    victim = sf.query("SELECT Id FROM Contact LIMIT 1")["records"][0]["Id"]
    before = sf.query("SELECT COUNT() FROM Contact")["totalSize"]
    sf.Contact.delete(victim)
    assert sf.query("SELECT COUNT() FROM Contact")["totalSize"] == before - 1
    deleted = sf.query_all(
        "SELECT Id, IsDeleted FROM Contact WHERE IsDeleted = true", include_deleted=True
    )
    assert [r["Id"] for r in deleted["records"]] == [victim]
    assert deleted["records"][0]["IsDeleted"] is True


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id FROM Contact WHERE", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact WHERE Email = 'a' AND Title = 'b' OR Title = 'c'",
         "MALFORMED_QUERY"),
        ("SELECT Id, Foo__c FROM Contact", "INVALID_FIELD"),
        ("SELECT Id, Email, id FROM Contact", "INVALID_FIELD"),
        ("SELECT Id FROM Contact WHERE Bar.Name = 'x'", "INVALID_FIELD"),
        ("SELECT Id FROM Foo__c", "INVALID_TYPE"),
        ("SELECT Id FROM Contact WHERE SystemModstamp > '2024-05-01T00:00:00Z'",
         "INVALID_QUERY_FILTER_OPERATOR"),
        ("SELECT Id FROM Contact WHERE Email = 5", "INVALID_QUERY_FILTER_OPERATOR"),
        ("SELECT Id FROM Contact WHERE SystemModstamp > 2024-05-01T00:00:00", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE"),
    ],
)
def test_bad_queries_are_400_with_salesforce_codes(sf: Any, soql: str, code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(soql)
    assert caught.value.status == 400
    assert caught.value.content[0]["errorCode"] == code
    assert isinstance(caught.value.content, list)


def test_string_escapes(sf: Any) -> None:
    created = sf.Contact.create({"LastName": "O'Brien-Test", "Email": "ob@example.com"})
    found = sf.query("SELECT Id FROM Contact WHERE LastName = 'O\\'Brien-Test'")
    assert [r["Id"] for r in found["records"]] == [created["id"]]


def test_closed_tasks_older_than_a_year_need_query_all(sf: Any) -> None:
    visible = sf.query("SELECT COUNT() FROM Task")["totalSize"]
    everything = sf.query("SELECT COUNT() FROM Task", include_deleted=True)["totalSize"]
    assert everything > visible  # the seed has activity from more than a year ago
    old = sf.query_all(
        "SELECT Id FROM Task WHERE IsClosed = true AND ActivityDate < LAST_N_DAYS:365",
        include_deleted=True,
    )
    assert old["totalSize"] == everything - visible
