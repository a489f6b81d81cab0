"""Issue 13 item 4: ``matches`` runs in linear time whatever the pattern (RE2)."""

# ruff: noqa: E501 - test tables read best one per line

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from crmsync.errors import InvalidFileError
from crmsync.rules import load_ruleset_text

from .conftest import fires

#: Catastrophic for a backtracking engine on a long value that (nearly) matches: seconds at 80
#: characters, far longer than anyone waits at 300.
PATHOLOGICAL = [r"\w*\w*\w*\w*\w*!", r"(a+)+$", r"(a|aa)*b", r"(\w+\s?)*!$"]

_EVALUATE_ALL = """
import json, sys
from datetime import UTC, datetime
from crmsync.rules import load_ruleset_text
out = []
for pattern in json.loads(sys.argv[1]):
    doc = {"version": "t", "decisions": [{"output": "status", "hit": "first", "default": "lead",
           "rules": [{"id": "r", "when": {"fact": "title", "matches": pattern},
                      "then": "prospect", "because": "x"}]}]}
    rules = load_ruleset_text(json.dumps(doc), filename="r.json")
    now = datetime(2026, 1, 5, tzinfo=UTC)
    out.append(rules.evaluate({"title": "a" * 300 + "#"}, now=now).status)
print(json.dumps(out))
"""


def test_patterns_that_backtrack_catastrophically_are_decided_on_a_300_character_title() -> None:
    # Run in a child so that an engine which backtracks fails this test instead of hanging
    # the suite; the timeout is a liveness guard (RE2 needs microseconds), not a measurement.
    done = subprocess.run([sys.executable, "-c", _EVALUATE_ALL, json.dumps(PATHOLOGICAL)],
                          capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout) == ["lead"] * len(PATHOLOGICAL)


@pytest.mark.parametrize(
    ("pattern", "title", "expected"),
    [
        (r"\w*\w*\w*\w*\w*!", "a" * 80 + "!", True),
        (r"(a+)+$", "aaaa", True),
        (r"\b(vp|vice president)\b", "Senior VP, Sales", True),
        (r"\b(vp|vice president)\b", "MVP Sales", False),
        (r"direktör", "DIREKTÖR Vertrieb", True),  # case folding beyond ASCII
        (r"^c[a-z]o$", "cto", True),
    ],
)
def test_patterns_match_case_insensitively(pattern, title, expected) -> None:
    assert fires({"fact": "title", "matches": pattern}, {"title": title}) is expected


def test_only_the_first_1000_characters_are_searched() -> None:
    when = {"fact": "title", "matches": "needle"}
    assert fires(when, {"title": "x" * 990 + "needle"})
    assert not fires(when, {"title": "x" * 1000 + "needle"})


@pytest.mark.parametrize(
    ("pattern", "message", "hint"),
    [
        (r"(vp)\s\1", "back-references (\\1, \\2, ...) are not supported", "match the repeated text"),
        (r"(?P<t>vp)(?P=t)", "named back-references", "match the repeated text"),
        (r"vp(?=\s)", "look-ahead ((?=...)) is not supported", "combine two comparisons"),
        (r"vp(?!\s+of)", "negative look-ahead", "\"not\""),
        (r"(?<=senior )vp", "look-behind", "\"all\" and \"not\""),
        (r"(?<!senior )vp", "look-behind", "\"all\" and \"not\""),
        (r"a++", "possessive repeats", "write a+ or a*"),
        (r"end\Z", "escape sequence is not supported", "\\z"),
        ("x" * 201, "longer than 200 characters", "\"any\""),
    ],
)
def test_what_re2_cannot_run_is_a_located_error_with_a_hint(pattern, message, hint) -> None:
    text = json.dumps({"version": "t", "decisions": [
        {"output": "status", "hit": "first", "default": "lead",
         "rules": [{"id": "r", "when": {"fact": "title", "matches": pattern},
                    "then": "prospect", "because": "x"}]}]}, indent=2)
    with pytest.raises(InvalidFileError) as caught:
        load_ruleset_text(text, filename="r.json")
    [problem] = caught.value.diagnostics
    assert problem.pointer == "/decisions/0/rules/0/when/matches"
    assert '"matches"' in text.splitlines()[problem.line - 1]
    assert message in problem.message
    assert problem.suggestion is not None and hint in problem.suggestion


def test_validation_prints_nothing_of_its_own_on_a_refused_pattern(capfd) -> None:
    doc = {"version": "t", "decisions": [
        {"output": "status", "hit": "first", "default": "lead",
         "rules": [{"id": "r", "when": {"fact": "title", "matches": "(x)\\1"},
                    "then": "prospect", "because": "x"}]}]}
    with pytest.raises(InvalidFileError):
        load_ruleset_text(json.dumps(doc), filename="r.json")
    assert capfd.readouterr().err == ""
