"""The rules commands as a user runs them: exit codes, messages, streaming JSON Lines."""

# ruff: noqa: E501 - rule snippets and their expectations read best one per line

from __future__ import annotations

import json
from pathlib import Path

import orjson
from click.testing import CliRunner

from crmsync.cli import main

from .conftest import DEFAULT_RULES

NOW = "2026-01-05T09:00:00Z"


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_validate_ok() -> None:
    result = run("rules", "validate", str(DEFAULT_RULES))
    assert result.exit_code == 0, result.output
    assert "ok (version default-2026.12" in result.output


def test_validate_reports_every_file_and_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "version": "x",\n  "decisions": [\n    {"output": "status", "hit": "first", '
                      '"default": "lead", "rules": [{"id": "a", "when": {"fact": "contry", "is": "US"}, '
                      '"then": "lead", "because": "x"}]}\n  ]\n}\n')
    not_json = tmp_path / "not.json"
    not_json.write_text("{\n  \"version\": 1,,\n}")
    result = run("rules", "validate", str(broken), str(not_json), str(DEFAULT_RULES))
    assert result.exit_code == 2
    assert f"{broken}:4:" in result.stderr and "unknown fact 'contry'" in result.stderr
    assert "hint: did you mean 'country'?" in result.stderr
    assert f"{not_json}:2:16: error: invalid JSON" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_validate_json_output(tmp_path: Path) -> None:
    broken = tmp_path / "b.json"
    broken.write_text('{"version": "x", "decisions": []}')
    result = run("rules", "validate", "--output", "json", str(DEFAULT_RULES), str(broken))
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert [f["ok"] for f in report["files"]] == [True, False]
    assert report["files"][1]["problems"][0]["line"] == 1


def test_rules_test_passes_on_default_and_reports_coverage() -> None:
    result = run("rules", "test", str(DEFAULT_RULES))
    assert result.exit_code == 0, result.output
    assert "0 failed" in result.output
    doc = json.loads(DEFAULT_RULES.read_text("utf-8"))
    count = sum(len(d["rules"]) for d in doc["decisions"]) + len(doc["tasks"])
    assert f"rule coverage: {count}/{count}" in result.output


def test_rules_test_fails_with_exit_1_and_lists_uncovered_rules(tmp_path: Path) -> None:
    doc = {"version": "x", "decisions": [{"output": "status", "hit": "first", "default": "lead", "rules": [
        {"id": "us", "when": {"fact": "country", "is": "US"}, "then": "prospect", "because": "US"},
        {"id": "de", "when": {"fact": "country", "is": "DE"}, "then": "prospect", "because": "DE"}]}],
        "tests": [{"name": "US is a prospect", "facts": {"country": "US"}, "expect": {"status": "opportunity"}}]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc, indent=1))
    result = run("rules", "test", str(path))
    assert result.exit_code == 1
    assert "FAILED" in result.output and "US is a prospect" in result.output
    assert "status: expected 'opportunity', got 'prospect'" in result.output
    assert "no test fires: de" in result.output
    as_json = json.loads(run("rules", "test", "--output", "json", str(path)).stdout)
    assert as_json["failed"] == 1 and as_json["files"][0]["uncovered_rules"] == ["de"]


def test_schema_is_a_2020_12_schema_that_accepts_the_default_rules() -> None:
    import jsonschema

    schema = json.loads(run("rules", "schema").stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(json.loads(DEFAULT_RULES.read_text()), schema)


def _contacts(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "contacts.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_evaluate_streams_decisions_and_skips_bad_lines(tmp_path: Path) -> None:
    path = _contacts(tmp_path, [
        json.dumps({"id": "c1", "country": "US", "employees": 200, "budget_confirmed": True,
                    "title": "VP Sales", "trial_signup": True, "pricing_page_views": 6}),
        "{not json",
        json.dumps({"country": "US"}),
        "[1, 2]",
        "",
        json.dumps({"id": "c2", "country": "BR"}),
    ])
    out = tmp_path / "out.jsonl"
    result = run("evaluate", "--rules", str(DEFAULT_RULES), "--input", str(path), "--now", NOW,
                 "--output", str(out))
    assert result.exit_code == 1
    assert f"{path}:2: skipped: invalid JSON" in result.stderr
    assert f"{path}:3: skipped: the contact has no \"id\"" in result.stderr
    assert f"{path}:4: skipped" in result.stderr
    decisions = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [d["id"] for d in decisions] == ["c1", "c2"]
    first = decisions[0]
    # "outputs": the rule file's declared outputs (the default rules declare icp_tier).
    assert set(first) == {"id", "status", "miss_type", "score", "reason", "outputs", "rules",
                          "tasks"}
    assert (first["status"], first["miss_type"]) == ("opportunity", "none")
    assert first["tasks"][0]["purpose"] == "opportunity_follow_up"
    assert first["tasks"][0]["due"] == "2026-01-06"
    assert decisions[1]["status"] == "disqualified"


def test_evaluate_from_stdin_to_stdout_with_explain() -> None:
    line = json.dumps({"id": "c9", "country": None, "employees": 30})
    result = run("evaluate", "--rules", str(DEFAULT_RULES), "--input", "-", "--now", NOW,
                 "--explain", input=line + "\n")
    assert result.exit_code == 0, result.stderr
    decision = json.loads(result.stdout)
    assert decision["status"] == "lead"
    dq_country = next(e for e in decision["trace"] if e.get("rule") == "dq_country")
    assert dq_country["outcome"] == "unknown"
    doc = json.loads(DEFAULT_RULES.read_text("utf-8"))
    status = next(i for i, d in enumerate(doc["decisions"]) if d["output"] == "status")
    assert dq_country["checks"] == [{"at": f"/decisions/{status}/rules/2/when/not",
                                     "test": "condition served_country", "result": None}]
    served = next(e for e in decision["trace"] if e.get("condition") == "served_country")
    assert served["checks"][0]["value"] is None and served["result"] is None


def test_evaluate_bad_now_and_bad_rules_exit_2(tmp_path: Path) -> None:
    path = _contacts(tmp_path, ['{"id": "1"}'])
    result = run("evaluate", "--rules", str(DEFAULT_RULES), "--input", str(path), "--now", "soon")
    assert result.exit_code == 2 and "ISO 8601" in result.output
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    result = run("evaluate", "--rules", str(bad), "--input", str(path))
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_explain_one_contact_in_words(tmp_path: Path) -> None:
    path = _contacts(tmp_path, [
        json.dumps({"id": "a", "country": "BR"}),
        json.dumps({"id": "b", "country": "US", "employees": 30, "trial_signup": True}),
    ])
    result = run("explain", "--rules", str(DEFAULT_RULES), "--input", str(path), "--contact", "b",
                 "--now", NOW)
    assert result.exit_code == 0, result.output
    assert "contact b: lead" in result.output and "contact a" not in result.output
    assert "lead_outside_icp_size [status] fired" in result.output
    assert "dq_country [status] missed" in result.output
    assert "opportunity_buying_signals [status] not reached" in result.output
    as_json = json.loads(run("explain", "--rules", str(DEFAULT_RULES), "--input", str(path),
                             "--now", NOW, "--output", "json").stdout)
    assert [d["id"] for d in as_json] == ["a", "b"] and all("trace" in d for d in as_json)
    missing = run("explain", "--rules", str(DEFAULT_RULES), "--input", str(path), "--contact", "zz")
    assert missing.exit_code == 2
