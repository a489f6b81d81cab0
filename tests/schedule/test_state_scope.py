"""The state store keeps each connection's keys apart, and upgrades a store from before them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from crmsync.errors import RunInProgress
from crmsync.model import Cursor, TaskCreate, TaskSpec
from crmsync.state import PendingWrite, StateStore

T0 = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
STREAM = "hubspot:contacts"


@pytest.fixture
def store(state_url: str) -> Iterator[StateStore]:
    with StateStore.open(state_url) as opened:
        yield opened


def _create(contact: str, purpose: str = "follow_up") -> TaskCreate:
    spec = TaskSpec(purpose=purpose, subject="Call", body="Call them", due=date(2026, 11, 25))
    return TaskCreate(contact_id=contact, object_type="contacts", key=f"cs-{contact}-{purpose}",
                      spec=spec)


def test_each_connection_sees_only_its_own_state(store: StateStore) -> None:
    default, emea, us = store, store.scoped("emea"), store.scoped("us")
    runs = {view.connection: view.start_run("hubspot", "run") for view in (default, emea, us)}
    # The same stream and record ids in every connection (two portals seeded alike).
    for view, hour in ((default, 1), (emea, 2)):
        view.commit_cursor(Cursor(STREAM, T0 + timedelta(hours=hour), frozenset({"1"})))
        view.set_stream_stamp(STREAM, ruleset_version="v", ruleset_hash=f"h{hour}",
                              fieldmap_hash="f", run_id=runs[view.connection])
        view.save_contact_states(runs[view.connection], STREAM, [
            {"record_id": "1", "status": "lead" if hour == 1 else "prospect", "miss_type": "none",
             "score": 1.0, "status_since": None, "ruleset_hash": "h", "modified_at": T0}])
        view.record_rejection(STREAM, "1", runs[view.connection], "BAD", "refused")
        view.journal_pending(runs[view.connection], [
            PendingWrite(STREAM, "contacts", "1", "fields", "status", {}, {"status": "x"})])
    emea.task_intents(runs["emea"], STREAM, [_create("1")])

    assert emea.get_cursor(STREAM) == Cursor(STREAM, T0 + timedelta(hours=2), frozenset({"1"}))
    assert default.get_cursor(STREAM).value == T0 + timedelta(hours=1)
    assert us.get_cursor(STREAM) == Cursor(STREAM)
    assert (emea.stream_stamp(STREAM).ruleset_hash, emea.stream_stamp(STREAM).stream) == (
        "h2", STREAM)
    assert us.stream_stamp(STREAM) is None
    assert emea.contact_states(STREAM, ["1"])["1"].status == "prospect"
    assert emea.contact_states(STREAM, ["1"])["1"].stream == STREAM
    assert dict(default.status_counts()) == {"lead": 1}
    assert dict(emea.status_counts()) == {"prospect": 1} and dict(us.status_counts()) == {}
    assert [r.status for r in emea.report_rows()] == ["prospect"]
    assert emea.rejected_ids(STREAM) == ["1"] == default.rejected_ids(STREAM)
    assert us.rejected_ids(STREAM) == []
    pending = emea.pending_entries(STREAM)  # its field write and its task create
    assert {(e.run_id, e.stream, e.kind) for e in pending} == {
        (runs["emea"], STREAM, "fields"), (runs["emea"], STREAM, "task_create")}
    assert [e.run_id for e in default.pending_entries(STREAM)] == [runs["default"]]
    assert us.pending_entries(STREAM) == []

    # Tasks: the same record id and task key in two connections are two tasks.
    [task] = emea.open_tasks(["1"])
    assert (task.key, task.stream) == ("cs-1-follow_up", STREAM)
    assert default.open_tasks(["1"]) == [] and default.task_lookup("1", task.key) is None
    [fresh] = us.task_intents(runs["us"], STREAM, [_create("1")])
    assert fresh.state == "intent" and fresh.run_id == runs["us"]
    us.tasks_created({task.key: "T-us"})
    assert us.task_lookup("1", task.key).task_id == "T-us"
    assert emea.task_lookup("1", task.key).task_id is None  # still its own intent
    assert [t.key for t in emea.pending_task_intents(STREAM)] == [task.key]
    us.task_closed(task.key)
    assert us.closed_task_counts(["1"]) == {("1", "follow_up"): 1}
    assert emea.closed_task_counts(["1"]) == {}
    [journal] = [e for e in us.journal_for_run(runs["us"]) if e.kind == "task_create"]
    assert (journal.task_key, journal.stream, journal.task_id) == (task.key, STREAM, "T-us")

    # The ledger records each run's connection; history filters by it.
    assert [r.id for r in emea.runs()] == [runs["emea"]]
    assert {r.connection for r in store.runs(connection=None)} == {"default", "emea", "us"}
    assert [r.id for r in store.runs(connection="us")] == [runs["us"]]


def test_leases_are_per_connection(store: StateStore) -> None:
    emea, us = store.scoped("emea"), store.scoped("us")
    emea.acquire_lease("sync:hubspot", "r-emea", timedelta(minutes=5))
    assert us.acquire_lease("sync:hubspot", "r-us", timedelta(minutes=5)) is None
    with pytest.raises(RunInProgress):
        emea.acquire_lease("sync:hubspot", "r-other", timedelta(minutes=5))
    with pytest.raises(RunInProgress):
        store.scoped("emea").acquire_lease("sync:hubspot", "r-other", timedelta(minutes=5))
    assert store.acquire_lease("sync:hubspot", "r-default", timedelta(minutes=5)) is None


def test_a_store_from_before_connections_is_upgraded_in_place(state_url: str) -> None:
    with StateStore.open(state_url) as store:
        run = store.start_run("hubspot", "run", started_at=T0)
        store.finish_run(run, "ok", 0, {"read": 3})
        store.commit_cursor(Cursor(STREAM, T0, frozenset()))
        # Make it what crmsync wrote before connections: no columns, schema version 1.
        with store._engine.begin() as conn:
            for column in ("connection", "trigger"):
                conn.execute(sa.text(f'ALTER TABLE crmsync_runs DROP COLUMN "{column}"'))
            conn.execute(sa.text("DELETE FROM crmsync_schema_version"))
            conn.execute(sa.text("INSERT INTO crmsync_schema_version (version) VALUES (1)"))
    with StateStore.open(state_url) as store:
        [old] = store.runs()
        assert (old.id, old.connection, old.trigger, old.status) == (run, "default", None, "ok")
        assert store.get_cursor(STREAM).value == T0  # the default connection's keys are bare
        new = store.start_run("hubspot", "run", trigger="schedule:nightly")
        assert store.get_run(new).trigger == "schedule:nightly"
    with StateStore.open(state_url) as store:  # opening again changes nothing
        assert len(store.runs()) == 2


def test_page_reads_and_batch_settles_stay_in_their_connection(store: StateStore) -> None:
    """page_context and settle_fields (the sync's per-page calls) keep connections apart."""
    default, emea = store, store.scoped("emea")
    runs = {view.connection: view.start_run("hubspot", "run") for view in (default, emea)}
    # Read a page in the default connection first: its statements are cached before emea's.
    assert default.page_context(STREAM, ["1", "2"]).states == {}
    for view in (default, emea):
        run = runs[view.connection]
        applied, rejected = view.journal_fields(run, STREAM, [
            ("1", "contacts", {"status": None}, {"status": "lead"}),
            ("2", "contacts", {"status": None}, {"status": "lead"})])
        view.settle_fields(run, STREAM, applied=[applied], resolved=["1"], states=[
            {"record_id": "1", "status": f"lead-{view.connection}", "miss_type": "none",
             "score": 1.0, "status_since": None, "ruleset_hash": "h", "modified_at": T0}],
            rejected=[(rejected, "2", "BAD", "refused")])
    emea.task_intents(runs["emea"], STREAM, [_create("1"), _create("2", "nudge")])
    emea.tasks_created({"cs-2-nudge": "T-2"})
    emea.task_closed("cs-2-nudge")

    page = emea.page_context(STREAM, ["1", "2"])
    assert {rid: (s.status, s.stream) for rid, s in page.states.items()} == {
        "1": ("lead-emea", STREAM)}
    assert [(t.key, t.stream, t.state) for t in page.open_tasks] == [
        ("cs-1-follow_up", STREAM, "intent")]
    assert page.closed_counts == {("2", "nudge"): 1}
    page = default.page_context(STREAM, ["1", "2"])
    assert {rid: s.status for rid, s in page.states.items()} == {"1": "lead-default"}
    assert (page.open_tasks, page.closed_counts) == ([], {})
    assert emea.rejected_ids(STREAM) == ["2"] == default.rejected_ids(STREAM)
    assert store.scoped("us").rejected_ids(STREAM) == []
    entries = emea.journal_for_run(runs["emea"])
    assert [(e.record_id, e.kind, e.state, e.stream) for e in entries] == [
        ("1", "fields", "applied", STREAM), ("2", "fields", "rejected", STREAM),
        ("1", "task_create", "pending", STREAM), ("2", "task_create", "applied", STREAM)]
    assert [e.task_key for e in entries][2:] == ["cs-1-follow_up", "cs-2-nudge"]


def test_lease_heartbeat_renews_only_its_own_connections_lease(store: StateStore) -> None:
    emea, us = store.scoped("emea"), store.scoped("us")
    emea.acquire_lease("sync:hubspot", "r-1", timedelta(minutes=5))
    us.acquire_lease("sync:hubspot", "r-1", timedelta(minutes=5))  # same run id elsewhere
    emea.acquire_lease("sync:hubspot", "r-1", timedelta(minutes=5))  # the heartbeat
    with store._engine.connect() as conn:
        names = sorted(conn.execute(sa.text("SELECT name FROM crmsync_leases")).scalars())
    assert names == ["emea/sync:hubspot", "us/sync:hubspot"]
