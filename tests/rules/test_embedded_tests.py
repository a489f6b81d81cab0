"""Issue 13 item 11: embedded rule tests refuse example facts of the wrong type."""

# ruff: noqa: E501 - rule snippets read best one per line

from __future__ import annotations

import json

import pytest

from crmsync.errors import InvalidFileError
from crmsync.rules import load_ruleset_text


def _with_test(facts: dict) -> str:
    return json.dumps({"version": "t", "decisions": [
        {"output": "status", "hit": "first", "default": "lead",
         "rules": [{"id": "big", "when": {"fact": "employees", "at_least": 50}, "then": "prospect", "because": "big"}]}],
        "tests": [{"name": "example", "facts": facts, "expect": {"status": "lead"}}]}, indent=2)


@pytest.mark.parametrize(
    ("fact", "value", "words", "hint"),
    [
        ("employees", "lots", "a whole number", "write a whole number"),
        ("employees", True, "a whole number", "write a whole number"),
        ("budget_confirmed", "maybe", "yes/no", "write true or false"),
        ("last_activity_at", "last tuesday", "a date/time", "ISO 8601"),
        ("title", ["VP"], "text", "write text in quotes"),
        ("annual_revenue", {"amount": 5}, "a number", "write a number"),
    ],
)
def test_a_wrong_typed_example_fact_is_a_located_error(fact, value, words, hint) -> None:
    text = _with_test({"country": "US", fact: value})
    with pytest.raises(InvalidFileError) as caught:
        load_ruleset_text(text, filename="r.json")
    [problem] = caught.value.diagnostics
    assert problem.pointer == f"/tests/0/facts/{fact}"
    assert f'"{fact}"' in text.splitlines()[problem.line - 1]
    assert problem.message.startswith(f"fact '{fact}' is {words}; ")
    assert problem.message.endswith("so the test would see it as missing")
    assert problem.suggestion is not None and hint in problem.suggestion


@pytest.mark.parametrize(
    "facts",
    [
        {"employees": "1,200", "budget_confirmed": "yes", "last_activity_at": "1767225600000"},
        {"employees": 12.7, "budget_confirmed": 1, "last_activity_at": "2026-01-02"},
        {"employees": None, "title": "", "country": "  "},
        {"title": 42},
    ],
)
def test_values_a_crm_sends_and_explicit_missing_values_are_accepted(facts) -> None:
    load_ruleset_text(_with_test(facts), filename="r.json")
