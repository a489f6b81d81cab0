"""Every example in rules/README.md runs as written, and every rule file in rules/ is valid.

Examples are marked with an HTML comment before their code block:
``<!-- check: ruleset -->`` (a whole file: it loads and its embedded tests pass),
``<!-- check: condition -->`` and ``<!-- check: task -->`` (fragments, wrapped in a minimal
file), ``<!-- check: error -->`` (a broken file followed by a ``text`` block with the exact
diagnostics).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from crmsync.errors import InvalidFileError
from crmsync.rules import load_ruleset, load_ruleset_text
from crmsync.rules.selftest import run_tests

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "rules" / "README.md"
_BLOCK = re.compile(r"<!-- check: (\w+) -->\n```json\n(.*?)\n```(?:\n\n```text\n(.*?)\n```)?",
                    re.DOTALL)


def _examples(kind: str) -> list[tuple[str, str | None]]:
    text = README.read_text(encoding="utf-8")
    return [(m.group(2), m.group(3)) for m in _BLOCK.finditer(text) if m.group(1) == kind]


def _wrap_condition(condition: dict) -> str:
    return json.dumps({
        "version": "doc",
        "decisions": [{"output": "status", "hit": "first", "default": "lead",
                       "rules": [{"id": "r", "when": condition, "then": "prospect",
                                  "because": "example"}]}],
    })


def test_readme_has_examples_of_every_kind() -> None:
    assert len(_examples("ruleset")) >= 3
    assert len(_examples("condition")) >= 3
    assert len(_examples("task")) == 1
    assert len(_examples("error")) == 1
    assert len(_examples("output")) == 1


def test_evaluate_output_example_is_what_evaluate_writes() -> None:
    import orjson

    from crmsync.cli.rules_cmds import decision_json

    [(source, _)] = _examples("output")
    documented = json.loads(source)
    rules = load_ruleset(ROOT / "rules" / "default.json")
    case = rules.tree.tests[0]
    # Serialised exactly as `crmsync evaluate` does it.
    actual = orjson.loads(orjson.dumps(decision_json(rules.evaluate(case.facts, now=case.now))))
    assert documented.keys() == actual.keys()
    for key in ("id", "status", "miss_type", "score", "reason", "outputs"):
        assert documented[key] == actual[key]
    for rule_id in documented["rules"]:
        assert rule_id == "..." or rule_id in actual["rules"]
    [task] = documented["tasks"]
    assert task.keys() == actual["tasks"][0].keys()
    assert {k: v for k, v in task.items() if v != "..."} == {
        k: v for k, v in actual["tasks"][0].items() if task[k] != "..."}


@pytest.mark.parametrize("source", [s for s, _ in _examples("ruleset")])
def test_whole_rule_file_examples_load_and_their_tests_pass(source: str) -> None:
    suite = run_tests(load_ruleset_text(source, filename="README.md"))
    assert suite.cases, "an example rule file should carry at least one test"
    assert [c.failures for c in suite.failed] == []


@pytest.mark.parametrize("source", [s for s, _ in _examples("condition")])
def test_condition_examples_validate(source: str) -> None:
    load_ruleset_text(_wrap_condition(json.loads(source)), filename="README.md")


def test_task_example_validates() -> None:
    [(source, _)] = _examples("task")
    doc = json.loads(_wrap_condition({"fact": "country", "exists": True}))
    doc["decisions"].insert(0, {"output": "miss_type", "hit": "first", "default": "none",
                                "rules": []})
    doc["tasks"] = [json.loads(source)]
    load_ruleset_text(json.dumps(doc), filename="README.md")


def test_error_example_prints_exactly_the_documented_diagnostics() -> None:
    [(source, expected)] = _examples("error")
    with pytest.raises(InvalidFileError) as caught:
        load_ruleset_text(source, filename="rules.json")
    rendered = "\n".join(d.render() for d in caught.value.diagnostics)
    assert rendered == expected


@pytest.mark.parametrize("path", sorted((ROOT / "rules").glob("*.json")), ids=lambda p: p.name)
def test_every_shipped_rule_file_is_valid_and_its_tests_pass(path: Path) -> None:
    suite = run_tests(load_ruleset(path))
    assert [(c.name, c.failures) for c in suite.failed] == []
