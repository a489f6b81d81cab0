"""Shared fixtures for the rules engine tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crmsync.rules import RuleSet, load_ruleset, load_ruleset_text

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_RULES = ROOT / "rules" / "default.json"
#: A Monday morning.
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def default_rules() -> RuleSet:
    return load_ruleset(DEFAULT_RULES)


def one_rule(when: Any, *, extra: dict[str, Any] | None = None, **kwargs: Any) -> RuleSet:
    """A rule set whose only rule makes a contact a prospect when ``when`` holds."""
    doc = {
        "version": "t",
        "decisions": [{"output": "status", "hit": "first", "default": "lead",
                       "rules": [{"id": "r", "when": when, "then": "prospect",
                                  "because": "matched"}]}],
        **(extra or {}),
    }
    return load_ruleset_text(json.dumps(doc), filename="t.json", **kwargs)


def fires(when: Any, facts: dict[str, Any], *, now: datetime = NOW, **kwargs: Any) -> bool:
    """Whether ``when`` is true for ``facts`` (checked through both evaluators)."""
    rules = one_rule(when, **kwargs)
    compiled = rules.evaluate(facts, now=now)
    interpreted = rules.interpret(facts, now=now)
    assert compiled == interpreted
    return compiled.status == "prospect"


def truth(when: Any, facts: dict[str, Any], **kwargs: Any) -> bool | None:
    """Three-valued truth of ``when``: true / false / None (unknown).

    A condition C is false exactly when ``not C`` is true; unknown when neither holds.
    """
    if fires(when, facts, **kwargs):
        return True
    if fires({"not": when}, facts, **kwargs):
        return False
    return None
