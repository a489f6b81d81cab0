"""Fuzzing the loader: random and mutated rule files give located errors, never a traceback."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmsync.errors import InvalidFileError
from crmsync.model import MISS_TYPES, STATUSES
from crmsync.rules import load_ruleset_text
from crmsync.rules.validate import ALL_OPERATORS

from .conftest import DEFAULT_RULES, NOW

DEFAULT_TEXT = DEFAULT_RULES.read_text(encoding="utf-8")
VOCABULARY = [
    "version", "decisions", "output", "hit", "rules", "id", "when", "then", "because", "add",
    "default", "min", "max", "all", "any", "not", "condition", "fact", "list", "lists",
    "conditions", "derived", "first_of", "tasks", "tests", "purpose", "subject", "body",
    "due_in_business_days", "priority", "approach", "facts", "expect", "name", "now", "reason",
    "status", "miss_type", "score", "employees", "country", "title", "first", "sum", "collect",
    *ALL_OPERATORS,
]
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.sampled_from(VOCABULARY), st.text(max_size=12))
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(VOCABULARY), children, max_size=5),
    ),
    max_leaves=40,
)


def _load_or_located_error(text: str) -> None:
    try:
        rules = load_ruleset_text(text, filename="fuzz.json")
    except InvalidFileError as error:
        for diagnostic in error.diagnostics:
            assert diagnostic.line >= 1 and diagnostic.col >= 1
            assert diagnostic.render().startswith("fuzz.json:")
        return
    decision = rules.evaluate({"country": "US", "employees": 100}, now=NOW)
    assert decision.status in STATUSES and decision.miss_type in MISS_TYPES


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_random_documents(doc) -> None:
    _load_or_located_error(json.dumps(doc))


@settings(max_examples=250, deadline=None)
@given(st.data())
def test_mutated_default_rules(data) -> None:
    text = DEFAULT_TEXT
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(text)))
        action = data.draw(st.sampled_from(["delete", "insert", "replace", "swap_word"]))
        if action == "delete":
            text = text[:position] + text[position + data.draw(st.integers(1, 20)):]
        elif action == "insert":
            text = text[:position] + data.draw(st.sampled_from(
                ['"', "{", "}", "[", "]", ",", ":", "\\", "null", '"x"', "1e999", "\ud800"]
            )) + text[position:]
        elif action == "replace":
            text = text[:position] + data.draw(st.text(max_size=3)) + text[position + 1:]
        else:
            word = data.draw(st.sampled_from(VOCABULARY))
            text = text.replace(f'"{word}"', f'"{data.draw(st.sampled_from(VOCABULARY))}"', 1)
    _load_or_located_error(text)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text(text) -> None:
    _load_or_located_error(text)


@settings(max_examples=150, deadline=None)
@given(
    leaf=st.fixed_dictionaries({
        "fact": st.sampled_from(["employees", "country", "title", "trial_signup", "created_at",
                                 "annual_revenue", "nope"]),
    }),
    op=st.sampled_from(ALL_OPERATORS),
    operand=documents,
)
def test_random_comparisons(leaf, op, operand) -> None:
    doc = {"version": "f", "decisions": [{"output": "status", "hit": "first", "default": "lead",
                                          "rules": [{"id": "r", "when": {**leaf, op: operand},
                                                     "then": "prospect", "because": "x"}]}]}
    _load_or_located_error(json.dumps(doc))
