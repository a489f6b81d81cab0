"""``crmsync runs`` and ``crmsync rejections``: readable in 80 columns, no CRM credentials."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner

from crmsync.cli import main
from crmsync.errors import ExitCode
from sync.conftest import Crm

ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: A terminal 80 columns wide (rich reads these; the table is only drawn for a terminal).
TERMINAL_80 = {"TTY_COMPATIBLE": "1", "COLUMNS": "80", "NO_COLOR": "1"}


def _history(crm: Crm) -> dict[str, str]:
    """A dry run, a partial run with rejected records, an undo and a failed run."""
    crm.setup()
    ids = {"plan": crm.run(dry_run=True).run_id}
    crm.server.install_faults({"rules": [{
        "method": "*", "path": "/", "times": None, "kind": "reject_record",
        "field": crm.shape["status"], "error_code": "FIELD_CUSTOM_VALIDATION_EXCEPTION"}]})
    partial = crm.run()
    assert partial.status == "partial" and partial.counts["rejected"] > 0
    ids["partial"] = partial.run_id
    crm.server.install_faults({"rules": []})
    undo = CliRunner().invoke(main, ["undo", partial.run_id, "--config", str(crm.config),
                                     "--output", "json"])
    ids["undo"] = json.loads(undo.stdout)["undo_run_id"]
    broken = crm.workdir / "broken.toml"
    broken.write_text(crm.config.read_text("utf-8").replace(crm.server.base_url,
                                                            "http://127.0.0.1:9")
                      + "[sync]\nmax_attempts = 1\n", "utf-8")
    failed = CliRunner().invoke(main, ["run", "--config", str(broken), "--output", "json"])
    ids["failed"] = json.loads(failed.stdout)["run"]["run_id"]
    return ids


def _no_credentials(crm: Crm) -> Path:
    """The same state store, with no CRM settings at all (what an analyst's laptop has)."""
    state = re.search(r'\[state\]\nurl = "([^"]+)"', crm.config.read_text("utf-8"))
    assert state
    config = crm.workdir / "history-only.toml"
    config.write_text(f'[state]\nurl = "{state.group(1)}"\n', "utf-8")
    return config


def test_runs_fit_80_columns_with_duration_dry_runs_undo_targets_and_errors(crm: Crm) -> None:
    ids = _history(crm)
    config = _no_credentials(crm)
    env = {**TERMINAL_80, "CRMSYNC_CRM__TOKEN": ""}
    result = CliRunner().invoke(main, ["runs", "--config", str(config)], env=env)
    assert result.exit_code == 0, result.output
    lines = ANSI.sub("", result.stdout).splitlines()
    assert max(len(line) for line in lines) <= 80, "\n".join(lines)
    header = next(line for line in lines if line.lstrip().startswith("run "))
    names = header.split()
    assert names[:5] == ["run", "started", "took", "mode", "status"], header
    assert not any(name.endswith("…") for name in names), header
    rows = {line.split()[0]: line for line in lines if line.startswith("r2")}
    assert set(ids.values()) <= set(rows), rows
    assert "dry run" in rows[ids["plan"]]
    assert re.search(r"\d+(\.\d)?s|\dm\d\ds", rows[ids["partial"]]), "duration shown"
    assert f"{ids['undo']}: undid {ids['partial']}" in lines
    text = " ".join(line.strip() for line in lines)
    assert re.search(rf"{ids['failed']}: failed: .*connection refused to 127\.0\.0\.1:9", text)

    as_json = json.loads(CliRunner().invoke(
        main, ["runs", "--config", str(config), "--output", "json"], env=env).stdout)
    by_id = {r["run_id"]: r for r in as_json}
    assert by_id[ids["plan"]]["dry_run"] is True
    assert by_id[ids["undo"]]["undo_of"] == ids["partial"]
    assert by_id[ids["partial"]]["duration_s"] >= 0
    listed = by_id[ids["partial"]]["rejections"]
    assert listed and all(r["code"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION" for r in listed)


def test_rejections_lists_id_field_code_and_message_without_values(crm: Crm) -> None:
    ids = _history(crm)
    config = _no_credentials(crm)
    env = {"CRMSYNC_CRM__TOKEN": ""}
    result = CliRunner().invoke(main, ["rejections", ids["partial"], "--config", str(config),
                                       "--output", "json"], env=env)
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["run_id"] == ids["partial"]
    assert payload["rejected"] == len(payload["rejections"]) > 0
    contact_ids = {c["id"] for c in crm.contacts()}
    for row in payload["rejections"]:
        assert row["record_id"] in contact_ids
        assert "status" in row["fields"]
        assert row["code"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
        assert row["message"]
        # No field values: the decisions crmsync wanted to write are not echoed.
        assert not {"lead", "prospect", "opportunity", "disqualified"} & set(
            re.findall(r"\w+", row["message"].lower()))

    text = CliRunner().invoke(main, ["rejections", ids["partial"], "--config", str(config)],
                              env=env)
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"run {ids['partial']} (partial): {payload['rejected']} record")
    first = payload["rejections"][0]
    assert f"{first['record_id']}\t{first['stream']}\t" in text.stdout

    # Without RUN_ID: the latest run that wrote (the failed one rejected nothing).
    latest = CliRunner().invoke(main, ["rejections", "--config", str(config)], env=env)
    assert latest.stdout.startswith(f"run {ids['failed']} (failed): no records rejected")


def test_rejections_of_an_unknown_run_is_a_config_error(crm: Crm) -> None:
    result = CliRunner().invoke(main, ["rejections", "r-nope", "--config", str(crm.config)])
    assert result.exit_code == ExitCode.BAD_CONFIG
    assert result.stderr.strip() == ("crmsync: error: no run 'r-nope' in the state store; "
                                     "see `crmsync runs`")


def test_runs_without_a_connection_lists_every_connections_store(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from crmsync.state import StateStore

    shared = f"sqlite:///{(tmp_path / 'shared.db').as_posix()}"
    own = f"sqlite:///{(tmp_path / 'own.db').as_posix()}"
    config = tmp_path / "crmsync.toml"
    config.write_text(f"""
[state]
url = "{shared}"
[connections.hub]
type = "hubspot"
base_url = "http://127.0.0.1:9"
[connections.sf]
type = "salesforce"
base_url = "http://127.0.0.1:9"
state_url = "{own}"
""", "utf-8")
    start = datetime(2026, 11, 23, 9, tzinfo=UTC)
    made = {}
    # Interleaved in time across the two stores: the listing must merge them by start.
    for minute, (name, url) in enumerate([("hub", shared), ("sf", own), ("hub", shared)]):
        with StateStore.open(url, connection=name) as store:
            run_id = store.start_run("x", "run", started_at=start + timedelta(minutes=minute))
            store.finish_run(run_id, "ok", 0, {"counts": {"read": minute}})
        made[run_id] = name
    result = CliRunner().invoke(main, ["runs", "--config", str(config), "--output", "json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [(r["run_id"], r["connection"]) for r in listed] == [
        (run_id, made[run_id]) for run_id in reversed(made)]
    limited = CliRunner().invoke(main, ["runs", "--config", str(config), "--limit", "2",
                                        "--output", "json"])
    assert [r["run_id"] for r in json.loads(limited.stdout)] == list(reversed(made))[:2]
    only_sf = CliRunner().invoke(main, ["runs", "--config", str(config), "--connection", "sf",
                                        "--output", "json"])
    assert [r["connection"] for r in json.loads(only_sf.stdout)] == ["sf"]
