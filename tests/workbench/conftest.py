"""Fixtures of the workbench tests: the sync tests' sandbox CRMs, and rule files to compare."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from crmsync.cli import main
from sync.conftest import ROOT, crm  # noqa: F401 - a fixture, registered by being imported here

DEFAULT_RULES = ROOT / "rules" / "default.json"
NOW = "2026-11-23T09:00:00Z"


def candidate_rules(directory: Path, **params: object) -> Path:
    """The default rules with some parameters changed (what a rule author's edit looks like)."""
    document = json.loads(DEFAULT_RULES.read_text("utf-8"))
    document["params"].update(params)
    document["version"] = "candidate"
    path = directory / "candidate.json"
    path.write_text(json.dumps(document, indent=2), "utf-8")
    return path


@pytest.fixture
def candidate(tmp_path: Path) -> Path:
    """Default rules that call companies under 50 employees too small (was 10)."""
    return candidate_rules(tmp_path, min_employees=50)


def invoke(*args: str) -> tuple[int, str, str]:
    """Run crmsync in-process; return exit code, stdout and stderr."""
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def decisions(rules: Path, contacts: Path, out: Path) -> dict[str, dict]:
    """``crmsync evaluate`` of ``contacts`` with ``rules``, by contact id."""
    code, _, err = invoke("evaluate", "--rules", rules, "--input", contacts, "--now", NOW,
                          "--output", out)
    assert code == 0, err
    rows = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    return {row["id"]: row for row in rows}
