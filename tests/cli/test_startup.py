"""Start-up: the rules commands and ``--help`` load no database layer and no CRM SDK.

Timing lives in ``benchmarks/startup.py``; these tests pin what makes start-up fast.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from crmsync.cli import COMMANDS, load_command

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("sqlalchemy", "simple_salesforce", "hubspot", "urllib3", "requests",
         "jsonschema",  # only for a rule file with problems (schema_fast)
         "crmsync.config", "tomlkit", "altair")  # settings: only commands that read crmsync.toml

_PROBE = """
import json, sys
from crmsync.cli import main
try:
    main(sys.argv[1:], prog_name="crmsync")
except SystemExit as stop:
    code = stop.code
heavy = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"exit": code, "heavy": heavy}}), file=sys.stderr)
"""


def _probe(args: list[str], tmp_path: Path) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", _PROBE.format(heavy=HEAVY), *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    return json.loads(done.stderr.strip().splitlines()[-1])


@pytest.mark.parametrize("command", ["help", "rules validate", "rules test", "evaluate",
                                     "explain"])
def test_rules_commands_import_no_database_layer_or_sdk(command: str, tmp_path: Path) -> None:
    rules = str(ROOT / "rules" / "default.json")
    contacts = tmp_path / "contacts.jsonl"
    contacts.write_text('{"id": "c1", "employees": 120, "country": "US"}\n', "utf-8")
    args = {
        "help": ["--help"],
        "rules validate": ["rules", "validate", rules],
        "rules test": ["rules", "test", rules],
        "evaluate": ["evaluate", "--rules", rules, "--input", str(contacts),
                     "--now", "2026-11-23T09:00:00Z"],
        "explain": ["explain", "--rules", rules, "--input", str(contacts),
                    "--now", "2026-11-23T09:00:00Z"],
    }[command]
    result = _probe(args, tmp_path)
    assert result["exit"] in (0, None), result
    assert result["heavy"] == [], f"{command} imported {result['heavy']}"


def test_the_help_listing_matches_each_commands_own_help() -> None:
    # The listing is kept apart from the commands (so --help imports none of them): pin it.
    for name, (_, _, listed) in COMMANDS.items():
        command = load_command(name)
        assert command.name == name
        own = (command.help or "").split("\n\n")[0].replace("\n", " ").strip()
        assert listed == own, name

