"""The workbench's pure parts: score bands, guard arithmetic, which facts ``--redact`` drops."""

from __future__ import annotations

import pytest

from crmsync.model import CANONICAL_FACTS
from crmsync.workbench.diff import BANDS, score_band
from crmsync.workbench.export import export_line, personal_facts
from crmsync.workbench.guards import GuardSyntaxError, parse_guard
from crmsync.workbench.population import Member


@pytest.mark.parametrize(("score", "band"), [(0, "0-19"), (19, "0-19"), (20, "20-39"),
                                             (79, "60-79"), (80, "80-100"), (100, "80-100"),
                                             (-5, "0-19"), (130, "80-100")])
def test_score_bands_cover_0_to_100_in_twenties(score: int, band: str) -> None:
    assert score_band(score) == band
    assert BANDS == ("0-19", "20-39", "40-59", "60-79", "80-100")


def _result(matrix: dict[str, dict[str, int]]) -> dict:
    return {"transitions": {"status": {"matrix": matrix}}}


MATRIX = {  # 40 leads (10 disqualified), 20 opportunities (1 disqualified), 5 disqualified
    "lead": {"lead": 30, "prospect": 0, "opportunity": 0, "disqualified": 10},
    "prospect": {"lead": 0, "prospect": 0, "opportunity": 0, "disqualified": 0},
    "opportunity": {"lead": 0, "prospect": 0, "opportunity": 19, "disqualified": 1},
    "disqualified": {"lead": 0, "prospect": 0, "opportunity": 0, "disqualified": 5},
}


@pytest.mark.parametrize(("guard", "count", "base", "tripped"), [
    ("status:lead->disqualified>25%", 10, 40, False),   # exactly 25 %: not more
    ("status:lead->disqualified>=25%", 10, 40, True),
    ("status:lead->disqualified>24.9%", 10, 40, True),
    ("status:opportunity->disqualified>5%", 1, 20, False),
    ("status:opportunity->disqualified>4%", 1, 20, True),
    ("status:*->disqualified>10", 11, 65, True),        # the diagonal's 5 do not count
    ("status:*->disqualified>11", 11, 65, False),
    ("status:prospect->*>0%", 0, 0, False),             # nobody was a prospect
    (" status : lead -> * > 9 ", 10, 40, True),
])
def test_guards_count_the_share_of_the_from_contacts(guard: str, count: int, base: int,
                                                     tripped: bool) -> None:
    checked = parse_guard(guard).check(_result(MATRIX))
    assert (checked["count"], checked["base"], checked["tripped"]) == (count, base, tripped)


def test_a_guard_syntax_error_carries_a_hint() -> None:
    with pytest.raises(GuardSyntaxError) as caught:
        parse_guard("status:lead->prospect")
    assert "OUTPUT:FROM->TO>LIMIT" in caught.value.hint


def test_redact_drops_names_addresses_and_phones_not_firmographics() -> None:
    custom = ["mobile_phone", "home_address", "nickname", "company_name", "account_name",
              "phone", "lead_source", "seats"]
    dropped = personal_facts([*CANONICAL_FACTS, *custom])
    assert dropped == {"email", "first_name", "last_name", "mobile_phone", "home_address",
                       "nickname", "phone"}


def test_a_redacted_line_keeps_the_domain_the_rules_read() -> None:
    member = Member("7", {"id": "7", "email": "Ana@Example.COM", "first_name": "Ana",
                          "employees": 12, "email_domain": None}, coerced=True)
    line = export_line(member, keep=None, drop=personal_facts(CANONICAL_FACTS))
    assert line == {"id": "7", "employees": 12, "email_domain": "example.com"}
    assert export_line(member, keep={"employees"}, drop=()) == {"id": "7", "employees": 12}
