"""Several connections in one config and one state store: each keeps its own state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from crmsync.cli import main
from crmsync.errors import ExitCode
from crmsync.sandbox.server import SandboxServer
from crmsync.state import StateStore

from .conftest import RULES, admin, start_sandbox


def _cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _crmsync_tasks(server: SandboxServer) -> int:
    """How many of crmsync's own tasks a HubSpot sandbox holds (reps' tasks left out)."""
    rows = admin(server, "GET", "records/tasks")["results"]
    return sum("crmsync-key:" in (row["properties"].get("hs_task_body") or "") for row in rows)


@pytest.fixture
def twin_hubspot() -> Iterator[SandboxServer]:
    """A second HubSpot portal seeded like the first: the same contact ids, the same data."""
    server = start_sandbox("hubspot")
    try:
        yield server
    finally:
        server.stop()


def test_hubspot_and_salesforce_keep_separate_cursors_leases_and_history(
    tmp_path: Path, hubspot: SandboxServer, salesforce: SandboxServer
) -> None:
    state = f"sqlite:///{(tmp_path / 'state.db').as_posix()}"
    config = tmp_path / "crmsync.toml"
    config.write_text(f"""
[state]
url = "{state}"
[connections.hub]
type = "hubspot"
base_url = "{hubspot.base_url}"
rules = "{RULES}"
[connections.sf]
type = "salesforce"
auth = "session"
base_url = "{salesforce.base_url}"
rules = "{RULES}"
""", "utf-8")
    env = {"CRMSYNC_CONNECTIONS__HUB__TOKEN": hubspot.token,
           "CRMSYNC_CONNECTIONS__SF__TOKEN": salesforce.token}
    for name in ("hub", "sf"):
        code, _, err = _cli(env, "setup", "--config", str(config), "--connection", name)
        assert code == 0, err

    code, out, _ = _cli(env, "run", "--config", str(config), "--connection", "hub",
                        "--output", "json")
    assert code == ExitCode.OK
    hub_run = json.loads(out)["run_id"]

    with StateStore.open(state) as store:
        hub, sf = store.scoped("hub"), store.scoped("sf")
        assert hub.get_cursor("hubspot:contacts").value is not None
        # The other connections see none of it: not Salesforce, not the default connection.
        assert sf.get_cursor("hubspot:contacts").value is None
        assert store.get_cursor("hubspot:contacts").value is None
        assert sum(hub.status_counts().values()) > 0
        assert sum(sf.status_counts().values()) == 0 == sum(store.status_counts().values())
        # A run of `hub` still holding its lease blocks `hub`, never `sf`.
        hub.acquire_lease("sync:hubspot", "r-busy", timedelta(minutes=15))
        try:
            code, _, err = _cli(env, "run", "--config", str(config), "--connection", "hub")
            assert code == ExitCode.BUSY, err
            code, out, err = _cli(env, "run", "--config", str(config), "--connection", "sf",
                                  "--output", "json")
            assert code == ExitCode.OK, err
            sf_run = json.loads(out)["run_id"]
        finally:
            hub.release_lease("sync:hubspot", "r-busy")
        assert sf.get_cursor("salesforce:Contact").value is not None
        assert hub.get_cursor("salesforce:Contact").value is None
        assert sum(sf.status_counts().values()) > 0

    code, out, _ = _cli(env, "runs", "--config", str(config), "--connection", "sf",
                        "--output", "json")
    assert [(r["run_id"], r["connection"]) for r in json.loads(out)] == [(sf_run, "sf")]
    code, out, _ = _cli(env, "runs", "--config", str(config), "--output", "json")
    history = json.loads(out)
    assert {r["connection"] for r in history} == {"hub", "sf"}
    assert [r["status"] for r in history if r["connection"] == "hub"] == ["skipped", "ok"]
    assert hub_run in {r["run_id"] for r in history}
    # Started by a person: user@host from the environment.
    assert all(r["trigger"] and "@" in r["trigger"] for r in history)


def test_two_portals_with_the_same_contact_ids_each_get_their_own_tasks(
    tmp_path: Path, hubspot: SandboxServer, twin_hubspot: SandboxServer
) -> None:
    config = tmp_path / "crmsync.toml"
    config.write_text(f"""
[state]
url = "sqlite:///{(tmp_path / 'state.db').as_posix()}"
[connections.emea]
type = "hubspot"
base_url = "{hubspot.base_url}"
rules = "{RULES}"
[connections.us]
type = "hubspot"
base_url = "{twin_hubspot.base_url}"
rules = "{RULES}"
""", "utf-8")
    env = {"CRMSYNC_CONNECTIONS__EMEA__TOKEN": hubspot.token,
           "CRMSYNC_CONNECTIONS__US__TOKEN": twin_hubspot.token}
    summaries = {}
    for name in ("emea", "us"):
        assert _cli(env, "setup", "--config", str(config), "--connection", name)[0] == 0
        code, out, err = _cli(env, "run", "--config", str(config), "--connection", name,
                              "--output", "json")
        assert code == ExitCode.OK, err
        summaries[name] = json.loads(out)
    # Same seed, same rules: the same decisions, and the second portal gets its tasks too
    # (its contacts' task keys equal the first portal's; the registry keeps them apart).
    assert summaries["emea"]["counts"]["tasks_created"] > 0
    assert summaries["us"]["counts"] == summaries["emea"]["counts"]
    assert _crmsync_tasks(twin_hubspot) == _crmsync_tasks(hubspot) > 0


def test_schedule_run_and_list_against_the_sandbox(
    tmp_path: Path, hubspot: SandboxServer
) -> None:
    config = tmp_path / "crmsync.toml"
    config.write_text(f"""
[crm]
type = "hubspot"
base_url = "{hubspot.base_url}"
[rules]
path = "{RULES}"
[state]
url = "sqlite:///{(tmp_path / 'state.db').as_posix()}"
[schedules.hourly]
every = "1h"
[schedules.nightly]
cron = "30 2 * * *"
timezone = "Europe/Berlin"
mode = "full"
enabled = false
""", "utf-8")
    env = {"CRMSYNC_CRM__TOKEN": hubspot.token}
    assert _cli(env, "setup", "--config", str(config))[0] == 0

    code, out, _ = _cli(env, "schedule", "list", "--config", str(config), "--output", "json")
    assert code == 0
    before = {s["name"]: s for s in json.loads(out)}
    assert before["hourly"]["last_run"] is None and before["hourly"]["outcome"] == "-"

    code, out, err = _cli(env, "schedule", "run", "hourly", "--config", str(config),
                          "--output", "json")
    assert code == ExitCode.OK, err
    run_id = json.loads(out)["run_id"]

    code, out, _ = _cli(env, "runs", "--config", str(config), "--output", "json")
    [record] = json.loads(out)
    assert (record["run_id"], record["trigger"], record["connection"]) == (
        run_id, "schedule:hourly", "default")

    asked = datetime.now(UTC)  # noqa: TID251 - compared with what the CLI computed
    code, out, _ = _cli(env, "schedule", "list", "--config", str(config), "--output", "json")
    listed = {s["name"]: s for s in json.loads(out)}
    hourly, nightly = listed["hourly"], listed["nightly"]
    assert hourly["last_run"]["run_id"] == run_id and hourly["outcome"] == "ok"
    next_hour = asked.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    assert datetime.fromisoformat(hourly["next_at"]) in (next_hour, next_hour + timedelta(hours=1))
    assert nightly["enabled"] is False and nightly["next_at"] is None
    assert (nightly["mode"], nightly["timezone"]) == ("full", "Europe/Berlin")

    code, out, _ = _cli(env, "schedule", "list", "--config", str(config))
    lines = [line.split("\t") for line in out.splitlines()]  # piped: one tab-separated row each
    assert lines[0] == ["schedule", "connection", "when", "next", "last run", "outcome"]
    assert lines[1][0] == "hourly" and lines[1][-1] == "ok" and run_id in lines[1][4]
    assert lines[2][0] == "nightly" and lines[2][3] == "disabled"

    code, _, err = _cli(env, "schedule", "run", "hourli", "--config", str(config))
    assert code == ExitCode.BAD_CONFIG and "did you mean hourly?" in err


def test_an_unknown_connection_is_a_config_error_with_a_suggestion(tmp_path: Path) -> None:
    config = tmp_path / "crmsync.toml"
    config.write_text('[connections.emea_sf]\ntype = "salesforce"\n', "utf-8")
    code, _, err = _cli({}, "run", "--config", str(config), "--connection", "emea_fs")
    assert code == ExitCode.BAD_CONFIG
    assert "unknown connection 'emea_fs' (did you mean emea_sf?)" in err


def test_scheduler_once_fires_the_due_slot_once_and_checks_credentials_first(
    tmp_path: Path, hubspot: SandboxServer
) -> None:
    state = f"sqlite:///{(tmp_path / 'state.db').as_posix()}"
    config = tmp_path / "crmsync.toml"
    config.write_text(f"""
[state]
url = "{state}"
[connections.hub]
type = "hubspot"
base_url = "{hubspot.base_url}"
rules = "{RULES}"
[schedules.minutely]
connection = "hub"
every = "1m"
""", "utf-8")
    code, _, err = _cli({}, "scheduler", "--once", "--config", str(config))
    assert code == ExitCode.BAD_CONFIG and "CRMSYNC_CONNECTIONS__HUB__TOKEN" in err
    with StateStore.open(state) as store:
        assert store.slots("minutely") == []  # nothing claimed before credentials were there

    env = {"CRMSYNC_CONNECTIONS__HUB__TOKEN": hubspot.token}
    assert _cli(env, "setup", "--config", str(config), "--connection", "hub")[0] == 0
    code, _, err = _cli(env, "scheduler", "--once", "--config", str(config))
    assert code == 0, err
    assert "schedule minutely: slot" in err and " ok" in err
    _cli(env, "scheduler", "--once", "--config", str(config))  # the same minute: nothing new
    with StateStore.open(state) as store:
        slots = store.slots("minutely")
        runs = store.runs(connection="hub", trigger="schedule:minutely")
    # One run per claimed slot (a second --once in a new minute fires that minute's slot).
    assert 1 <= len(slots) <= 2 and len({s.slot_at for s in slots}) == len(slots)
    assert sorted(s.run_id for s in slots) == sorted(r.id for r in runs)
