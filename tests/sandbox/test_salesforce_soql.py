"""The SOQL tokenizer and parser on their own (no server): grammar corners and error positions."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from crmsync.sandbox.salesforce import soql
from crmsync.sandbox.salesforce.soql import SoqlError


def test_tokens_cover_literals() -> None:
    kinds = [(t.kind, t.value) for t in soql.tokenize(
        "x = 'it\\'s' AND y >= -1.5 AND d = 2024-05-01 AND t < 2024-05-01T10:00:00.123+02:00 "
        "AND z <> null"
    )]
    assert ("STRING", "it's") in kinds
    assert ("NUMBER", -1.5) in kinds
    assert ("DATE", date(2024, 5, 1)) in kinds
    assert ("DATETIME", datetime(2024, 5, 1, 8, 0, 0, 123000, tzinfo=UTC)) in kinds
    assert ("OP", "!=") in kinds
    assert kinds[-1] == ("EOF", None)


def test_full_sync_query_parses() -> None:
    query = soql.parse(
        "select Id, Account.Name, COUNT(Id) cnt from Contact "
        "where (SystemModstamp > 2024-05-01T00:00:00Z and IsDeleted = false) "
        "or not Email like '%x\\_y%' "
        "order by SystemModstamp desc nulls first, Id limit 10 offset 5"
    )
    assert query.sobject == "Contact"
    assert query.select[1] == soql.Path(("Account", "Name"))
    assert query.select[2] == soql.Aggregate("COUNT", soql.Path(("Id",)), "cnt")
    assert isinstance(query.where, soql.BoolOp) and query.where.op == "OR"
    assert isinstance(query.where.items[1], soql.Not)
    assert query.order_by[0] == soql.OrderItem(soql.Path(("SystemModstamp",)), True, False)
    assert query.order_by[1] == soql.OrderItem(soql.Path(("Id",)), False, None)
    assert (query.limit, query.offset) == (10, 5)


def test_relative_dates() -> None:
    where = soql.parse("SELECT Id FROM Lead WHERE CreatedDate = LAST_N_DAYS:30").where
    assert where.value == soql.Literal("relative", soql.RelativeDate("LAST_N_DAYS", 30))
    today = soql.parse("SELECT Id FROM Lead WHERE CreatedDate = TODAY").where
    assert today.value == soql.Literal("relative", soql.RelativeDate("TODAY"))


def test_count_only() -> None:
    assert soql.parse("SELECT COUNT() FROM Lead").count_only
    with pytest.raises(SoqlError):
        soql.parse("SELECT COUNT(), Id FROM Lead")


@pytest.mark.parametrize(
    "text",
    [
        "SELECT FROM Contact",
        "SELECT Id Contact",
        "SELECT Id FROM Contact WHERE Email = 'unterminated",
        "SELECT Id FROM Contact WHERE a = 1 OR b = 2 AND c = 3",
        "SELECT Id FROM Contact WHERE Email LIKE 5",
        "SELECT Id FROM Contact LIMIT -1",
        "SELECT Id FROM Contact ORDER BY Id NULLS SOMETIMES",
        "SELECT Id FROM Contact WHERE Id IN ()",
        "SELECT Id FROM Contact extra",
    ],
)
def test_malformed(text: str) -> None:
    with pytest.raises(SoqlError) as caught:
        soql.parse(text)
    assert caught.value.code == "MALFORMED_QUERY"
    assert "ERROR at Row:1:Column:" in caught.value.message


def test_error_points_at_the_token() -> None:
    with pytest.raises(SoqlError) as caught:
        soql.parse("SELECT Id FROM Contact WHERE a = 1 OR b = 2 AND c = 3")
    assert "Column:45" in caught.value.message and "unexpected token: 'AND'" in caught.value.message
