"""Aggregate SOQL through simple-salesforce (issue 10 item 3): GROUP BY with COUNT, COUNT(x),
COUNT_DISTINCT, MAX, MIN, SUM, AVG; ``expr0`` names and aliases; ORDER BY and LIMIT on groups."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest


def _opportunities(sf_http: Any) -> list[dict[str, Any]]:
    rows = sf_http("GET", "/_sandbox/records/Opportunity")[1]["records"]
    return [r for r in rows if not r["IsDeleted"]]


def test_group_by_with_every_aggregate(sf: Any, sf_http: Any) -> None:
    by_stage: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for opp in _opportunities(sf_http):
        by_stage[opp["StageName"]].append(opp)
    assert len(by_stage) >= 3

    result = sf.query(
        "SELECT StageName, COUNT(Id), SUM(Amount) total, AVG(Amount), MAX(CloseDate), "
        "MIN(Amount) smallest, COUNT_DISTINCT(AccountId) FROM Opportunity GROUP BY StageName")
    assert result["done"] is True and result["totalSize"] == len(by_stage)
    rows = {r["StageName"]: r for r in result["records"]}
    assert set(rows) == set(by_stage)
    for stage, opps in by_stage.items():
        row = rows[stage]
        amounts = [o["Amount"] for o in opps if o["Amount"] is not None]
        assert list(row) == ["attributes", "StageName", "expr0", "total", "expr1", "expr2",
                             "smallest", "expr3"]
        assert row["attributes"] == {"type": "AggregateResult"}
        assert row["expr0"] == len(opps)
        assert row["total"] == pytest.approx(sum(amounts))
        assert row["expr1"] == pytest.approx(sum(amounts) / len(amounts))
        assert row["expr2"] == max(o["CloseDate"] for o in opps)
        assert row["smallest"] == pytest.approx(min(amounts))
        assert row["expr3"] == len({o["AccountId"] for o in opps if o["AccountId"]})


def test_groups_follow_order_by_and_limit(sf: Any, sf_http: Any) -> None:
    stages = sorted({o["StageName"] for o in _opportunities(sf_http)}, key=str.casefold)
    result = sf.query("SELECT StageName FROM Opportunity GROUP BY StageName "
                      "ORDER BY StageName DESC LIMIT 2")
    assert [r["StageName"] for r in result["records"]] == stages[::-1][:2]
    assert result["totalSize"] == 2


def test_aggregates_without_group_by_give_one_row(sf: Any, sf_http: Any) -> None:
    opps = _opportunities(sf_http)
    result = sf.query("SELECT COUNT(Id) n, MAX(Amount) FROM Opportunity WHERE Amount != null")
    assert result["records"] == [{"attributes": {"type": "AggregateResult"},
                                  "n": sum(o["Amount"] is not None for o in opps),
                                  "expr0": max(o["Amount"] for o in opps if o["Amount"])}]
    empty = sf.query("SELECT COUNT(Id), SUM(Amount) FROM Opportunity WHERE Name = 'no such'")
    assert empty["records"] == [{"attributes": {"type": "AggregateResult"},
                                 "expr0": 0, "expr1": None}]


@pytest.mark.parametrize("soql", [
    "SELECT StageName, Name FROM Opportunity GROUP BY StageName",
    "SELECT SUM(Name) FROM Opportunity",
    "SELECT CreatedDate FROM Opportunity GROUP BY CreatedDate",
    "SELECT StageName FROM Opportunity GROUP BY StageName ORDER BY Name",
    "SELECT StageName FROM Opportunity GROUP BY StageName HAVING COUNT(Id) > 1",
])
def test_what_salesforce_refuses_is_refused(sf: Any, soql: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(soql)
    assert caught.value.content[0]["errorCode"] in ("MALFORMED_QUERY", "INVALID_FIELD")
