"""The backtest's arithmetic: lift tables, precision/recall and history shares, by hand.

Each record's facts are chosen so the default rules give a known status and score (see the
comments); the expected tables are counted by hand below, not produced by the code under test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crmsync.connectors.asof import CURRENT, HISTORY, OutcomeRecord
from crmsync.rules import load_ruleset
from crmsync.workbench.backtest import run_backtest

ROOT = Path(__file__).resolve().parents[2]
CLOSE = datetime(2026, 6, 1, tzinfo=UTC)

#: Opportunity, score 65 (ICP fit 20 + decision maker 10 + budget 10 + trial 15 + pricing 10).
OPPORTUNITY = {"title": "VP of Sales", "country": "US", "employees": 200, "industry": "Software",
               "budget_confirmed": True, "trial_signup": True, "pricing_page_views": 6,
               "email_domain": "northwind.io"}
#: Prospect, score 40 (ICP fit 20 + decision maker 10 + budget 10).
PROSPECT = {"title": "Head of Operations", "country": "DE", "employees": 800,
            "budget_confirmed": True}
#: Lead, score 5 (a form).
LEAD = {"country": "US", "form_submissions": 1}
#: Disqualified (country not served), score 0.
DISQUALIFIED = {"country": "BR"}


def _record(n: int, facts: dict[str, Any], outcome: str, current: tuple[str, ...] = ()
            ) -> OutcomeRecord:
    sources = {f: CURRENT if f in current else HISTORY for f in facts}
    return OutcomeRecord(f"c{n}", "contacts", f"d{n}", outcome, CLOSE, CLOSE,
                         {"id": f"c{n}", **facts}, {"id": CURRENT, **sources})


@pytest.fixture(scope="module")
def result() -> Any:
    rules = load_ruleset(ROOT / "rules" / "default.json")
    records = [
        _record(1, OPPORTUNITY, "won"), _record(2, OPPORTUNITY, "won"),
        _record(3, OPPORTUNITY, "won"), _record(4, OPPORTUNITY, "lost"),
        _record(5, PROSPECT, "won"), _record(6, PROSPECT, "lost"),
        _record(7, LEAD, "lost", ("country",)), _record(8, LEAD, "lost", ("country",)),
        _record(9, LEAD, "lost", ("country",)),
        _record(10, DISQUALIFIED, "lost", ("country",)),
    ]
    return run_backtest(rules, records, since=CLOSE - timedelta(days=30), until=CLOSE)


def test_statuses_and_scores_are_what_the_facts_give(result: Any) -> None:
    got = {j.contact_id: (j.status, j.score) for j in result.judged}
    assert got == {"c1": ("opportunity", 65), "c2": ("opportunity", 65),
                   "c3": ("opportunity", 65), "c4": ("opportunity", 65),
                   "c5": ("prospect", 40), "c6": ("prospect", 40), "c7": ("lead", 5),
                   "c8": ("lead", 5), "c9": ("lead", 5), "c10": ("disqualified", 0)}


def test_lift_per_status(result: Any) -> None:
    assert (result.contacts, result.won, result.lost, result.base_rate) == (10, 4, 6, 0.4)
    rows = {r.label: (r.contacts, r.won, r.lost, r.win_rate, r.lift) for r in result.by_status}
    assert rows == {
        "lead": (3, 0, 3, 0.0, 0.0),
        "prospect": (2, 1, 1, 0.5, pytest.approx(1.25)),
        "opportunity": (4, 3, 1, 0.75, pytest.approx(1.875)),
        "disqualified": (1, 0, 1, 0.0, 0.0),
    }


def test_lift_per_score_band(result: Any) -> None:
    rows = {r.label: (r.contacts, r.won, r.win_rate, r.lift) for r in result.by_band}
    assert rows == {
        "0-19": (4, 0, 0.0, 0.0),
        "20-39": (0, 0, None, None),
        "40-59": (2, 1, 0.5, pytest.approx(1.25)),
        "60-79": (4, 3, 0.75, pytest.approx(1.875)),
        "80-100": (0, 0, None, None),
    }


def test_opportunity_precision_and_recall(result: Any) -> None:
    opp = result.opportunity
    assert (opp.predicted, opp.true_positives, opp.precision, opp.recall) == (4, 3, 0.75, 0.75)


def test_share_of_facts_from_current_values(result: Any) -> None:
    # History: 8 facts x 4 opportunities + 4 x 2 prospects + 1 (form) x 3 leads = 43;
    # current: the leads' and the disqualified contact's country = 4 (ids never count).
    assert result.current_share == pytest.approx(4 / 47)
    assert result.without_history == 1
    assert result.current_facts == {"country": 4}
    data = result.to_json()
    assert data["facts_from_current"] == {"country": 4}
    assert data["by_status"][2]["label"] == "opportunity"


def test_the_close_is_the_rules_clock() -> None:
    rules = load_ruleset(ROOT / "rules" / "default.json")
    recent = {**LEAD, "last_activity_at": CLOSE - timedelta(days=5)}
    stale = {**LEAD, "last_activity_at": CLOSE - timedelta(days=120)}
    done = run_backtest(rules, [_record(1, recent, "won"), _record(2, stale, "lost")],
                        since=CLOSE - timedelta(days=1), until=CLOSE)
    # Active within 30 days of the close: +10; inactive 90+ days before it: -15 (floor 0).
    assert [j.score for j in done.judged] == [15, 0]


def test_html_page_has_tables_and_the_calibration_chart(result: Any) -> None:
    from crmsync.workbench.backtest_html import render_html

    page = render_html(result)
    assert "aria-label='calibration chart'" in page
    assert page.count("<svg") == 2  # light and dark
    assert "<td>opportunity</td><td class='n'>4</td><td class='n'>3</td>" in page
    assert "1.88x" in page and "75.0%" in page
