"""Issue 13 items 5 and 11: oversized rule files and byte order marks, as a user meets them."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from crmsync.cli import main
from crmsync.errors import InvalidFileError
from crmsync.rules import load_ruleset, load_ruleset_text
from crmsync.rules.ruleset import MAX_RULE_FILE_BYTES

from .conftest import DEFAULT_RULES

NOW = "2026-01-05T09:00:00Z"


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _oversized(tmp_path: Path) -> Path:
    """A syntactically valid rule file just over the limit (a huge list)."""
    doc = json.loads(DEFAULT_RULES.read_text(encoding="utf-8"))
    filler = max(1, (MAX_RULE_FILE_BYTES - DEFAULT_RULES.stat().st_size) // 13 + 1000)
    doc["lists"]["huge"] = [f"d{i:09d}.io" for i in range(filler)]
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    assert path.stat().st_size > MAX_RULE_FILE_BYTES
    return path


@pytest.mark.parametrize("command", ["validate", "test"])
def test_a_rule_file_over_the_limit_is_one_located_error_exit_2(
    tmp_path: Path, command: str,
) -> None:
    path = _oversized(tmp_path)
    result = run("rules", command, str(path))
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines()
              if ": error: " in line and not line.startswith("crmsync: ")]
    size = path.stat().st_size / 1_000_000
    assert errors == [f"{path}:1:1: error: the rule file is {size:.1f} MB; rule files are "
                      "limited to 5 MB"], result.stderr
    assert "crmsync: error: 1 problem found" in result.stderr
    assert "hint: keep long value lists short" in result.stderr


def test_evaluate_refuses_an_oversized_rule_file_before_reading_input(tmp_path: Path) -> None:
    path = _oversized(tmp_path)
    result = run("evaluate", "--rules", str(path), "--input", str(tmp_path / "absent.jsonl"))
    assert result.exit_code == 2
    assert "limited to 5 MB" in result.stderr


def test_the_limit_holds_for_text_and_for_streams_without_a_size(tmp_path: Path) -> None:
    with pytest.raises(InvalidFileError) as caught:
        load_ruleset_text(" " * (MAX_RULE_FILE_BYTES + 1), filename="t.json")
    assert "limited to 5 MB" in caught.value.diagnostics[0].message
    # Multi-byte text: measured in UTF-8 bytes, as documented.
    with pytest.raises(InvalidFileError):
        load_ruleset_text("é" * (MAX_RULE_FILE_BYTES // 2 + 1), filename="t.json")
    fifo = Path("/dev/zero")
    if fifo.exists():  # an endless file is cut at the limit, not read to the end
        with pytest.raises(InvalidFileError) as caught:
            load_ruleset(fifo)
        assert "limited to 5 MB" in caught.value.diagnostics[0].message


def test_a_file_at_the_limit_is_read(tmp_path: Path) -> None:
    text = DEFAULT_RULES.read_text(encoding="utf-8")
    path = tmp_path / "padded.json"
    path.write_text(text + " " * (MAX_RULE_FILE_BYTES - len(text.encode("utf-8"))), "utf-8")
    assert path.stat().st_size == MAX_RULE_FILE_BYTES
    assert load_ruleset(path).version == "default-2026.12"


def test_a_byte_order_mark_is_accepted_in_rule_files_and_json_lines_alike(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_bytes(codecs.BOM_UTF8 + DEFAULT_RULES.read_bytes())
    contacts = tmp_path / "contacts.jsonl"
    lines = [{"id": "c1", "country": "US", "employees": 300, "trial_signup": True},
             {"id": "c2", "country": "BR"}]
    contacts.write_bytes(codecs.BOM_UTF8 + b"".join(orjson.dumps(r) + b"\r\n" for r in lines))

    assert run("rules", "validate", str(rules)).exit_code == 0
    result = run("evaluate", "--rules", str(rules), "--input", str(contacts), "--now", NOW)
    assert result.exit_code == 0, result.stderr
    decided = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [d["id"] for d in decided] == ["c1", "c2"]
    assert decided[1]["status"] == "disqualified"
    without_bom = tmp_path / "plain.jsonl"
    without_bom.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in lines))
    expected = run("evaluate", "--rules", str(DEFAULT_RULES), "--input", str(without_bom),
                   "--now", NOW)
    assert [orjson.loads(x)["reason"] for x in expected.stdout.splitlines()] == [
        d["reason"] for d in decided]


def test_a_byte_order_mark_later_in_the_input_is_still_a_bad_line(tmp_path: Path) -> None:
    contacts = tmp_path / "contacts.jsonl"
    contacts.write_bytes(b'{"id": "c1"}\n' + codecs.BOM_UTF8 + b'{"id": "c2"}\n')
    result = run("evaluate", "--rules", str(DEFAULT_RULES), "--input", str(contacts), "--now", NOW)
    assert result.exit_code == 1
    assert f"{contacts}:2: skipped: invalid JSON" in result.stderr


def test_evaluate_names_odd_values_and_unknown_facts_without_their_values(tmp_path: Path) -> None:
    contacts = tmp_path / "contacts.jsonl"
    contacts.write_text(
        '{"id": "a", "employees": "lots", "last_activity_at": "yesterday", "country": "DE"}\n'
        '{"id": "b", "employees": "1,200", "emploees": 5, "notes": "a rep\'s private note"}\n'
        '{"id": "c", "employees": "n/a"}\n', encoding="utf-8")
    result = run("evaluate", "--rules", str(DEFAULT_RULES), "--input", str(contacts),
                 "--now", NOW)
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3  # every contact still decided
    odd, unknown = result.stderr.splitlines()
    assert "employees 2×" in odd and f"{contacts}:1" in odd  # "1,200" is a number
    assert "last_activity_at 1×" in odd and "country" not in odd
    assert "emploees" in unknown and "did you mean 'employees'?" in unknown
    assert "notes" in unknown
    for value in ("lots", "yesterday", "private note", "n/a"):
        assert value not in result.stderr


def test_evaluate_of_clean_input_says_nothing_more(tmp_path: Path) -> None:
    contacts = tmp_path / "contacts.jsonl"
    contacts.write_text('{"id": "a", "employees": 120, "country": "DE"}\n', encoding="utf-8")
    result = run("evaluate", "--rules", str(DEFAULT_RULES), "--input", str(contacts),
                 "--now", NOW)
    assert result.exit_code == 0 and result.stderr == ""
