"""Rule-file errors: located (file:line:col + JSON pointer), all at once, with hints."""

# ruff: noqa: E501 - rule snippets and their expectations read best one per line

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crmsync.errors import Diagnostic, InvalidFileError
from crmsync.rules import load_ruleset, load_ruleset_text
from crmsync.rules.jsonpos import JSONPositionError, parse


def problems(source: str | dict, **kwargs) -> list[Diagnostic]:
    text = source if isinstance(source, str) else json.dumps(source, indent=2)
    with pytest.raises(InvalidFileError) as caught:
        load_ruleset_text(text, filename="r.json", **kwargs)
    assert caught.value.diagnostics
    return caught.value.diagnostics


def messages(source: str | dict, **kwargs) -> list[tuple[str, str]]:
    return [(d.pointer, d.message) for d in problems(source, **kwargs)]


def status(*rules: dict, **decision) -> dict:
    return {"version": "t", "decisions": [
        {"output": "status", "hit": "first", "default": "lead", "rules": list(rules), **decision}]}


def rule(rule_id: str = "r", when: dict | None = None, then="prospect") -> dict:
    result = {"id": rule_id, "then": then, "because": "x"}
    if when is not None:
        result["when"] = when
    return result


class TestBrokenJson:
    @pytest.mark.parametrize(
        ("text", "line", "col", "fragment"),
        [
            ('{\n  "version": "1",\n  "decisions": [\n}', 4, 1, "expected a value"),
            ('{\n  "version": "1"\n  "decisions": []\n}', 3, 3, "missing comma"),
            ('{"a": 1,}', 1, 9, "trailing comma"),
            ("{'a': 1}", 1, 2, "property name in double quotes"),
            ('{"a": "unterminated', 1, 7, "unterminated string"),
            ('{"a": 1} x', 1, 10, "after the end"),
            ("", 1, 1, "empty"),
            ('{"a": NaN}', 1, 7, "NaN"),
            ('{"a": 1, "a": 2}', 1, 10, "duplicate key"),
        ],
    )
    def test_broken_json_is_located(self, text, line, col, fragment) -> None:
        [diagnostic] = problems(text)
        assert (diagnostic.line, diagnostic.col) == (line, col)
        assert fragment in diagnostic.message
        assert diagnostic.render().startswith(f"r.json:{line}:{col}: error: invalid JSON")

    @pytest.mark.parametrize(
        ("text", "pointer", "hint"),
        [
            ('{"version": "1", "params": {"a": 1,,}}', "/params", "a comma with nothing"),
            ('{"params": {"a": [1, 2 3]}}', "/params/a", None),
            ("{'a': 1}", "", "a comma with nothing"),
            ('{"a": {"b": \'x\'}}', "/a/b", 'JSON writes text as "text"'),
        ],
    )
    def test_broken_json_names_where_in_the_document(self, text, pointer, hint) -> None:
        [diagnostic] = problems(text)
        assert diagnostic.pointer == pointer
        if hint is None:
            assert diagnostic.suggestion is None
        else:
            assert hint in (diagnostic.suggestion or "")

    def test_parser_matches_stdlib_on_valid_json(self) -> None:
        text = '{"a": [1, 2.5, -3e2, true, false, null, "\\u00e9\\n\\ud83d\\ude00"], "b": {}}'
        value, smap = parse(text)
        assert value == json.loads(text)
        assert smap.locate("/a/2") == (1, text.index("-3e2") + 1)
        assert smap.locate("/b", key=True) == (1, text.index('"b"') + 1)
        assert smap.locate("/b/missing/deeper") == (1, text.index("{}") + 1)

    def test_deep_nesting_is_refused_not_a_crash(self) -> None:
        with pytest.raises(JSONPositionError, match="nested deeper"):
            parse("[" * 5000 + "]" * 5000)


class TestSchema:
    def test_unknown_key_has_did_you_mean_at_the_key(self) -> None:
        text = '{\n  "version": "t",\n  "decisions": [],\n  "descripton": "x"\n}'
        found = {d.message: d for d in problems(text)}
        d = found["unknown key 'descripton'"]
        assert (d.line, d.col, d.pointer) == (4, 3, "/descripton")
        assert d.suggestion == "did you mean 'description'?"

    def test_missing_required_keys_and_bad_enums(self) -> None:
        doc = {"decisions": [{"output": "status", "hit": "frist", "rules": []}]}
        got = messages(doc)
        assert ("", "missing required key 'version'") in got
        assert any(p == "/decisions/0/hit" and "not one of" in m for p, m in got)
        [hint] = [d.suggestion for d in problems(doc) if d.pointer == "/decisions/0/hit"]
        assert hint == "did you mean 'first'?"

    def test_a_rule_set_must_decide_status(self) -> None:
        doc = {"version": "t", "decisions": [{"output": "score", "hit": "sum", "rules": []}]}
        assert any("no decision for 'status'" in m for _, m in messages(doc))

    def test_not_an_object(self) -> None:
        assert messages("[1, 2]") == [("", "a rule file is one JSON object ({ ... })")]


class TestSemantics:
    def test_unknown_fact_with_suggestion(self) -> None:
        [d] = problems(status(rule(when={"fact": "employes", "at_least": 5})))
        assert d.message == "unknown fact 'employes'"
        assert d.pointer == "/decisions/0/rules/0/when/fact"
        assert d.suggestion == "did you mean 'employees'?"

    def test_custom_facts_from_a_field_map_are_known(self) -> None:
        doc = status(rule(when={"fact": "nps_score", "at_least": 9}))
        assert problems(doc)[0].message == "unknown fact 'nps_score'"
        rules = load_ruleset_text(json.dumps(doc), extra_facts={"nps_score": "int"})
        assert "nps_score" in rules.facts_used

    def test_bad_extra_fact_declaration_is_reported(self) -> None:
        got = messages(status(), extra_facts={"Bad Name": "int", "ok_name": "decimal"})
        assert len(got) == 2

    @pytest.mark.parametrize(
        ("when", "fragment"),
        [
            ({"fact": "employees", "is": "ten"}, "'employees' is a whole number; it cannot be compared with text"),
            ({"fact": "employees", "contains": "x"}, "'contains' does not apply to 'employees'"),
            ({"fact": "trial_signup", "at_least": 1}, "'at_least' does not apply to 'trial_signup'"),
            ({"fact": "country", "within_days": 3}, "'within_days' does not apply"),
            ({"fact": "country", "in": ["US", 1]}, "it cannot be compared with a number 1"),
            ({"fact": "created_at", "at_least": "last tuesday"}, "is not an ISO 8601 date"),
            ({"fact": "employees", "between": [100, 10]}, "range is empty"),
            ({"fact": "employees", "at_least": {"fact": "country"}}, "cannot compare 'employees'"),
            ({"fact": "country", "exists": False}, "'exists' takes true"),
            ({"fact": "country", "in": {"list": "nope"}}, "unknown list"),
            ({"fact": "title", "matches": "(x)\\1"}, "back-references"),
            ({"fact": "title", "matches": "[unclosed"}, "not a valid regular expression"),
            ({"fact": "title", "matches": "vp(?!\\s+of)"}, "look-ahead"),
            ({"fact": "employees"}, "no operator"),
            ({"fact": "employees", "at_least": 1, "at_most": 5}, "one operator per comparison"),
            ({"fact": "employees", "greater_than": 1}, "unknown operator 'greater_than'"),
            ({"fact": "country", "output": "status", "is": "x"}, "either a fact or an output"),
            ({"al": []}, "a comparison needs"),
            ({"all": []}, "non-empty list"),
            ({"condition": "nope"}, "unknown named condition"),
            ({"output": "status", "is": "lead"}, "not decided yet"),
            ({"output": "stauts", "is": "lead"}, "unknown output"),
            ("country is US", "expected a condition object"),
        ],
    )
    def test_condition_problems(self, when, fragment) -> None:
        got = messages(status(rule(when=when)))
        assert any(fragment in message for _, message in got), got

    def test_operator_hints(self) -> None:
        [d] = problems(status(rule(when={"fact": "employees", "at_least": "50"})))
        assert d.suggestion == "write the number without quotes: 50"
        [d] = problems(status(rule(when={"fact": "decision_maker", "is": "yes"})))
        assert d.suggestion == "write true without quotes"
        [d] = problems(status(rule(when={"fact": "decision_maker", "is": "No"})))
        assert d.suggestion == "write false without quotes"
        [d] = problems(status(rule(when={"fact": "decision_maker", "is": "maybe"})))
        assert d.suggestion == "compare it with true or false, without quotes"
        [d] = problems(status(rule(when={"fact": "employees", "greater_than": 1})))
        assert d.suggestion == "did you mean 'more_than'?"

    def test_invalid_status_value_with_suggestion(self) -> None:
        [d] = problems(status(rule(then="oportunity")))
        assert d.pointer == "/decisions/0/rules/0/then"
        assert d.suggestion == "did you mean 'opportunity'?"

    def test_duplicate_rule_ids(self) -> None:
        doc = status(rule("a", {"fact": "country", "is": "US"}), rule("a", {"fact": "country", "is": "DE"}))
        [d] = problems(doc)
        assert d.message.startswith("duplicate rule id 'a'") and d.pointer == "/decisions/0/rules/1/id"

    def test_unreachable_after_catch_all_and_after_same_condition(self) -> None:
        doc = status(rule("always"), rule("never", {"fact": "country", "is": "US"}))
        assert messages(doc) == [("/decisions/0/rules/1/id", "rule 'never' can never fire: rule "
                                  "'always' above it has no condition, so it always decides")]
        same = {"fact": "country", "is": "US"}
        doc = status(rule("a", same), rule("b", dict(same)))
        assert "above it has the same condition" in messages(doc)[0][1]

    def test_named_condition_cycles(self) -> None:
        doc = status(rule(when={"condition": "a"}))
        doc["conditions"] = {"a": {"condition": "b"}, "b": {"condition": "a"}}
        assert any("cycle: a -> b -> a" in m for _, m in messages(doc))

    def test_derived_fact_cannot_read_outputs_and_cycles_are_caught(self) -> None:
        doc = status(rule(when={"fact": "x", "is": True}))
        doc["derived"] = {"x": {"when": {"fact": "y", "is": True}}, "y": {"when": {"fact": "x", "is": True}}}
        assert any("cycle" in m for _, m in messages(doc))
        doc["derived"] = {"x": {"when": {"output": "status", "is": "lead"}}}
        assert any("cannot read an output" in m for _, m in messages(doc))

    def test_named_condition_reading_a_later_output_is_caught_at_its_use(self) -> None:
        doc = status(rule(when={"condition": "scored"}))
        doc["decisions"].append({"output": "score", "hit": "sum", "rules": []})
        doc["conditions"] = {"scored": {"output": "score", "at_least": 5}}
        assert any("reads output 'score', which is not yet decided" in m for _, m in messages(doc))

    def test_template_placeholders_must_name_something(self) -> None:
        doc = status({"id": "r", "then": "prospect", "because": "Hi {frist_name}",
                      "when": {"fact": "country", "is": "US"}})
        [d] = problems(doc)
        assert d.message == "placeholder {frist_name} names no fact or output"
        assert d.suggestion == "did you mean 'first_name'?"
        doc["decisions"][0]["rules"][0]["because"] = "Hi {first_name"
        assert "bad placeholder" in problems(doc)[0].message

    def test_hit_policy_keys_are_checked(self) -> None:
        doc = status({"id": "r", "add": 5, "because": "x"})
        got = [m for _, m in messages(doc)]
        assert any("'add' belongs in a 'sum' decision" in m for m in got)
        assert any("missing \"then\"" in m for m in got)
        doc = {"version": "t", "decisions": [
            {"output": "status", "hit": "sum", "rules": []}]}
        assert any("must use hit policy 'first'" in m for _, m in messages(doc))

    def test_embedded_tests_are_checked_too(self) -> None:
        doc = status(rule(when={"fact": "country", "is": "US"}))
        doc["tests"] = [{"name": "t", "facts": {"contry": "US"},
                         "expect": {"status": "prospekt", "fired": ["nope"], "tasks": ["x"]}}]
        got = [m for _, m in messages(doc)]
        assert "unknown fact 'contry'" in got
        assert any(m.startswith('"prospekt" is not a valid status') for m in got)
        assert any(m.startswith('unknown rule id "nope"') for m in got)
        assert any(m.startswith('no task has purpose "x"') for m in got)

    def test_all_problems_are_reported_at_once_sorted_by_position(self) -> None:
        doc = status(rule("a", {"fact": "employes", "at_least": 5}),
                     rule("b", {"fact": "country", "is": 1}, then="oportunity"))
        diagnostics = problems(doc)
        assert len(diagnostics) == 3
        positions = [(d.line, d.col) for d in diagnostics]
        assert positions == sorted(positions)


def test_unreadable_file_is_an_invalid_file_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidFileError, match="1 problem"):
        load_ruleset(tmp_path / "missing.json")
    bad = tmp_path / "latin1.json"
    bad.write_bytes(b'{"version": "\xe9"}')
    with pytest.raises(InvalidFileError) as caught:
        load_ruleset(bad)
    assert "not UTF-8" in caught.value.diagnostics[0].message
