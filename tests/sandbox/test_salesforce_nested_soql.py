"""Nested SOQL through simple-salesforce (issue 10 item 3): child relationship subqueries,
semi-joins and anti-joins, FIELDS(STANDARD|CUSTOM|ALL), toLabel()."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest


def _rows(sf_http: Any, obj: str) -> list[dict[str, Any]]:
    return [r for r in sf_http("GET", f"/_sandbox/records/{obj}")[1]["records"]
            if not r["IsDeleted"]]


def test_child_relationship_subquery_nests_each_accounts_contacts(sf: Any, sf_http: Any) -> None:
    contacts_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for contact in _rows(sf_http, "Contact"):
        if contact["AccountId"]:
            contacts_of[contact["AccountId"]].append(contact)
    accounts = _rows(sf_http, "Account")
    assert any(a["Id"] not in contacts_of for a in accounts) or len(contacts_of) > 10

    result = sf.query_all("SELECT Id, Name, (SELECT Id, LastName FROM Contacts "
                          "ORDER BY LastName) FROM Account")
    assert result["totalSize"] == len(accounts)
    for account in result["records"]:
        assert list(account) == ["attributes", "Id", "Name", "Contacts"]
        expected = contacts_of.get(account["Id"], [])
        nested = account["Contacts"]
        if not expected:
            assert nested is None
            continue
        assert nested["totalSize"] == len(expected) and nested["done"] is True
        assert sorted(r["Id"] for r in nested["records"]) == sorted(c["Id"] for c in expected)
        names = [r["LastName"].casefold() for r in nested["records"]]
        assert names == sorted(names)
        assert nested["records"][0]["attributes"]["type"] == "Contact"


def test_child_subquery_filters_and_limits_per_parent(sf: Any, sf_http: Any) -> None:
    won: dict[str, int] = defaultdict(int)
    for opp in _rows(sf_http, "Opportunity"):
        if opp["StageName"] == "Closed Won" and opp["AccountId"]:
            won[opp["AccountId"]] += 1
    assert won
    result = sf.query_all("SELECT Id, (SELECT Id FROM Opportunities WHERE StageName = "
                          "'Closed Won' LIMIT 1) FROM Account")
    for account in result["records"]:
        nested = account["Opportunities"]
        assert (nested is None) == (account["Id"] not in won)
        if nested is not None:
            assert nested["totalSize"] == 1


def test_semi_join_and_anti_join(sf: Any, sf_http: Any) -> None:
    leads = {lead["Id"] for lead in _rows(sf_http, "Lead")}
    # This year's calls only: older closed tasks are archived, and no query returns them.
    called = {t["WhoId"] for t in _rows(sf_http, "Task") if t["WhoId"] in leads
              and t["Subject"] == "Call" and t["ActivityDate"] >= "2026-01-01"}
    assert 0 < len(called) < len(leads)

    inner = "SELECT WhoId FROM Task WHERE Subject = 'Call' AND ActivityDate >= 2026-01-01"
    semi = sf.query_all(f"SELECT Id FROM Lead WHERE Id IN ({inner})")
    assert {r["Id"] for r in semi["records"]} == called
    anti = sf.query_all(f"SELECT Id FROM Lead WHERE Id NOT IN ({inner})")
    assert {r["Id"] for r in anti["records"]} == leads - called


def test_fields_standard_custom_and_all(sf: Any, sf_http: Any) -> None:
    described = sf.Lead.describe()["fields"]
    standard = [f["name"] for f in described if not f["custom"]]
    custom = [f["name"] for f in described if f["custom"]]
    assert custom
    row = sf.query("SELECT FIELDS(STANDARD) FROM Lead LIMIT 1")["records"][0]
    assert list(row)[1:] == standard
    row = sf.query("SELECT Id, FIELDS(CUSTOM) FROM Lead LIMIT 1")["records"][0]
    assert list(row)[1:] == ["Id", *custom]
    assert len(sf.query("SELECT FIELDS(ALL) FROM Lead LIMIT 200")["records"][0]) == (
        1 + len(described))
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT FIELDS(ALL) FROM Lead")
    assert "LIMIT of at most 200" in caught.value.content[0]["message"]


def test_to_label_reads_the_picklist_label(sf: Any) -> None:
    plain = sf.query("SELECT Id, Status FROM Lead ORDER BY Id LIMIT 5")["records"]
    labelled = sf.query("SELECT Id, toLabel(Status) FROM Lead ORDER BY Id LIMIT 5")["records"]
    aliased = sf.query("SELECT Id, toLabel(Status) shown FROM Lead ORDER BY Id LIMIT 5")["records"]
    assert [r["Status"] for r in labelled] == [r["Status"] for r in plain]
    assert [r["shown"] for r in aliased] == [r["Status"] for r in plain]
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT toLabel(LastName) FROM Lead")


@pytest.mark.parametrize("soql", [
    "SELECT Id, (SELECT Id FROM Nonsense) FROM Account",
    "SELECT Id FROM Lead WHERE Id IN (SELECT Subject FROM Task)",
    "SELECT Id FROM Lead WHERE LastName IN (SELECT WhoId FROM Task)",
    "SELECT Id FROM Lead WHERE Id IN (SELECT WhoId, WhatId FROM Task)",
])
def test_nested_queries_salesforce_refuses(sf: Any, soql: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(soql)
    assert caught.value.content[0]["errorCode"] in ("MALFORMED_QUERY", "INVALID_TYPE",
                                                    "INVALID_FIELD")
