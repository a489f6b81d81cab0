"""The state store behaves the same on SQLite and PostgreSQL, and survives being reopened."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from functools import partial
from pathlib import Path

import pytest
import sqlalchemy as sa

from crmsync.model import Cursor, TaskClose, TaskCreate, TaskSpec
from crmsync.state import PendingWrite, StateError, StateStore
from pgschema import postgres_url

PG_URL = os.environ.get(
    "CRMSYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
T0 = datetime(2026, 11, 23, 14, 23, 1, 123456, tzinfo=UTC)
STREAM = "hubspot:contacts"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/nested/state.db"
    else:
        yield from postgres_url()


@pytest.fixture
def store(url: str) -> Iterator[StateStore]:
    with StateStore.open(url) as opened:
        yield opened


def _create(contact: str, purpose: str = "follow_up") -> TaskCreate:
    spec = TaskSpec(purpose=purpose, subject="Call", body="Call them", due=date(2026, 11, 25))
    return TaskCreate(contact, "contact", f"{contact}:{purpose}", spec)


# -- run ledger ---------------------------------------------------------------------------------


def test_run_ledger_round_trip(store: StateStore) -> None:
    run_id = store.start_run("hubspot", "run", ruleset_version="3", ruleset_hash="abc",
                             started_at=T0)
    assert run_id.startswith("r20261123T142301-") and len(run_id) == len("r20261123T142301-ab12")
    running = store.get_run(run_id)
    assert running is not None and running.status == "running" and running.finished_at is None
    counts = {"read": 200, "updated": 12, "transitions": {"lead → prospect": 3}}
    store.finish_run(run_id, "partial", 1, counts, error="RecordRejected: 1 record",
                     finished_at=T0 + timedelta(seconds=90))
    done = store.get_run(run_id)
    assert done is not None
    assert (done.status, done.exit_code, done.counts, done.error) == (
        "partial", 1, counts, "RecordRejected: 1 record")
    assert done.started_at == T0 and done.started_at.tzinfo is not None
    assert done.finished_at == T0 + timedelta(seconds=90)
    assert (done.ruleset_version, done.ruleset_hash) == ("3", "abc")
    assert store.get_run("r-missing") is None


def test_runs_lists_newest_first_and_limits(store: StateStore) -> None:
    ids = [store.start_run("salesforce", "plan", started_at=T0 + timedelta(minutes=i))
           for i in range(5)]
    assert [r.id for r in store.runs(limit=3)] == ids[::-1][:3]
    assert sorted(ids) == ids  # run ids sort by start time


def test_unknown_status_and_run_are_refused(store: StateStore) -> None:
    run_id = store.start_run("hubspot", "run")
    with pytest.raises(ValueError):
        store.finish_run(run_id, "great", 0, {})
    with pytest.raises(KeyError):
        store.finish_run("r-nope", "ok", 0, {})
    with pytest.raises(ValueError):
        store.start_run("hubspot", "sideways")


# -- cursors ------------------------------------------------------------------------------------


def test_cursor_round_trips_aware_utc_and_ids(store: StateStore) -> None:
    assert store.get_cursor(STREAM) == Cursor(STREAM)
    plus_two = timezone(timedelta(hours=2))
    value = datetime(2026, 11, 23, 16, 0, 0, 500, tzinfo=plus_two)
    store.commit_cursor(Cursor(STREAM, value, frozenset({"7", "3"})))
    got = store.get_cursor(STREAM)
    assert got.value == value and got.value.utcoffset() == timedelta(0)
    assert got.ids_at_value == frozenset({"7", "3"})
    store.commit_cursor(Cursor(STREAM, value + timedelta(seconds=1)))
    assert store.get_cursor(STREAM) == Cursor(STREAM, value + timedelta(seconds=1), frozenset())
    assert store.get_cursor("salesforce:Lead") == Cursor("salesforce:Lead")


def test_naive_datetimes_are_refused(store: StateStore) -> None:
    with pytest.raises(sa.exc.StatementError) as info:
        store.commit_cursor(Cursor(STREAM, datetime(2026, 1, 1)))
    assert isinstance(info.value.orig, ValueError)


def test_state_survives_reopen(url: str) -> None:
    with StateStore.open(url) as first:
        run_id = first.start_run("hubspot", "run", started_at=T0)
        first.commit_cursor(Cursor(STREAM, T0, frozenset({"1"})))
    with StateStore.open(url) as second:  # create_all and the version row are idempotent
        assert second.get_cursor(STREAM) == Cursor(STREAM, T0, frozenset({"1"}))
        assert [r.id for r in second.runs()] == [run_id]


# -- journal ------------------------------------------------------------------------------------


def test_crash_leaves_pending_entries_until_settled(url: str) -> None:
    with StateStore.open(url) as store:
        run_id = store.start_run("hubspot", "run", started_at=T0)
        ids = store.journal_fields(run_id, STREAM, [
            ("1", "contact", {"status": "lead", "score": 3}, {"status": "prospect"}),
            ("2", "contact", {}, {"status": "opportunity", "evaluated_at": T0}),
        ])
        assert len(ids) == 2
        # killed here: the CRM call's outcome was never recorded
    with StateStore.open(url) as store:
        pending = store.pending_entries(STREAM)
        assert [(e.id, e.record_id, e.state) for e in pending] == [
            (ids[0], "1", "pending"), (ids[1], "2", "pending")]
        assert pending[0].before == {"status": "lead"}  # only what is about to change
        assert pending[1].before == {"status": None, "evaluated_at": None}
        assert pending[1].after == {"status": "opportunity", "evaluated_at": T0.isoformat()}
        assert store.pending_entries("salesforce:Lead") == []
        store.journal_applied([ids[0]])
        store.journal_rejected(ids[1], "INVALID_EMAIL", "property value is not valid")
        assert store.pending_entries(STREAM) == []
        entries = store.journal_for_run(run_id)
        assert [(e.seq, e.state, e.error_code) for e in entries] == [
            (1, "applied", None), (2, "rejected", "INVALID_EMAIL")]


def test_journal_pending_numbers_entries_per_run(store: StateStore) -> None:
    run_a = store.start_run("hubspot", "run")
    run_b = store.start_run("hubspot", "run")
    write = PendingWrite(STREAM, "contact", "9", "field", "score", 1, 2)
    store.journal_pending(run_a, [write, write])
    store.journal_pending(run_b, [write])
    store.journal_pending(run_a, [write])
    assert [e.seq for e in store.journal_for_run(run_a)] == [1, 2, 3]
    assert [e.seq for e in store.journal_for_run(run_b)] == [1]
    assert store.journal_pending(run_a, []) == []


def test_journal_applied_records_created_task_ids(store: StateStore) -> None:
    run_id = store.start_run("hubspot", "run")
    [entry_id] = store.journal_pending(run_id, [PendingWrite(
        STREAM, "contact", "1", "task_create", "follow_up", None, {"subject": "Call"},
        task_key="1:follow_up")])
    store.journal_applied([entry_id], task_ids={entry_id: "T-77"})
    [entry] = store.journal_for_run(run_id)
    assert (entry.state, entry.task_id, entry.task_key) == ("applied", "T-77", "1:follow_up")


# -- task registry ------------------------------------------------------------------------------


def test_task_intent_is_idempotent_and_open_tasks_are_found(store: StateStore) -> None:
    run_id = store.start_run("hubspot", "run")
    first = store.task_intent(run_id, STREAM, _create("1"))
    assert (first.state, first.task_id, first.purpose) == ("intent", None, "follow_up")
    again = store.task_intent(run_id, STREAM, _create("1"))
    assert again.state == "intent"
    # the second intent did not journal a second create
    assert [e.kind for e in store.journal_for_run(run_id)] == ["task_create"]
    assert [t.key for t in store.pending_task_intents(STREAM)] == ["1:follow_up"]

    store.task_created("1:follow_up", "T-1")
    record = store.task_lookup("1", "1:follow_up")
    assert record is not None and (record.state, record.task_id) == ("open", "T-1")
    assert store.pending_task_intents(STREAM) == []
    [entry] = store.journal_for_run(run_id)
    assert (entry.state, entry.task_id) == ("applied", "T-1")
    # an open task is never turned back into an intent: a second create cannot happen
    assert store.task_intent(run_id, STREAM, _create("1")).state == "open"
    assert [t.task_id for t in store.open_tasks(["1", "2"])] == ["T-1"]
    assert store.task_lookup("2", "1:follow_up") is None


def test_intent_left_by_a_crash_is_recovered(url: str) -> None:
    with StateStore.open(url) as store:
        run_id = store.start_run("hubspot", "run")
        store.task_intents(run_id, STREAM, [_create("1"), _create("2")])
    with StateStore.open(url) as store:
        pending = store.pending_task_intents(STREAM)
        assert [(t.record_id, t.state) for t in pending] == [("1", "intent"), ("2", "intent")]
        assert {t.record_id for t in store.open_tasks(["1", "2"])} == {"1", "2"}
        store.task_created("1:follow_up", "T-1")
        store.task_failed("2:follow_up", "INTERRUPTED", "run stopped before the CRM answered")
        assert store.pending_task_intents(STREAM) == []
        assert [t.record_id for t in store.open_tasks(["1", "2"])] == ["1"]
        states = {e.record_id: e.state for e in store.journal_for_run(run_id)}
        assert states == {"1": "applied", "2": "rejected"}
        # a failed key may be tried again by a later run
        later = store.start_run("hubspot", "run")
        assert store.task_intent(later, STREAM, _create("2")).state == "intent"


def test_task_close_is_journaled_then_settled(store: StateStore) -> None:
    run_id = store.start_run("hubspot", "run")
    store.task_intent(run_id, STREAM, _create("1"))
    store.task_created("1:follow_up", "T-1")
    close_run = store.start_run("hubspot", "run")
    [close_id] = store.journal_task_closes(
        close_run, STREAM, [TaskClose("1", "contact", "1:follow_up", "T-1")])
    assert [e.id for e in store.pending_entries(STREAM)] == [close_id]
    store.task_closed("1:follow_up")
    assert store.pending_entries(STREAM) == []
    record = store.task_lookup("1", "1:follow_up")
    assert record is not None and record.state == "closed" and not record.is_open
    assert store.open_tasks(["1"]) == []
    [entry] = store.journal_for_run(close_run)
    assert (entry.kind, entry.task_id, entry.state) == ("task_close", "T-1", "applied")


# -- rejected records ---------------------------------------------------------------------------


def test_rejections_are_retried_until_resolved(store: StateStore) -> None:
    run_id = store.start_run("hubspot", "run")
    store.record_rejection(STREAM, "b", run_id, "INVALID", "bad value")
    store.record_rejection(STREAM, "a", run_id, "INVALID", "bad value")
    store.record_rejection("salesforce:Lead", "c", run_id, "INVALID", "bad value")
    assert store.rejected_ids(STREAM) == ["a", "b"]
    store.record_rejection(STREAM, "a", run_id, "INVALID", "still bad")  # attempts 2
    store.resolve_rejections(STREAM, ["a", "zzz"])
    assert store.rejected_ids(STREAM) == ["b"]
    store.resolve_rejection(STREAM, "b")
    assert store.rejected_ids(STREAM) == []
    store.record_rejection(STREAM, "b", run_id, "INVALID", "broke again")
    assert store.rejected_ids(STREAM) == ["b"]
    assert store.rejected_ids("salesforce:Lead") == ["c"]
    with store._engine.connect() as conn:  # attempts are counted, not reset, on re-rejection
        attempts = conn.execute(sa.text(
            "SELECT attempts FROM crmsync_rejections WHERE record_id = 'b'")).scalar_one()
    assert attempts == 2


# -- per-page calls -----------------------------------------------------------------------------


def _decision(record_id: str, status: str, modified: datetime) -> dict[str, object]:
    return {"record_id": record_id, "status": status, "miss_type": "none", "score": 40.0,
            "status_since": T0, "ruleset_hash": "rs1", "modified_at": modified}


def test_page_context_reads_states_open_tasks_and_closed_counts(store: StateStore) -> None:
    run_id = store.start_run("hubspot", "run", started_at=T0)
    store.save_contact_states(run_id, STREAM, [_decision("a", "lead", T0),
                                               _decision("b", "prospect", T0)])
    store.save_contact_states(run_id, "salesforce:Lead", [_decision("a", "opportunity", T0)])
    store.task_intents(run_id, STREAM, [_create("a"), _create("b", "nurture")])
    store.task_created("a:follow_up", "T-1")
    store.task_closed("b:nurture")
    store.task_intents(run_id, STREAM, [_create("b", "nurture")])  # a new one, still intent

    context = store.page_context(STREAM, ["a", "b", "c"])

    assert {k: (v.status, v.modified_at) for k, v in context.states.items()} == {
        "a": ("lead", T0), "b": ("prospect", T0)}
    assert sorted((t.key, t.state, t.task_id) for t in context.open_tasks) == [
        ("a:follow_up", "open", "T-1"), ("b:nurture", "intent", None)]
    assert context.closed_counts == {}  # the closed key was planned again: not closed now
    store.task_closed("b:nurture")
    assert store.page_context(STREAM, ["b"]).closed_counts == {("b", "nurture"): 1}
    assert store.page_context(STREAM, []).states == {}


def test_settle_fields_records_a_whole_batch_at_once(store: StateStore) -> None:
    run_id = store.start_run("hubspot", "run", started_at=T0)
    store.record_rejection(STREAM, "1", run_id, "INVALID", "bad value")  # retried this run
    store.record_rejection(STREAM, "3", run_id, "INVALID", "bad value")
    ids = store.journal_fields(run_id, STREAM, [
        (rid, "contact", {}, {"status": "prospect"}) for rid in ("1", "2", "3")])

    store.settle_fields(run_id, STREAM, applied=ids[:2], resolved=["1", "2"],
                        states=[_decision("1", "prospect", T0), _decision("2", "prospect", T0)],
                        rejected=[(ids[2], "3", "INVALID_EMAIL", "property value is not valid")])

    entries = store.journal_for_run(run_id)
    assert [(e.record_id, e.state, e.error_code) for e in entries] == [
        ("1", "applied", None), ("2", "applied", None), ("3", "rejected", "INVALID_EMAIL")]
    assert store.rejected_ids(STREAM) == ["3"]
    assert sorted(store.contact_states(STREAM, ["1", "2", "3"])) == ["1", "2"]
    with store._engine.connect() as conn:  # a second rejection counts a second attempt
        attempts = conn.execute(sa.text(
            "SELECT attempts, error_code FROM crmsync_rejections WHERE record_id = '3'")).one()
    assert tuple(attempts) == (2, "INVALID_EMAIL")


def test_settle_fields_is_all_or_nothing(store: StateStore) -> None:
    run_id = store.start_run("hubspot", "run", started_at=T0)
    [entry_id] = store.journal_fields(run_id, STREAM, [("1", "contact", {}, {"status": "lead"})])
    with pytest.raises(ValueError, match="naive"):  # the states part fails, after the journal's
        store.settle_fields(run_id, STREAM, applied=[entry_id], resolved=["1"],
                            states=[_decision("1", "lead", datetime(2026, 1, 1))])
    assert [e.id for e in store.pending_entries(STREAM)] == [entry_id]
    assert store.contact_states(STREAM, ["1"]) == {}


def test_bulk_writes_store_what_sqlalchemy_core_stores(url: str) -> None:
    """Rows written through the compiled executemany read back exactly as Core's writes."""
    when = datetime(2026, 11, 23, 16, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    with StateStore.open(url) as store:
        run_id = store.start_run("hubspot", "run", started_at=T0)
        store.save_contact_states(run_id, STREAM, [_decision("bulk", "lead", when)])
        store.journal_fields(run_id, STREAM, [("bulk", "contact", {}, {"reason": None})])
        from crmsync.state.schema import _contacts, _journal
        with store._engine.begin() as conn:  # the same values through plain Core
            conn.execute(_contacts.insert().values(
                stream=STREAM, first_run_id=run_id, run_id=run_id, updated_at=T0,
                **_decision("core", "lead", when)))
            conn.execute(_journal.insert().values(
                run_id=run_id, seq=99, stream=STREAM, object_type="contact", record_id="core",
                kind="fields", name="reason", before={"reason": None}, after={"reason": None},
                state="pending", created_at=T0, updated_at=T0))
        with store._engine.connect() as conn:
            contacts = {row[0]: row[1:] for row in conn.execute(sa.text(
                "SELECT record_id, modified_at, status_since, score FROM crmsync_contacts"))}
            journal = {row[0]: row[1:] for row in conn.execute(sa.text(
                "SELECT record_id, before, after FROM crmsync_journal"))}
    assert contacts["bulk"] == contacts["core"]  # the very text (SQLite) or value (PostgreSQL)
    assert journal["bulk"] == journal["core"]
    with StateStore.open(url) as store:
        states = store.contact_states(STREAM, ["bulk"])
    assert states["bulk"].modified_at == when and states["bulk"].modified_at.tzinfo is not None


# -- opening ------------------------------------------------------------------------------------


def test_sqlite_uses_wal_and_foreign_keys(tmp_path) -> None:
    with StateStore.open(f"sqlite:///{tmp_path}/s.db") as store, store._engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        # NORMAL (1): in WAL mode a killed process loses no commit (schema.py says why)
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1
        with pytest.raises(sa.exc.IntegrityError):
            store.record_rejection(STREAM, "1", "r-no-such-run", "X", "y")


def test_in_memory_sqlite_shares_one_database() -> None:
    with StateStore.open("sqlite://") as store:
        run_id = store.start_run("hubspot", "demo")
        assert store.get_run(run_id) is not None


def test_newer_schema_is_refused(tmp_path) -> None:
    url = f"sqlite:///{tmp_path}/s.db"
    StateStore.open(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE crmsync_schema_version SET version = 99"))
    engine.dispose()
    with pytest.raises(StateError, match="schema version 99"):
        StateStore.open(url)


def test_open_errors_never_show_the_password() -> None:
    with pytest.raises(StateError) as info:
        StateStore.open("postgresql+psycopg://u:hunter2@127.0.0.1:1/db?connect_timeout=2")
    assert "hunter2" not in str(info.value)
    with pytest.raises(StateError):
        StateStore.open("not a url")


def test_run_lease_admits_one_live_run_and_frees_a_dead_ones(tmp_path: Path) -> None:
    from crmsync.errors import RunInProgress

    with StateStore.open(f"sqlite:///{tmp_path / 'lease.db'}") as store:
        store.acquire_lease("sync:hubspot", "r1", timedelta(minutes=5))
        store.acquire_lease("sync:hubspot", "r1", timedelta(minutes=5))  # a heartbeat
        with pytest.raises(RunInProgress):
            store.acquire_lease("sync:hubspot", "r2", timedelta(minutes=5))
        store.acquire_lease("sync:salesforce", "r2", timedelta(minutes=5))  # another CRM
        store.release_lease("sync:hubspot", "r1")
        store.acquire_lease("sync:hubspot", "r2", timedelta(minutes=5))
        # A holder on this machine whose process is gone (SIGKILL) does not block.
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True).stdout.strip()
        with store._engine.begin() as conn:  # simulate the killed run's row
            conn.execute(sa.text("UPDATE crmsync_leases SET holder = :h "
                                 "WHERE name = 'sync:hubspot'"),
                         {"h": f"r9@{socket.gethostname()}:{dead}"})
        store.acquire_lease("sync:hubspot", "r3", timedelta(minutes=5))


def test_sqlite_page_reads_and_settles_use_indexes(tmp_path: Path) -> None:
    """Per-page reads and settles look ids up by index, never scan a table that grows."""
    from crmsync.state import contacts, journal, rejections, tasks

    with StateStore.open(f"sqlite:///{tmp_path}/s.db") as store, store._engine.connect() as conn:
        builders = {build.__name__: build for build in (
            contacts._q_states, tasks._q_by_keys, tasks._q_journal_ids, journal._q_settle,
            rejections._q_resolve)}
        # The task reads are limited to one connection's keys: planned for a named one too.
        for view in (store, store.scoped("eu")):
            scope = view._in_scope(tasks._tasks.c.key)
            builders[f"_q_open@{view.connection}"] = partial(tasks._q_open, in_scope=scope)
            builders[f"_q_closed_counts@{view.connection}"] = partial(
                tasks._q_closed_counts, in_scope=scope)
        for name, build in builders.items():
            compiled = build(store._engine.dialect).compile(dialect=store._engine.dialect)
            params = ("x",) * len(compiled.positiontup or ())  # not run: only planned
            plan = " | ".join(row[3] for row in conn.exec_driver_sql(
                f"EXPLAIN QUERY PLAN {compiled}", params))
            assert "SCAN crmsync_" not in plan, (name, plan)
            assert "SEARCH crmsync_" in plan, (name, plan)
