"""Issue "Hard edges": the retry budget caps server-requested waits, state-store failures are
clear errors with exit codes and lose nothing, miss reasons never store what reps typed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from crmsync.config import load_settings
from crmsync.errors import ExitCode
from crmsync.sandbox.launch import build_sandbox
from crmsync.state import StateError, StateStore, StoreCorrupt, StoreLost, StoreUnavailable
from crmsync.sync import SyncOptions, SyncRun
from crmsync.wiring import load_parts

from .conftest import ANCHOR, Crm, crm_state

POSTGRES_URL = os.environ.get("CRMSYNC_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _with_sync(crm: Crm, extra: str) -> None:
    crm.config.write_text(crm.config.read_text("utf-8") + extra, "utf-8")


def test_a_server_wait_beyond_the_retry_budget_ends_the_run_at_once(crm: Crm) -> None:
    crm.setup()
    _with_sync(crm, "[sync]\nretry_budget_s = 5\n")
    crm.server.install_faults({"rules": [{"method": "*", "path": "/", "after": 2, "times": 1,
                                          "kind": "rate_limit", "retry_after": 45}]})
    summary = crm.run()
    assert summary.exit_code == ExitCode.TRANSIENT
    assert "45 s" in (summary.error or "") and "retry after" in (summary.error or "")
    # It did not sleep 45 s: the run's own clock says so (no wall-clock assertion needed).
    assert summary.finished_at is not None
    assert (summary.finished_at - summary.started_at) < timedelta(seconds=45)


def test_a_garbage_state_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    path.write_bytes(b"this is not a database, just junk " * 200)
    with pytest.raises(StoreCorrupt) as caught:
        StateStore.open(f"sqlite:///{path}")
    assert caught.value.exit_code == ExitCode.BAD_CONFIG
    assert str(path) in str(caught.value) and "not a crmsync database" in str(caught.value)


def test_passwords_never_show_in_store_errors() -> None:
    url = "postgresql+psycopg://bob:hunter2@127.0.0.1:1/x?password=sekrit&application_name=a"
    with pytest.raises(StateError) as caught:
        StateStore.open(url)
    message = str(caught.value)
    assert "hunter2" not in message and "sekrit" not in message
    assert "127.0.0.1" in message and caught.value.exit_code == ExitCode.TRANSIENT


def test_deleting_the_sqlite_file_during_a_run_stops_it(crm: Crm, tmp_path: Path) -> None:
    crm.setup()
    parts = load_parts(load_settings(crm.config, env={}))
    state_file = tmp_path / "state.db"
    deleted = []

    def delete_once(stream: str, n: int) -> None:
        if not deleted:
            state_file.unlink()
            deleted.append(stream)

    try:
        runner = SyncRun(parts.connector, parts.ruleset, parts.store,
                         options=SyncOptions(full=True), on_progress=delete_once)
        with pytest.raises(StoreLost) as caught:
            runner.execute()
    finally:
        parts.close()
    assert caught.value.exit_code == ExitCode.TRANSIENT
    assert "deleted or replaced" in str(caught.value)


def _terminate_other_backends(url: str) -> None:
    """Terminate the store's connections: those of this test's own ``application_name`` only.

    Other suites may use the same database at the same time (other developers' runs on a
    shared server); their connections are not this test's to drop.
    """
    name = sa.make_url(url).query["application_name"]
    engine = sa.create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = :name AND pid <> pg_backend_pid()"), {"name": name})
    engine.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema of its own, reached under an application name of its own."""
    from pgschema import postgres_url as fresh_schema

    for url in fresh_schema():
        yield f"{url}&application_name=crmsync-hard-edges-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("crm_name", ["hubspot", "salesforce"])
def test_a_dropped_store_connection_exits_4_and_the_next_run_finishes(
    crm_name: str, postgres_url: str, tmp_path: Path
) -> None:
    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    # One rules clock for both sandboxes' runs: on a live clock a "within N days" boundary may
    # pass between the reference and the re-run and decide a contact differently.
    now = datetime.now(UTC)  # noqa: TID251 - read once, then fixed for the comparison
    with build_sandbox(crm_name, contacts=120, seed=7, anchor=ANCHOR) as server:
        ref = Crm(crm_name, server, reference_dir, now=now)
        ref.quiet_rate_limits()
        ref.setup()
        assert ref.run(full=True).exit_code == ExitCode.OK
        expected = crm_state(ref)
    with build_sandbox(crm_name, contacts=120, seed=7, anchor=ANCHOR) as server:
        crm = Crm(crm_name, server, tmp_path, now=now)
        crm.quiet_rate_limits()
        text = crm.config.read_text("utf-8")
        crm.config.write_text(text[:text.index("[state]")] + f'[state]\nurl = "{postgres_url}"\n',
                              "utf-8")
        crm.setup()
        parts = load_parts(load_settings(crm.config, env={}))
        killed = []

        def kill_once(stream: str, n: int) -> None:
            if not killed:
                killed.append(stream)
                _terminate_other_backends(postgres_url)

        try:
            with pytest.raises(StoreUnavailable) as caught:
                SyncRun(parts.connector, parts.ruleset, parts.store, now=now,
                        options=SyncOptions(full=True), on_progress=kill_once).execute()
        finally:
            parts.close()
        assert caught.value.exit_code == ExitCode.TRANSIENT
        assert "hunter" not in str(caught.value)
        again = crm.run()
        assert again.exit_code == ExitCode.OK, again.error
        assert crm_state(crm) == expected


def test_miss_reasons_in_the_ledger_hold_no_personal_data(crm: Crm) -> None:
    crm.setup()
    typed = "lost to rival, call jane.doe@example.com or +1 (415) 555-0199 re 4111111111111111"
    deal_object, stage, reason, lost = (
        ("deals", "dealstage", "closed_lost_reason", "closedlost") if crm.crm == "hubspot"
        else ("Opportunity", "StageName", "Loss_Reason__c", "Closed Lost"))
    lost_deals = [d for d in crm.records(deal_object) if d.get(stage) == lost]
    assert lost_deals, "the seeded CRM has lost deals"
    for deal in lost_deals:
        body = {reason: typed}
        crm.admin("PATCH", f"records/{deal_object}/{deal['id']}",
                  {"properties": body} if crm.crm == "hubspot" else body)
    summary = crm.run(full=True)
    stored = StateStore.open(load_settings(crm.config, env={}).state.url)
    try:
        ledger = repr(stored.get_run(summary.run_id))
    finally:
        stored.close()
    assert summary.miss_types.get("soft", 0) + summary.miss_types.get("hard", 0) > 0
    for text in ("jane.doe", "555-0199", "4111111111111111", "rival"):
        assert text not in ledger
    reasons = summary.to_json()["funnel"]["miss_reasons"]
    assert sum(sum(v.values()) for v in reasons.values()) > 0
