"""Issue 11 §6: the reason field is what reps read.

Every ``because`` text of the default rules says something specific (never a bare status),
quotes its rule's thresholds from ``params`` (never a copy of a number), and fits the CRM
field (255 characters) even with worst-case params; a reason longer than the field is cut
after its last whole part, so the most important part (the headline) always survives.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from crmsync.model import STATUSES
from crmsync.rules import load_ruleset_text
from crmsync.rules.compile import ELLIPSIS, REASON_MAX, compose_reason

from .conftest import DEFAULT_RULES, NOW

DOC = json.loads(DEFAULT_RULES.read_text("utf-8"))
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")
#: The longest text a fact placeholder is assumed to print in a worst case: a company name, a
#: deal stage, a loss reason as reps type them. Longer values are cut by the reason's own rule.
FACT_WORST = 40
#: A numeric param at its worst: nine digits, printed with separators ("999,999,999").
PARAM_WORST = "999,999,999"


def _becauses() -> Iterator[tuple[str, str, str, dict[str, Any] | None]]:
    """(output, rule id, because text, the rule's condition) for every default rule."""
    for decision in DOC["decisions"]:
        if "default_because" in decision:
            yield decision["output"], f"{decision['output']}:default", decision[
                "default_because"], None
        for rule in decision["rules"]:
            yield decision["output"], rule["id"], rule["because"], rule.get("when")


def _params_read(node: Any) -> set[str]:
    """Params a condition compares with directly (``{"param": name}`` operands)."""
    if isinstance(node, dict):
        found = {node["param"]} if set(node) == {"param"} else set()
        return found.union(*(_params_read(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_params_read(v) for v in node))
    return set()


def _worst_case(text: str) -> str:
    """``text`` with every param at its widest and every fact printing FACT_WORST characters."""
    def fill(match: re.Match[str]) -> str:
        name = match.group(0)[1:-1].split("|")[0].strip()
        if name.startswith("params."):
            value = DOC["params"][name.removeprefix("params.")]
            return PARAM_WORST if isinstance(value, int | float) else str(value)
        return "x" * FACT_WORST
    return _PLACEHOLDER.sub(fill, text)


BECAUSES = list(_becauses())
IDS = [rule_id for _, rule_id, _, _ in BECAUSES]


@pytest.mark.parametrize(("output", "rule_id", "text", "when"), BECAUSES, ids=IDS)
def test_a_because_says_more_than_a_status(output: str, rule_id: str, text: str,
                                           when: Any) -> None:
    words = set(re.findall(r"[a-z]+", _PLACEHOLDER.sub(" ", text).lower()))
    assert words - set(STATUSES), f"{rule_id}: {text!r} names only a status"
    if output == "status":
        # The headline a rep reads first says why, not only which status.
        assert len(words - set(STATUSES)) >= 2, f"{rule_id}: {text!r}"


@pytest.mark.parametrize(("output", "rule_id", "text", "when"), BECAUSES, ids=IDS)
def test_every_number_in_a_because_comes_from_a_placeholder(output: str, rule_id: str,
                                                            text: str, when: Any) -> None:
    literal = _PLACEHOLDER.sub("", text)
    assert not re.search(r"\d", literal), (
        f"{rule_id}: {text!r} copies a number; quote the param as {{params.name}}")


@pytest.mark.parametrize(("output", "rule_id", "text", "when"), BECAUSES, ids=IDS)
def test_a_because_quotes_the_params_its_rule_compares_with(output: str, rule_id: str,
                                                            text: str, when: Any) -> None:
    for param in _params_read(when):
        assert f"{{params.{param}}}" in text, f"{rule_id} compares with {param}: {text!r}"


def test_the_default_rules_compare_with_no_literal_threshold_above_one() -> None:
    """Thresholds live in params (a count of "at least one" is not a threshold)."""
    def literals(node: Any) -> Iterator[Any]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("at_least", "at_most", "more_than", "less_than", "within_days",
                           "older_than_days") and isinstance(value, int | float):
                    yield value
                yield from literals(value)
        elif isinstance(node, list):
            for value in node:
                yield from literals(value)
    assert [v for v in literals(DOC) if v not in (0, 1)] == []


@pytest.mark.parametrize(("output", "rule_id", "text", "when"), BECAUSES, ids=IDS)
def test_a_because_fits_the_field_with_worst_case_params(output: str, rule_id: str, text: str,
                                                         when: Any) -> None:
    rendered = _worst_case(text)
    # A headline leaves at least half the field for the details that follow it.
    limit = REASON_MAX // 2 if output == "status" else REASON_MAX
    assert len(rendered) <= limit, f"{rule_id}: {len(rendered)} characters: {rendered!r}"


def test_a_long_reason_keeps_its_headline_and_whole_leading_parts() -> None:
    parts = ["Opportunity (qualified, with buying signals)",
             " + ".join(f"signal {i} " + "s" * 20 for i in range(4)),
             " + ".join(f"fit {i} " + "f" * 20 for i in range(6))]
    line = compose_reason(parts)
    assert len(line) <= REASON_MAX and line.endswith(ELLIPSIS)
    kept = line.removesuffix(ELLIPSIS)
    assert kept.startswith(parts[0] + ": " + parts[1] + "; ")
    # Cut between two items, never inside one: the kept text is whole items.
    items = [item for part in parts[1:] for item in part.split(" + ")]
    tail = kept[len(parts[0]) + 2:].replace("; ", " + ").split(" + ")
    assert tail == items[: len(tail)]
    # And as many as fit: one more item would not have.
    one_more = kept + " + " + items[len(tail)] + ELLIPSIS
    assert len(one_more) > REASON_MAX


def test_a_single_part_longer_than_the_field_is_cut_inside() -> None:
    line = compose_reason(["Lead " + "y" * 400])
    assert len(line) == REASON_MAX and line.startswith("Lead y") and line.endswith(ELLIPSIS)


def test_the_worst_case_default_reason_fits_and_leads_with_the_status() -> None:
    long = "z" * 120
    facts = {"id": "w", "title": "Chief Revenue Officer", "country": "US", "employees": 700,
             "budget_confirmed": True, "trial_signup": True, "demo_requested": True,
             "case_study_requested": True, "pricing_page_views": 999_999,
             "chat_conversations": 999_999, "inbound_from_decision_maker": True,
             "lost_deals": 1, "competitor": long, "closed_lost_reason": long,
             "last_activity_at": "2026-01-04T00:00:00Z"}
    rules = load_ruleset_text(DEFAULT_RULES.read_text("utf-8"))
    decision = rules.evaluate(facts, now=NOW)
    assert decision.reason == rules.interpret(facts, now=NOW).reason
    assert len(decision.reason) <= REASON_MAX and decision.reason.endswith(ELLIPSIS)
    headline = next(r["because"] for d in DOC["decisions"] if d["output"] == "status"
                    for r in d["rules"] if r["id"] == "prospect_qualified")
    assert decision.status == "prospect"  # a hard miss keeps it from being an opportunity
    assert decision.reason.startswith(headline + ": hard miss: chose " + "z" * 50)
