"""``evaluate(..., coerced=True)``: facts a field map already coerced skip the type tests and
decide exactly as the coercing path does (issue 9 §5: coercion guards in one place)."""

from __future__ import annotations

from hypothesis import given, settings

from crmsync.coerce import coerce
from crmsync.rules import CANONICAL_FACTS

from .conftest import NOW
from .test_properties import contacts, nows


def _as_a_field_map_delivers(contact: dict) -> dict:
    """Every canonical fact coerced by the shared policy, as a connector hands it to a run."""
    return {name: coerce(value, CANONICAL_FACTS[name]) if name in CANONICAL_FACTS else value
            for name, value in contact.items()}


@settings(max_examples=300, deadline=None)
@given(contact=contacts, now=nows)
def test_coerced_facts_decide_the_same_on_both_paths(default_rules, contact, now) -> None:
    canonical = _as_a_field_map_delivers(contact)
    expected = default_rules.evaluate(contact, now=now)
    assert default_rules.evaluate(canonical, now=now, coerced=True) == expected
    assert default_rules.evaluate(canonical, now=now) == expected


def test_a_broken_promise_falls_back_instead_of_crashing(default_rules) -> None:
    # "lots" cannot be compared with a number: the fast path raises, the interpreter decides.
    facts = {"id": "c1", "country": "US", "employees": "lots", "last_activity_at": "2026-01-02"}
    decision = default_rules.evaluate(facts, now=NOW, coerced=True)
    assert decision == default_rules.evaluate(facts, now=NOW)


def test_the_coerced_path_really_skips_the_type_tests(default_rules) -> None:
    # Documented: text "yes" for a yes/no fact is true only when the engine coerces it.
    facts = {"id": "c2", "country": "US", "budget_confirmed": "yes"}
    assert "qual_budget" in default_rules.evaluate(facts, now=NOW).rules
    assert "qual_budget" not in default_rules.evaluate(facts, now=NOW, coerced=True).rules
