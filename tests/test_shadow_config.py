"""``[rules] shadow`` in the configuration, and ``rules promote`` on named connections.

No CRM is needed: promotion reads the config, the candidate and the field map's facts.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from crmsync.cli import main
from crmsync.config import SettingsError, load_settings
from crmsync.errors import ExitCode

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with a production and a candidate rule file, and a two-connection config."""
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(ROOT / "rules/default.json", rules / "prod.json")
    shutil.copy(ROOT / "rules/default.json", rules / "cand.json")
    (tmp_path / "crmsync.toml").write_text(
        '[crm]\ntype = "hubspot"\n'
        '[rules]\npath = "rules/prod.json"  # production\nshadow = "rules/cand.json"\n'
        '\n# EMEA portal\n[connections.emea]\ntype = "hubspot"\nrules = "rules/prod.json"\n'
        'shadow = "rules/cand.json"\n', "utf-8")
    return tmp_path


def test_shadow_paths_resolve_beside_the_config_for_every_connection(project: Path) -> None:
    config = project / "crmsync.toml"
    default = load_settings(config, env={}, require_crm=False)
    assert default.rules.shadow == project / "rules/cand.json"
    emea = load_settings(config, env={}, require_crm=False, connection="emea")
    assert (emea.rules.path, emea.rules.shadow) == (project / "rules/prod.json",
                                                    project / "rules/cand.json")
    env = {"CRMSYNC_RULES__SHADOW": str(project / "rules/other.json")}
    assert load_settings(config, env=env, require_crm=False).rules.shadow == Path(
        env["CRMSYNC_RULES__SHADOW"])


def test_a_misspelt_or_mistyped_shadow_key_is_a_located_config_problem(project: Path) -> None:
    config = project / "crmsync.toml"
    config.write_text('[crm]\ntype = "hubspot"\n[rules]\nshadows = "rules/cand.json"\n', "utf-8")
    with pytest.raises(SettingsError, match=r"unknown key \[rules\] shadows.*did you mean"):
        load_settings(config, env={}, require_crm=False)
    config.write_text('[crm]\ntype = "hubspot"\n[rules]\nshadow = 3\n', "utf-8")
    with pytest.raises(SettingsError, match=r"\[rules\] shadow: expected"):
        load_settings(config, env={}, require_crm=False)


def test_promote_on_a_named_connection_rewrites_only_that_connection(project: Path) -> None:
    config = project / "crmsync.toml"
    result = CliRunner().invoke(main, ["rules", "promote", "--config", str(config),
                                       "--connection", "emea", "--output", "json"])
    assert result.exit_code == 0, result.output
    written = tomllib.loads(config.read_text("utf-8"))
    assert written["connections"]["emea"] == {"type": "hubspot", "rules": "rules/cand.json"}
    assert written["rules"] == {"path": "rules/prod.json", "shadow": "rules/cand.json"}
    assert "# EMEA portal" in config.read_text("utf-8")
    answer = json.loads(result.stdout)
    assert answer["previous"] == str(project / "rules/prod.json")
    assert answer["re_evaluates_all"] is False  # the two files are byte-identical here
    emea = load_settings(config, env={}, require_crm=False, connection="emea")
    assert (emea.rules.path, emea.rules.shadow) == (project / "rules/cand.json", None)


def test_promote_refuses_when_the_environment_decides_the_rule_files(project: Path) -> None:
    config = project / "crmsync.toml"
    before = config.read_text("utf-8")
    result = CliRunner().invoke(main, ["rules", "promote", "--config", str(config)],
                                env={"CRMSYNC_RULES__PATH": str(project / "rules/prod.json")})
    assert result.exit_code == ExitCode.BAD_CONFIG
    assert "CRMSYNC_RULES__PATH" in result.stderr and "hint: unset" in result.stderr
    assert config.read_text("utf-8") == before
