"""Condition semantics: every operator, three-valued logic, outputs, hit policies, tasks."""

# ruff: noqa: E501 - rule snippets and their expectations read best one per line

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from crmsync.rules import load_ruleset_text
from crmsync.rules.dates import add_business_days

from .conftest import NOW, fires, truth

SERVED = {"fact": "country", "in": ["US", "DE"]}


class TestThreeValuedLogic:
    def test_comparison_with_missing_value_is_unknown(self) -> None:
        assert truth({"fact": "employees", "at_least": 50}, {}) is None
        assert truth({"fact": "employees", "at_least": 50}, {"employees": None}) is None

    def test_not_of_unknown_stays_unknown(self) -> None:
        # The classic trap: "not in the served countries" must not disqualify an unknown.
        assert truth({"not": SERVED}, {}) is None
        assert truth({"fact": "country", "not_in": ["US", "DE"]}, {}) is None
        assert truth({"fact": "country", "is_not": "US"}, {}) is None

    def test_known_values_are_two_valued(self) -> None:
        assert truth(SERVED, {"country": "US"}) is True
        assert truth(SERVED, {"country": "BR"}) is False
        assert truth({"not": SERVED}, {"country": "BR"}) is True

    @pytest.mark.parametrize(
        ("left", "right", "expected_all", "expected_any"),
        [
            (True, True, True, True),
            (True, False, False, True),
            (True, None, None, True),
            (False, None, False, None),
            (None, None, None, None),
            (False, False, False, False),
        ],
    )
    def test_all_and_any_combine_the_kleene_way(self, left, right, expected_all, expected_any):
        def leaf(value: bool | None, fact: str) -> tuple[dict, dict]:
            facts = {} if value is None else {fact: 1 if value else 0}
            return {"fact": fact, "at_least": 1}, facts

        a, fa = leaf(left, "form_submissions")
        b, fb = leaf(right, "page_views")
        facts = {**fa, **fb}
        assert truth({"all": [a, b]}, facts) is expected_all
        assert truth({"any": [a, b]}, facts) is expected_any

    def test_exists_and_missing_are_never_unknown(self) -> None:
        assert truth({"fact": "country", "exists": True}, {}) is False
        assert truth({"fact": "country", "missing": True}, {}) is True
        assert truth({"fact": "country", "missing": True}, {"country": "US"}) is False

    def test_fact_against_fact_is_unknown_when_either_is_missing(self) -> None:
        when = {"fact": "won_deals", "more_than": {"fact": "lost_deals"}}
        assert truth(when, {"won_deals": 2, "lost_deals": 1}) is True
        assert truth(when, {"won_deals": 1, "lost_deals": 1}) is False
        assert truth(when, {"won_deals": 2}) is None
        assert truth(when, {"lost_deals": 2}) is None


class TestOperators:
    @pytest.mark.parametrize(
        ("when", "facts", "expected"),
        [
            ({"fact": "employees", "between": [50, 5000]}, {"employees": 50}, True),
            ({"fact": "employees", "between": [50, 5000]}, {"employees": 5000}, True),
            ({"fact": "employees", "between": [50, 5000]}, {"employees": 5001}, False),
            ({"fact": "employees", "more_than": 10}, {"employees": 10}, False),
            ({"fact": "employees", "less_than": 10}, {"employees": 9}, True),
            ({"fact": "employees", "at_most": 10}, {"employees": 10}, True),
            ({"fact": "annual_revenue", "at_least": 1.5e6}, {"annual_revenue": 2_000_000}, True),
            ({"fact": "employees", "in": [1, 2]}, {"employees": 2}, True),
            ({"fact": "trial_signup", "is": True}, {"trial_signup": False}, False),
            ({"fact": "trial_signup", "is_not": True}, {"trial_signup": False}, True),
            ({"fact": "title", "contains": "vp"}, {"title": "SVP, Sales"}, True),
            ({"fact": "title", "contains": ["director", "head of"]}, {"title": "Head Of IT"}, True),
            ({"fact": "title", "contains": ["director", "head of"]}, {"title": "Engineer"}, False),
            ({"fact": "email_domain", "ends_with": [".edu", ".ac.uk"]}, {"email_domain": "OX.AC.UK"}, True),
            ({"fact": "email_domain", "starts_with": "mail."}, {"email_domain": " Mail.acme.com"}, True),
            ({"fact": "lead_status", "text_is": "bad timing"}, {"lead_status": "  Bad Timing "}, True),
            ({"fact": "lead_status", "is": "bad timing"}, {"lead_status": "Bad Timing"}, False),
            ({"fact": "title", "matches": "^c[a-z]o$"}, {"title": "CTO"}, True),
            ({"fact": "title", "matches": "^c[a-z]o$"}, {"title": "CTO of Acme"}, False),
            ({"fact": "closed_lost_at", "at_least": "2026-01-01"}, {"closed_lost_at": "2026-01-02T00:00:00Z"}, True),
            ({"fact": "closed_lost_at", "between": ["2025-01-01", "2025-12-31T23:59:59Z"]}, {"closed_lost_at": "2026-01-02"}, False),
        ],
    )
    def test_operator(self, when, facts, expected) -> None:
        assert truth(when, facts) is expected

    def test_within_and_older_than_days_count_back_from_now(self) -> None:
        within = {"fact": "last_activity_at", "within_days": 30}
        older = {"fact": "last_activity_at", "older_than_days": 30}
        assert truth(within, {"last_activity_at": "2025-12-07T09:00:00Z"}) is True  # exactly 29 days
        assert truth(within, {"last_activity_at": "2025-12-05T09:00:00Z"}) is False  # 31 days
        assert truth(older, {"last_activity_at": "2025-12-05T09:00:00Z"}) is True
        assert truth(older, {"last_activity_at": "2026-01-04T09:00:00Z"}) is False
        assert truth(within, {"last_activity_at": "2026-03-01T00:00:00Z"}) is True  # future
        assert truth(within, {}) is None

    def test_now_changes_the_answer_and_naive_now_is_utc(self) -> None:
        within = {"fact": "last_activity_at", "within_days": 1}
        facts = {"last_activity_at": "2026-01-05T08:00:00Z"}
        assert fires(within, facts, now=NOW)
        assert not fires(within, facts, now=datetime(2026, 1, 10, tzinfo=UTC))
        assert fires(within, facts, now=datetime(2026, 1, 5, 9, 0))

    def test_named_lists(self) -> None:
        extra = {"lists": {"served": ["US", "DE"]}}
        assert fires({"fact": "country", "in": {"list": "served"}}, {"country": "DE"}, extra=extra)
        assert not fires({"fact": "country", "in": {"list": "served"}}, {"country": "BR"}, extra=extra)


def _rules(decisions: list, **more) -> str:
    return json.dumps({"version": "t", "decisions": decisions, **more})


STATUS_FIRST = {"output": "status", "hit": "first", "default": "lead", "default_because": "Lead",
                "rules": [{"id": "p", "when": {"fact": "budget_confirmed", "is": True},
                           "then": "prospect", "because": "Prospect"}]}


class TestDecisions:
    def test_sum_adds_points_and_clamps(self) -> None:
        score = {"output": "score", "hit": "sum", "default": 5, "min": 0, "max": 30, "rules": [
            {"id": "a", "when": {"fact": "trial_signup", "is": True}, "add": 20, "because": "trial"},
            {"id": "b", "when": {"fact": "demo_requested", "is": True}, "add": 20, "because": "demo"},
            {"id": "c", "when": {"fact": "not_a_fit", "is": True}, "add": -100, "because": "no fit"},
        ]}
        rules = load_ruleset_text(_rules([STATUS_FIRST, score]))
        assert rules.evaluate({}, now=NOW).score == 5
        assert rules.evaluate({"trial_signup": True}, now=NOW).score == 25
        assert rules.evaluate({"trial_signup": True, "demo_requested": True}, now=NOW).score == 30
        assert rules.evaluate({"not_a_fit": True}, now=NOW).score == 0

    def test_collect_output_feeds_later_decisions_and_the_reason(self) -> None:
        signals = {"output": "signals", "hit": "collect", "rules": [
            {"id": "s_trial", "when": {"fact": "trial_signup", "is": True}, "then": "trial",
             "because": "trial signup"},
            {"id": "s_pricing", "when": {"fact": "pricing_page_views", "at_least": 3},
             "then": "pricing", "because": "{pricing_page_views} pricing-page views"},
        ]}
        status = {"output": "status", "hit": "first", "default": "lead", "default_because": "Lead",
                  "rules": [{"id": "opp", "when": {"output": "signals", "exists": True},
                             "then": "opportunity", "because": "Opportunity"},
                            {"id": "pricing_only", "when": {"output": "signals", "contains": "pricing"},
                             "then": "prospect", "because": "Prospect"}]}
        rules = load_ruleset_text(_rules([signals, status]))
        decision = rules.evaluate({"trial_signup": True, "pricing_page_views": 6}, now=NOW)
        assert decision.status == "opportunity"
        assert decision.reason == "Opportunity: trial signup + 6 pricing-page views"
        assert decision.rules == ("s_trial", "s_pricing", "opp")
        assert rules.evaluate({}, now=NOW).reason == "Lead"

    def test_first_hit_stops_at_the_first_true_rule(self) -> None:
        status = {"output": "status", "hit": "first", "default": "lead", "rules": [
            {"id": "dq", "when": {"fact": "country", "is": "BR"}, "then": "disqualified", "because": "dq"},
            {"id": "p", "when": {"fact": "employees", "at_least": 1}, "then": "prospect", "because": "p"},
        ]}
        rules = load_ruleset_text(_rules([status]))
        decision = rules.evaluate({"country": "BR", "employees": 10}, now=NOW)
        assert (decision.status, decision.rules) == ("disqualified", ("dq",))

    def test_reason_is_cut_to_255_characters(self) -> None:
        status = {"output": "status", "hit": "first", "default": "lead",
                  "default_because": "Lead {company}", "rules": []}
        rules = load_ruleset_text(_rules([status]))
        reason = rules.evaluate({"company": "x" * 1000}, now=NOW).reason
        assert len(reason) == 255 and reason.endswith("…")

    def test_decision_records_version_hash_and_contact_id(self) -> None:
        text = _rules([STATUS_FIRST])
        rules = load_ruleset_text(text)
        decision = rules.evaluate({"id": 42}, now=NOW)
        assert decision.contact_id == "42"
        assert decision.ruleset_version == "t"
        assert len(decision.ruleset_hash) == 64
        assert rules.evaluate({"id": 42}, now=NOW, contact_id="c-1").contact_id == "c-1"
        assert load_ruleset_text(text + " ").content_hash != rules.content_hash

    def test_facts_used_lists_exactly_what_the_rules_read(self) -> None:
        task = {"id": "t", "purpose": "p", "when": {"output": "status", "is": "prospect"},
                "subject": "Call {first_name}", "due_in_business_days": 1}
        rules = load_ruleset_text(_rules([STATUS_FIRST], tasks=[task]))
        assert rules.facts_used == {"budget_confirmed", "first_name"}
        assert rules.outputs == ("status",)


class TestTasks:
    def _rules(self, **task):
        base = {"id": "t", "purpose": "follow_up", "when": {"output": "status", "is": "prospect"},
                "subject": "Call {first_name|the contact} ({employees} staff, trial: {trial_signup})",
                "body": "Literal {{braces}}", "due_in_business_days": 1, "priority": "high",
                "approach": "direct", "close_when_obsolete": True}
        base.update(task)
        return load_ruleset_text(_rules([STATUS_FIRST], tasks=[base]))

    def test_task_is_rendered_with_facts_and_fallbacks(self) -> None:
        decision = self._rules().evaluate({"budget_confirmed": True, "employees": 1200.0,
                                           "trial_signup": False}, now=NOW)
        [task] = decision.tasks
        assert task.subject == "Call the contact (1200 staff, trial: no)"
        assert task.body == "Literal {braces}"
        assert (task.purpose, task.priority, task.approach, task.rule_id) == (
            "follow_up", "high", "direct", "t")
        assert task.close_when_obsolete is True
        assert task.due == date(2026, 1, 6)

    def test_no_task_when_condition_does_not_hold(self) -> None:
        assert self._rules().evaluate({}, now=NOW).tasks == ()

    def test_two_task_rules_with_one_purpose_give_one_task(self) -> None:
        first = {"id": "t1", "purpose": "p", "subject": "first", "due_in_business_days": 0,
                 "when": {"fact": "budget_confirmed", "is": True}}
        second = dict(first, id="t2", subject="second")
        rules = load_ruleset_text(_rules([STATUS_FIRST], tasks=[first, second]))
        decision = rules.evaluate({"budget_confirmed": True}, now=NOW)
        assert [t.subject for t in decision.tasks] == ["first"]
        assert decision == rules.interpret({"budget_confirmed": True}, now=NOW)

    @pytest.mark.parametrize(
        ("start", "days", "due"),
        [
            (date(2026, 1, 5), 1, date(2026, 1, 6)),  # Monday -> Tuesday
            (date(2026, 1, 9), 1, date(2026, 1, 12)),  # Friday -> Monday
            (date(2026, 1, 10), 1, date(2026, 1, 12)),  # Saturday -> Monday
            (date(2026, 1, 10), 0, date(2026, 1, 12)),  # due "today" on a Saturday -> Monday
            (date(2026, 1, 7), 0, date(2026, 1, 7)),
            (date(2026, 1, 5), 15, date(2026, 1, 26)),  # three weeks
        ],
    )
    def test_business_days(self, start, days, due) -> None:
        assert add_business_days(start, days) == due


def test_email_domain_is_derived_when_an_input_gives_only_the_email() -> None:
    # DESIGN.md §2 lists email_domain as derived: JSON Lines inputs rarely carry it.
    rules = load_ruleset_text(_rules([
        {"output": "status", "hit": "first", "default": "lead", "default_because": "Lead",
         "rules": [{"id": "personal", "when": {"fact": "email_domain", "in": ["gmail.com"]},
                    "then": "disqualified", "because": "personal email"}]},
    ]), filename="t.json")
    for engine in (rules.evaluate, rules.interpret):
        assert engine({"email": "Ana@GMAIL.com"}, now=NOW).status == "disqualified"
        assert engine({"email": "ana@acme.example"}, now=NOW).status == "lead"
        # A domain given explicitly wins over the email's.
        assert engine({"email": "a@gmail.com", "email_domain": "acme.example"}, now=NOW).status == "lead"
