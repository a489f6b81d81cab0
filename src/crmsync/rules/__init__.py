"""The rules engine: load, validate, compile, evaluate and explain JSON rule sets (pure).

Typical use::

    rules = load_ruleset("rules/default.json")
    decision = rules.evaluate(contact_facts, now=run_started_at)

Nothing here does I/O beyond reading the rule file, reads the clock, or knows about a CRM.
"""

from crmsync.rules.facts import CANONICAL_FACTS, FACT_TYPES, coerce
from crmsync.rules.ruleset import RuleSet, load_ruleset, load_ruleset_text
from crmsync.rules.validate import ruleset_schema

__all__ = [
    "CANONICAL_FACTS",
    "FACT_TYPES",
    "RuleSet",
    "coerce",
    "load_ruleset",
    "load_ruleset_text",
    "ruleset_schema",
]
