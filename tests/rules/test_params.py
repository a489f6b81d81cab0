"""Reasons that cannot drift (issue 7 §5): thresholds live in ``params`` and texts quote them."""

# ruff: noqa: E501 - rule snippets read best one per line

from __future__ import annotations

import json

import pytest

from crmsync.errors import Diagnostic, InvalidFileError
from crmsync.rules import load_ruleset_text

from .conftest import DEFAULT_RULES, NOW


def _default_doc() -> dict:
    return json.loads(DEFAULT_RULES.read_text(encoding="utf-8"))


def _problems(doc: dict) -> list[Diagnostic]:
    with pytest.raises(InvalidFileError) as caught:
        load_ruleset_text(json.dumps(doc, indent=2), filename="r.json")
    return caught.value.diagnostics


def _status_rule(when: dict, because: str, **extra) -> dict:
    return {"version": "t", **extra, "decisions": [
        {"output": "status", "hit": "first", "default": "lead",
         "rules": [{"id": "r", "when": when, "then": "prospect", "because": because}]}]}


@pytest.mark.parametrize(("minimum", "maximum", "quoted"), [(100, 5000, "100-5,000"), (25, 20000, "25-20,000")])
def test_changing_a_threshold_in_a_copy_of_default_json_moves_the_reason_with_it(minimum, maximum, quoted) -> None:
    doc = _default_doc()
    doc["params"]["icp_min_employees"] = minimum
    doc["params"]["icp_max_employees"] = maximum
    rules = load_ruleset_text(json.dumps(doc), filename="copy.json")
    below = minimum - 1
    facts = {"id": "c1", "country": "US", "employees": below, "budget_confirmed": True, "title": "CEO"}
    decision = rules.evaluate(facts, now=NOW)
    assert "lead_outside_icp_size" in decision.rules
    assert decision.reason.startswith(f"Lead (company size {below} is outside {quoted})")
    # The condition moved too: the old minimum no longer decides.
    inside = rules.evaluate({**facts, "employees": minimum}, now=NOW)
    assert "lead_outside_icp_size" not in inside.rules
    assert rules.interpret(facts, now=NOW) == decision


def test_day_thresholds_in_default_json_are_quoted_from_params() -> None:
    doc = _default_doc()
    doc["params"]["recent_activity_days"] = 45
    doc["params"]["many_page_views"] = 25
    rules = load_ruleset_text(json.dumps(doc), filename="copy.json")
    facts = {"id": "c2", "country": "US", "employees": 300, "page_views": 30,
             "last_activity_at": "2025-11-25T09:00:00Z"}  # 41 days before NOW: within 45, not 30
    decision = rules.evaluate(facts, now=NOW)
    assert {"score_recent_activity", "score_site_visits"} <= set(decision.rules)
    only_below = rules.evaluate({**facts, "page_views": 24}, now=NOW)
    assert "score_site_visits" not in only_below.rules


def test_the_nurture_task_body_quotes_its_threshold() -> None:
    doc = _default_doc()
    doc["params"]["nurture_after_days"] = 21
    rules = load_ruleset_text(json.dumps(doc), filename="copy.json")
    facts = {"id": "c3", "country": "DE", "employees": 800, "budget_confirmed": True,
             "title": "Head of Operations", "last_activity_at": "2025-12-01T10:00:00Z"}
    [task] = rules.evaluate(facts, now=NOW).tasks
    assert "no activity for 21 days or more" in task.body


def test_a_param_and_a_list_can_be_quoted_anywhere_a_template_goes() -> None:
    doc = _status_rule({"fact": "employees", "at_least": {"param": "big"}},
                       "at least {params.big} staff in {lists.places}",
                       params={"big": 12500}, lists={"places": ["US", "CA"]})
    rules = load_ruleset_text(json.dumps(doc), filename="p.json")
    assert rules.evaluate({"employees": 12500}, now=NOW).reason == "at least 12,500 staff in US, CA"
    assert rules.evaluate({"employees": 12499}, now=NOW).status == "lead"


def test_a_placeholder_naming_no_param_is_a_located_error_with_a_suggestion() -> None:
    doc = _status_rule({"fact": "employees", "at_least": {"param": "icp_min_employees"}},
                       "outside {params.icp_min_employes}", params={"icp_min_employees": 50})
    [problem] = _problems(doc)
    assert problem.pointer == "/decisions/0/rules/0/because"
    assert problem.message == "placeholder {params.icp_min_employes} names no param"
    assert problem.suggestion == "did you mean 'params.icp_min_employees'?"
    text = json.dumps(doc, indent=2).splitlines()
    assert '"because"' in text[problem.line - 1]


def test_a_condition_naming_no_param_is_a_located_error_with_a_suggestion() -> None:
    doc = _status_rule({"fact": "employees", "between": [{"param": "icp_min"}, {"param": "icp_maxx"}]},
                       "fit", params={"icp_min": 50, "icp_max": 5000})
    [problem] = _problems(doc)
    assert problem.pointer == "/decisions/0/rules/0/when/between/1/param"
    assert problem.message == "unknown param \"icp_maxx\""
    assert problem.suggestion == "did you mean 'icp_max'?"


def test_a_param_used_without_its_prefix_gets_a_hint() -> None:
    doc = _status_rule({"fact": "employees", "at_least": {"param": "icp_min"}}, "below {icp_min}",
                       params={"icp_min": 50})
    [problem] = _problems(doc)
    assert problem.message == "placeholder {icp_min} names no fact or output"
    assert problem.suggestion == "'icp_min' is a param: write {params.icp_min}"


def test_a_param_of_the_wrong_type_for_its_comparison_is_refused() -> None:
    doc = _status_rule({"fact": "employees", "at_least": {"param": "big"}}, "x", params={"big": "lots"})
    [problem] = _problems(doc)
    assert "'employees' is a whole number; it cannot be compared with text" in problem.message


def test_the_schema_accepts_params() -> None:
    import jsonschema

    from crmsync.rules import ruleset_schema

    jsonschema.validate(_default_doc(), ruleset_schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**_default_doc(), "params": {"Bad Name": 1}}, ruleset_schema())
