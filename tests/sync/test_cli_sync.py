"""The sync commands as schedulers and admins use them: exit codes, JSON output, history, undo."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from crmsync.cli import main
from crmsync.config import load_settings
from crmsync.errors import ExitCode
from crmsync.state import StateStore

from .conftest import ROOT, Crm


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout


def test_setup_plan_run_runs_as_json(crm: Crm) -> None:
    config = str(crm.config)
    code, out = _invoke("setup", "--config", config, "--output", "json")
    assert code == 0
    created = json.loads(out)["created"]
    assert created, "a fresh CRM gets crmsync's fields"
    code, out = _invoke("setup", "--config", config, "--output", "json")
    assert json.loads(out)["created"] == []

    crm.server.reset()
    code, out = _invoke("plan", "--config", config, "--output", "json")
    planned = json.loads(out)
    assert code == ExitCode.OK
    assert planned["mode"] == "plan"
    assert planned["counts"]["updated"] == planned["counts"]["evaluated"] > 0
    assert crm.server.call_counts()["writes"] == 0

    code, out = _invoke("run", "--config", config, "--output", "json")
    ran = json.loads(out)
    assert code == ExitCode.OK
    assert ran["counts"]["field_writes"] == planned["counts"]["updated"]
    assert ran["minimum_api_calls"] <= ran["api_calls"]

    code, out = _invoke("runs", "--config", config, "--output", "json")
    history = json.loads(out)
    assert [r["mode"] for r in history] == ["run", "plan"]
    assert history[0]["run_id"] == ran["run_id"]


def test_run_without_setup_is_a_config_error_naming_setup(crm: Crm) -> None:
    result = CliRunner().invoke(main, ["run", "--config", str(crm.config)])
    assert result.exit_code == ExitCode.BAD_CONFIG
    assert "crmsync setup" in result.output
    assert "Traceback" not in result.output
    assert crm.server.call_counts()["writes"] == 0


def test_undo_restores_fields_and_closes_tasks(crm: Crm) -> None:
    config = str(crm.config)
    crm.setup()
    code, out = _invoke("run", "--config", config, "--output", "json")
    run_id = json.loads(out)["run_id"]
    assert any(c.get(crm.shape["status"]) for c in crm.contacts())
    edited = crm.contacts()[0]
    crm.edit(edited["id"], {crm.shape["reason"]: "set by a rep"})

    code, out = _invoke("undo", run_id, "--config", config, "--output", "json")
    undone = json.loads(out)
    assert code == ExitCode.OK
    assert undone["skipped"] == 1  # the rep's edit since is kept
    after = {c["id"]: c for c in crm.contacts()}
    assert after[edited["id"]][crm.shape["reason"]] == "set by a rep"
    others = [c for i, c in after.items() if i != edited["id"]]
    assert all(not c.get(crm.shape["status"]) for c in others)
    assert undone["tasks_closed"] == len(crm.tasks()) > 0
    assert {t[2] for t in (crm.task_identities())} == {crm.closed_task_status}
    # The store forgets the decisions put back to none: only the rep-edited contact keeps one.
    with StateStore.open(load_settings(crm.config, env={}).state.url) as store:
        assert sum(store.status_counts().values()) == 1

    crm.server.reset()
    code, out = _invoke("undo", run_id, "--config", config, "--output", "json")
    again = json.loads(out)
    assert (again["restored"], again["tasks_closed"]) == (0, 0)  # nothing left to undo
    assert again["undone_before"] == undone["undo_run_id"]
    assert crm.server.call_counts()["writes"] == 0


def test_bad_settings_exit_2_and_name_where_values_were_looked_for(tmp_path: Path) -> None:
    config = tmp_path / "crmsync.toml"
    config.write_text('[crm]\ntype = "hubspot"\n', "utf-8")
    result = CliRunner().invoke(main, ["run", "--config", str(config)],
                                env={"CRMSYNC_CRM__TOKEN": ""})
    assert result.exit_code == ExitCode.BAD_CONFIG
    assert "CRMSYNC_CRM__TOKEN" in result.output
    assert "Traceback" not in result.output


def test_errors_are_json_when_a_machine_asked_for_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["run", "--output", "json", "--config", str(tmp_path / "missing.toml")]
    )
    assert result.exit_code == ExitCode.BAD_CONFIG
    payload = json.loads(result.stdout)
    assert payload["exit_code"] == ExitCode.BAD_CONFIG
    assert "missing.toml" in payload["message"]


def test_explain_reads_a_contact_from_the_crm(crm: Crm) -> None:
    crm.setup()
    crm.server.reset()
    contact = crm.contacts()[0]
    rules = str(ROOT / "rules" / "default.json")
    code, out = _invoke("explain", "--rules", rules, "--contact", contact["id"],
                        "--config", str(crm.config), "--output", "json")
    assert code == 0
    [decision] = json.loads(out)
    assert decision["id"] == contact["id"]
    assert decision["trace"], "the explanation lists the rules it went through"
    assert crm.server.call_counts()["writes"] == 0  # read-only


def test_verbose_shows_the_runs_steps_and_its_summary_line_once(crm: Crm) -> None:
    crm.setup()
    result = CliRunner().invoke(main, ["run", "-v", "--config", str(crm.config)],
                                catch_exceptions=False)
    assert result.exit_code == ExitCode.OK, result.stderr
    stream = "hubspot:contacts" if crm.crm == "hubspot" else "salesforce:Lead"
    assert f"{stream}: reading, full: first read" in result.stderr
    assert result.stderr.count("crmsync_run=") == 1, result.stderr
