"""Issue "Throughput" §1: write batches in flight at once, settled on the run's thread.

The pool and the cursor gate are exercised directly with real threads; the run as a whole
through the real SDKs against the sandboxes: a concurrent run must leave the CRM exactly as a
one-call-at-a-time run does, and a run killed with writes in flight still converges.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crmsync.connectors.salesforce import SalesforceConnector
from crmsync.errors import ExitCode, TransientError
from crmsync.model import Cursor
from crmsync.sandbox.launch import build_sandbox
from crmsync.state import StateStore
from crmsync.sync.inflight import CursorGate, InFlight
from crmsync.sync.readahead import read_ahead
from crmsync.sync.summary import RunSummary, bulk_jobs, estimate_write_calls

from .conftest import ANCHOR, Crm, crm_state, task_signature

# -- the pool -------------------------------------------------------------------------------------


def test_the_pool_keeps_at_most_concurrency_calls_in_flight_and_settles_on_the_callers_thread(
) -> None:
    running = 0
    most = 0
    lock = threading.Lock()
    release = threading.Event()
    settled_on: list[int] = []
    settled_pages: list[tuple[int, ...]] = []

    def call() -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        release.wait(5)
        with lock:
            running -= 1
        return threading.get_ident()

    pool = InFlight(3, on_settled=settled_pages.append)
    # Release the calls a moment after the pool is full, from another thread.
    threading.Timer(0.2, release.set).start()
    worker_ids: list[int] = []
    for page in range(8):
        pool.submit(call, lambda ident: (worker_ids.append(ident),
                                         settled_on.append(threading.get_ident())), (page,))
    pool.settle_all()
    pool.close()
    assert most == 3
    assert len(worker_ids) == 8
    assert set(settled_on) == {threading.get_ident()}, "settled off the run's thread"
    assert threading.get_ident() not in worker_ids, "the calls ran on the run's thread"
    assert sorted(p for (p,) in settled_pages) == list(range(8))


def test_a_failed_call_stops_sending_and_is_raised_after_the_others_settled() -> None:
    settled: list[str] = []
    gate = threading.Event()

    def slow_ok() -> str:
        gate.wait(5)
        return "ok"

    def failing() -> str:
        raise TransientError("HubSpot batch update: 503 after 5 attempts")

    pool = InFlight(4)
    pool.submit(slow_ok, settled.append)
    pool.submit(failing, settled.append)
    time.sleep(0.1)  # the failing call has returned; the slow one is still in flight
    threading.Timer(0.2, gate.set).start()
    sent_after_failure: list[str] = []
    with pytest.raises(TransientError):
        pool.submit(lambda: sent_after_failure.append("sent") or "x", settled.append)
    assert sent_after_failure == [], "a write was sent after a call had failed"
    # The call that succeeded was settled (its write happened: the journal must say so).
    assert settled == ["ok"]
    pool.close()


# -- the cursor gate ------------------------------------------------------------------------------


def _cursor(minute: int) -> Cursor:
    return Cursor("hubspot:contacts", datetime(2026, 11, 23, 9, minute, tzinfo=UTC), frozenset())


def test_a_pages_cursor_waits_for_its_writes_and_for_every_earlier_page() -> None:
    gate = CursorGate()
    first, second, third = gate.open_page(), gate.open_page(), gate.open_page()
    gate.planned(first, 2)
    gate.page_read(first, _cursor(1))
    gate.page_read(second, _cursor(2))  # no writes of its own
    gate.planned(third, 1)
    gate.page_read(third, _cursor(3))
    assert gate.ready() is None, "page 1 still has writes in flight"
    gate.settled((third,))
    assert gate.ready() is None, "page 3 settled, but page 1 before it has not"
    gate.settled((first,))
    assert gate.ready() is None, "one of page 1's two writes is still in flight"
    gate.settled((first,))
    assert gate.ready() == _cursor(3)
    assert gate.ready() is None, "a cursor is handed out once"


# -- read-ahead -----------------------------------------------------------------------------------


def test_read_ahead_yields_every_page_in_order_and_reraises_the_readers_error() -> None:
    def pages():
        yield from range(50)
        raise TransientError("read failed")

    seen = []
    with pytest.raises(TransientError):
        for page in read_ahead(pages()):
            seen.append(page)
    assert seen == list(range(50))


def test_closing_read_ahead_early_stops_the_reader() -> None:
    produced = []

    def pages():
        for n in range(1000):
            produced.append(n)
            yield n

    iterator = read_ahead(pages(), depth=2)
    assert next(iterator) == 0
    iterator.close()
    time.sleep(0.1)
    count = len(produced)
    time.sleep(0.2)
    assert len(produced) == count < 10, "the reader went on after the run stopped"


# -- whole runs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("crm_name", ["hubspot", "salesforce"])
def test_a_concurrent_run_leaves_the_crm_exactly_as_a_sequential_one(
    crm_name: str, tmp_path: Path
) -> None:
    outcomes = {}
    for concurrency in (1, 4):
        workdir = tmp_path / f"concurrency-{concurrency}"
        workdir.mkdir()
        server = build_sandbox(crm_name, contacts=600, seed=11, anchor=ANCHOR)
        with server:
            crm = Crm(crm_name, server, workdir)
            crm.quiet_rate_limits()
            crm.setup()
            # Each call waits a little, so several batches really are in flight together.
            server.install_faults({"latency_ms": 15, "times": None})
            summary = crm.run(full=True, concurrency=concurrency)
            assert summary.exit_code == ExitCode.OK, summary.error
            assert summary.counts["field_writes"] > 0 and summary.counts["tasks_created"] > 0
            identities = task_signature(crm)
            assert len(identities) == len(set(identities)), "a task was created twice"
            outcomes[concurrency] = (crm_state(crm), summary.counts["field_writes"],
                                     summary.counts["tasks_created"])
            again = crm.run(concurrency=concurrency)
            assert again.counts["field_writes"] == 0 and again.counts["tasks_created"] == 0
            store = StateStore.open(f"sqlite:///{(workdir / 'state.db').as_posix()}")
            try:
                for stream in summary.read_by_stream:
                    assert store.pending_entries(stream) == [], "a write was never settled"
            finally:
                store.close()
    assert outcomes[4] == outcomes[1]


def test_salesforce_updates_above_the_bulk_threshold_go_as_one_bulk_job_with_the_same_outcome(
    tmp_path: Path,
) -> None:
    outcomes = {}
    for threshold in (0, 100):
        workdir = tmp_path / f"threshold-{threshold}"
        workdir.mkdir()
        with build_sandbox("salesforce", contacts=500, seed=11, anchor=ANCHOR) as server:
            crm = Crm("salesforce", server, workdir)
            crm.setup()
            crm.admin("POST", "config", {"page_size": 50})  # many pages per object
            refused = sorted(r["id"] for r in crm.records("Contact"))[3]
            server.install_faults({"rules": [
                {"kind": "reject_record", "ids": [refused], "times": None,
                 "error_code": "FIELD_CUSTOM_VALIDATION_EXCEPTION"}]})
            summary = crm.run(full=True, bulk_threshold=threshold)
            assert summary.exit_code == ExitCode.PARTIAL, summary.error
            assert [r["record_id"] for r in summary.rejections] == [refused]
            paths = set(summary.write_paths.values())
            assert paths == ({"bulk"} if threshold else {"batches"}), summary.write_paths
            # Each object's updates (fewer than BULK_JOB_RECORDS) wait for its end: one job each,
            # not one every ``threshold`` updates.
            assert summary.counts["bulk_jobs"] == (len(summary.write_paths) if threshold else 0)
            outcomes[threshold] = (crm_state(crm), summary.counts["field_writes"])
            server.install_faults({"rules": []})
            retry = crm.run(bulk_threshold=threshold)
            assert retry.exit_code == ExitCode.OK, retry.error
    assert outcomes[100] == outcomes[0]


def test_a_plan_prices_salesforce_updates_above_the_bulk_threshold_as_bulk_jobs(
    tmp_path: Path,
) -> None:
    with build_sandbox("salesforce", contacts=500, seed=11, anchor=ANCHOR) as server:
        # One rules clock for the plan and the run it predicts.
        crm = Crm("salesforce", server, tmp_path,
                  now=datetime.now(UTC))  # noqa: TID251 - read once, then fixed
        crm.setup()
        # Many pages per object; a job polled once before it completes, as on a real org
        # (where its close never answers JobComplete).
        crm.admin("POST", "config", {"page_size": 50, "bulk_polls": 1})
        plan = crm.run(dry_run=True, bulk_threshold=100)
        actual = crm.run(bulk_threshold=100)
        assert actual.exit_code == ExitCode.OK, actual.error
        planned_jobs = sum(bulk_jobs(p["updates"], 100)[0] for p in plan.planned_writes.values())
        assert planned_jobs == actual.counts["bulk_jobs"] == 2, actual.counts
        # The plan reads what the run reads: the rest of the run's calls are its writes. A job
        # is priced at five calls (create, upload, close, a poll, the failures); its polls vary.
        writes = actual.api_calls - plan.api_calls
        assert 0 <= plan.estimated_write_calls - writes <= planned_jobs, (
            plan.estimated_write_calls, writes)


def test_the_estimate_of_a_large_salesforce_update_counts_jobs_not_collection_calls() -> None:
    limits = SalesforceConnector.limits
    summary = RunSummary("r", "salesforce", "plan", datetime.now(UTC))  # noqa: TID251
    summary.planned_writes["salesforce:Contact"] = Counter(updates=25_000)
    summary.planned_writes["salesforce:Lead"] = Counter(updates=1_500)
    # Contact: two jobs of 10,000 while it is read and one of the 5,000 left at its end;
    # Lead: fewer than the threshold, as Collections batches of 200.
    expected = 3 * limits.calls_per_bulk_write + math.ceil(1_500 / limits.write_batch)
    assert estimate_write_calls(summary, limits, bulk_threshold=2000) == expected
    # Without a threshold, every update as Collections batches, per stream.
    batches = math.ceil(25_000 / limits.write_batch) + math.ceil(1_500 / limits.write_batch)
    assert estimate_write_calls(summary, limits) == batches
