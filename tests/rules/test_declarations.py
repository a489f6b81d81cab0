"""Issue 11 §5: a rule file declares the custom facts it expects and the outputs it writes.

Declared facts make a file validate on its own (no field map); declared outputs are typed,
may list their allowed values, must be decided by a decision that fits their type, and every
evaluator (compiled, explaining, interpreted) hands their values over in ``Decision.extra``.
"""

# ruff: noqa: E501 - rule snippets and their expectations read best one per line

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from crmsync.errors import Diagnostic, InvalidFileError
from crmsync.rules import load_ruleset_text

from .conftest import NOW


def _doc(*decisions: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A rule file (a fresh copy: tests edit it) deciding the status and ``decisions``."""
    return json.loads(json.dumps({"version": "t", **top, "decisions": [
        {"output": "status", "hit": "first", "default": "lead", "rules": []}, *decisions]}))


TIER = {"output": "icp_tier", "hit": "first", "default": "Tier 3", "rules": [
    {"id": "tier_promoter", "when": {"fact": "nps", "at_least": 9}, "then": "Tier 1",
     "because": "promoter"},
    {"id": "tier_trial", "when": {"fact": "trial_signup", "is": True}, "then": "Tier 2",
     "because": "trial"}]}
SIGNALS = {"output": "signals", "hit": "collect", "rules": [
    {"id": "s_trial", "when": {"fact": "trial_signup", "is": True}, "then": "trial", "because": "trial"},
    {"id": "s_demo", "when": {"fact": "demo_requested", "is": True}, "then": "demo", "because": "demo"}]}
DECLARED = {"icp_tier": {"type": "str", "values": ["Tier 1", "Tier 2", "Tier 3"]},
            "signals": {"type": "list"}}


def problems(doc: dict[str, Any]) -> list[Diagnostic]:
    text = json.dumps(doc, indent=2)
    with pytest.raises(InvalidFileError) as caught:
        load_ruleset_text(text, filename="r.json")
    return caught.value.diagnostics


def _line_of(doc: dict[str, Any], fragment: str) -> int:
    """The 1-based line of the first line holding ``fragment`` in the indented file."""
    lines = json.dumps(doc, indent=2).splitlines()
    return next(i for i, line in enumerate(lines, 1) if fragment in line)


def test_declared_facts_validate_without_a_field_map() -> None:
    doc = _doc(TIER, facts={"nps": "number"}, outputs=DECLARED)
    doc["decisions"].append(SIGNALS)
    rules = load_ruleset_text(json.dumps(doc))
    assert rules.declared_facts == {"nps": "number"}
    assert list(rules.declared_outputs) == ["icp_tier", "signals"]
    # Without the declaration the same file names an unknown fact.
    del doc["facts"]
    [problem] = problems(doc)
    assert problem.message == "unknown fact 'nps'"


def test_a_declared_fact_is_type_checked_in_conditions() -> None:
    doc = _doc(TIER, facts={"nps": "str"}, outputs={"icp_tier": DECLARED["icp_tier"]})
    [problem] = problems(doc)
    assert problem.pointer == "/decisions/1/rules/0/when/at_least"
    assert "'at_least' does not apply to 'nps'" in problem.message


@pytest.mark.parametrize(("facts", "extra"), [
    ({"nps": 10, "trial_signup": True, "demo_requested": True}, {"icp_tier": "Tier 1", "signals": "trial; demo"}),
    ({"nps": 3, "trial_signup": "yes"}, {"icp_tier": "Tier 2", "signals": "trial"}),
    ({}, {"icp_tier": "Tier 3", "signals": None}),
], ids=["promoter", "trial", "nothing"])
def test_every_evaluator_hands_the_declared_outputs_over(facts: dict[str, Any], extra: dict[str, Any]) -> None:
    doc = _doc(TIER, SIGNALS, facts={"nps": "number"}, outputs=DECLARED)
    rules = load_ruleset_text(json.dumps(doc))
    compiled = rules.evaluate(facts, now=NOW)
    explained = rules.evaluate(facts, now=NOW, explain=True)
    interpreted = rules.interpret(facts, now=NOW)
    assert dict(compiled.extra) == dict(explained.extra) == dict(interpreted.extra) == extra


def test_a_file_without_declarations_has_no_extra() -> None:
    rules = load_ruleset_text(json.dumps(_doc(SIGNALS)))
    assert dict(rules.evaluate({"trial_signup": True}, now=NOW).extra) == {}


def test_a_long_collected_list_keeps_whole_items_within_the_field() -> None:
    items = [{"id": f"s{i}", "when": {"fact": "trial_signup", "is": True}, "then": f"signal number {i:02d} " + "x" * 20, "because": "b"} for i in range(20)]
    doc = _doc({"output": "signals", "hit": "collect", "rules": items}, outputs={"signals": {"type": "list"}})
    written = load_ruleset_text(json.dumps(doc)).evaluate({"trial_signup": True}, now=NOW).extra["signals"]
    assert len(written) <= 255 and written.endswith(" …")
    kept = written.removesuffix(" …").split("; ")
    assert kept == [item["then"] for item in items[: len(kept)]], "whole leading items, in order"


@pytest.mark.parametrize(("change", "pointer", "fragment", "hint"), [
    (lambda d: d["outputs"].update(next_step={"type": "str"}), "/outputs/next_step",
     "output 'next_step' is declared but no decision decides it", "add a decision"),
    (lambda d: d["outputs"].update(score={"type": "int"}), "/outputs/score",
     "'score' is one of crmsync's own outputs", None),
    (lambda d: d["outputs"].update(tasks_created={"type": "int"}), "/outputs/tasks_created",
     "'tasks_created' is reserved", None),
    (lambda d: d["outputs"].update(fired={"type": "list"}), "/outputs/fired",
     "'fired' is reserved", None),
    (lambda d: d["outputs"].update(title={"type": "str"}), "/outputs/title",
     "output 'title' has the name of a fact", None),
    (lambda d: d["outputs"]["signals"].update(type="bool"), "/decisions/2/hit",
     "output 'signals' is declared as yes/no", 'use "hit": "first"'),
    (lambda d: d["decisions"][1]["rules"][0].update(then="Tier 4"), "/decisions/1/rules/0/then",
     '"Tier 4" is not a valid icp_tier; expected one of: Tier 1, Tier 2, Tier 3', "did you mean 'Tier 3'?"),
    (lambda d: d["decisions"][1].update(default="tier 3"), "/decisions/1/default",
     '"tier 3" is not a valid icp_tier', "did you mean 'Tier 3'?"),
    (lambda d: d["decisions"][1]["rules"][0].update(then={"fact": "title"}), "/decisions/1/rules/0/then",
     "'icp_tier' has declared \"values\"; a rule sets one of them", "write one of: Tier 1"),
    (lambda d: d["outputs"]["signals"].update(values=["trial"]), "/decisions/2/rules/1/then",
     '"demo" is not a valid signals; expected one of: trial', None),
    (lambda d: d["outputs"]["icp_tier"].update(type="int"), "/decisions/1/default",
     "'icp_tier' is a whole number; it cannot be compared with text", None),
    (lambda d: d["facts"].update(employees="str"), "/facts/employees",
     "fact 'employees' is a whole number; it cannot be declared as text", 'declare it as "int"'),
], ids=["undecided", "builtin-name", "run-count-name", "test-key-name", "fact-name", "wrong-hit", "bad-value", "bad-default",
        "fact-into-values", "list-value", "values-on-int", "fact-retyped"])
def test_declaration_errors_are_located_with_a_suggestion(change: Any, pointer: str, fragment: str, hint: str | None) -> None:
    doc = _doc(TIER, SIGNALS, facts={"nps": "number"}, outputs=DECLARED)
    change(doc)
    found = [d for d in problems(doc) if d.pointer == pointer]
    assert found, [d.render() for d in problems(doc)]
    [problem] = [d for d in found if fragment in d.message] or [found[0]]
    assert fragment in problem.message, problem.render()
    if hint is not None:
        assert hint in (problem.suggestion or ""), problem.render()
    # Located on the line that holds what the pointer names.
    last = pointer.rsplit("/", 1)[-1]
    if not last.isdigit() and pointer.startswith(("/outputs", "/facts")):
        assert problem.line == _line_of(doc, f'"{last}"')


def test_a_values_list_of_a_number_output_is_refused_at_the_key() -> None:
    doc = _doc({"output": "seats", "hit": "sum", "rules": []}, outputs={"seats": {"type": "int", "values": ["1"]}})
    [problem] = problems(doc)
    assert problem.pointer == "/outputs/seats/values"
    assert problem.line == _line_of(doc, '"values"')


def test_rules_validate_checks_declared_facts_from_the_command_line(tmp_path: Path) -> None:
    doc = _doc(TIER, facts={"nps": "number"}, outputs={"icp_tier": DECLARED["icp_tier"]})
    good = tmp_path / "good.json"
    good.write_text(json.dumps(doc, indent=2), "utf-8")
    doc["decisions"][1]["rules"][0]["when"] = {"fact": "nsp", "at_least": 9}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc, indent=2), "utf-8")
    run = [sys.executable, "-m", "crmsync", "rules", "validate"]
    ok = subprocess.run([*run, str(good)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    failed = subprocess.run([*run, str(bad)], capture_output=True, text=True, check=False)
    assert failed.returncode == 2
    assert f"{bad}:{_line_of(doc, 'nsp')}:" in failed.stderr
    assert "did you mean 'nps'?" in failed.stderr and "Traceback" not in failed.stderr


def test_rules_validate_with_a_field_map_checks_it_provides_the_declarations(
    tmp_path: Path,
) -> None:
    root = Path(__file__).resolve().parents[2]
    doc = _doc({"output": "next_step", "hit": "first", "default": "call", "rules": []},
               TIER, facts={"nps": "number"},
               outputs={"next_step": {"type": "str"}, "icp_tier": DECLARED["icp_tier"]})
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc, indent=2), "utf-8")
    field_map = root / "connectors" / "hubspot.json"
    run = [sys.executable, "-m", "crmsync", "rules", "validate", str(path),
           "--field-map", str(field_map)]
    failed = subprocess.run(run, capture_output=True, text=True, check=False)
    assert failed.returncode == 2, failed.stdout
    # The default HubSpot map names icp_tier but neither next_step nor the nps fact.
    assert "declares output 'next_step', which has no CRM field" in failed.stderr
    assert "expects fact 'nps' (number)" in failed.stderr
    assert "icp_tier" not in failed.stderr
    assert f"{field_map}:" in failed.stderr and "Traceback" not in failed.stderr


def test_explain_and_evaluate_show_the_declared_outputs(tmp_path: Path) -> None:
    doc = _doc(TIER, facts={"nps": "number"}, outputs={"icp_tier": DECLARED["icp_tier"]})
    rules = tmp_path / "r.json"
    rules.write_text(json.dumps(doc, indent=2), "utf-8")
    contacts = tmp_path / "c.jsonl"
    contacts.write_text('{"id": "p1", "nps": 10}\n{"id": "p2"}\n', "utf-8")
    base = [sys.executable, "-m", "crmsync"]
    explained = subprocess.run([*base, "explain", "--rules", str(rules), "--input",
                                str(contacts), "--now", "2026-01-05T09:00:00Z"],
                               capture_output=True, text=True, check=False)
    assert explained.returncode == 0, explained.stderr
    assert 'outputs: icp_tier = "Tier 1"' in explained.stdout
    assert 'outputs: icp_tier = "Tier 3"' in explained.stdout
    evaluated = subprocess.run([*base, "evaluate", "--rules", str(rules), "--input",
                                str(contacts), "--now", "2026-01-05T09:00:00Z"],
                               capture_output=True, text=True, check=False)
    assert evaluated.returncode == 0, evaluated.stderr
    assert [json.loads(line)["outputs"] for line in evaluated.stdout.splitlines()] == [
        {"icp_tier": "Tier 1"}, {"icp_tier": "Tier 3"}]
