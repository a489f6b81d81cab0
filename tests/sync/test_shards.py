"""Shards: a stream cut into key ranges that together read every record exactly once.

Through the real SDKs against the sandboxes: the ranges the connectors compute (two calls)
cover every contact with no overlap, full and incremental slices alike; a shard of a run that
no longer holds the lease stops; a shard's summary adds into its run's.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from crmsync.config import load_settings
from crmsync.connectors.hubspot.shards import split_ids as split_hubspot
from crmsync.connectors.salesforce.shards import in_range, split_ids
from crmsync.errors import RunInProgress
from crmsync.sandbox.launch import build_sandbox
from crmsync.sync import LEASE_TTL, RunSummary, SyncOptions
from crmsync.sync.shard import ShardRun, ShardSpec
from crmsync.wiring import load_parts

from .conftest import ANCHOR, Crm


def test_salesforce_id_ranges_are_ordered_contiguous_and_cover_the_span() -> None:
    ranges = split_ids("0035g000000001AAA", "0035g00000000zzAAA", 4)
    assert len(ranges) == 4
    assert ranges[0][0] is None and ranges[-1][1] is None
    for (_, hi), (lo, _) in zip(ranges, ranges[1:], strict=False):
        assert hi == lo
    cuts = [lo for lo, _ in ranges[1:]]
    assert cuts == sorted(cuts) and len(set(cuts)) == 3
    assert all("0035g000000001" < c < "0035g00000000zz" for c in cuts)
    # Every id lands in exactly one range.
    for record_id in ("0035g000000001AAA", "0035g00000000AbAAA", "0035g00000000zzAAA"):
        assert sum(in_range(record_id, r) for r in ranges) == 1


def test_hubspot_id_ranges_never_exceed_the_ids_there_are() -> None:
    assert split_hubspot(5, 6, 8) == [(None, "6"), ("6", None)]
    assert split_hubspot(1, 1000, 4) == [(None, "251"), ("251", "501"), ("501", "751"),
                                         ("751", None)]


@pytest.mark.parametrize("crm_name", ["hubspot", "salesforce"])
def test_shards_read_every_record_exactly_once(crm_name: str, tmp_path: Path) -> None:
    server = build_sandbox(crm_name, contacts=700, seed=5, anchor=ANCHOR)
    with server:
        crm = Crm(crm_name, server, tmp_path)
        crm.quiet_rate_limits()
        crm.setup()
        parts = load_parts(load_settings(crm.config, env={}))
        try:
            connector = parts.connector
            for stream in connector.streams():
                whole = [c.id for page in connector.read(stream, None) for c in page.contacts]
                calls = connector.api_calls()
                ranges = connector.shard_ranges(stream, 4)
                assert connector.api_calls() - calls == 2, "a split costs two calls"
                assert len(ranges) == 4
                sliced = [c.id for r in ranges
                          for page in connector.read(stream, None, key_range=r)
                          for c in page.contacts]
                assert len(sliced) == len(set(sliced)), "a record was read by two shards"
                assert set(sliced) == set(whole)
                sizes = [sum(len(p.contacts) for p in connector.read(stream, None, key_range=r))
                         for r in ranges]
                assert min(sizes) > 0, f"an empty shard: {sizes}"
            # Incremental slices: a rep's edit is read by exactly one shard.
            stream = connector.streams()[-1]
            target = next(c for page in connector.read(stream, None) for c in page.contacts)
            crm.edit(target.id, crm.shape["edit_hot"])
            since = max(c.modified_at for page in connector.read(stream, None)
                        for c in page.contacts if c.id != target.id) + timedelta(seconds=1)
            hits = [c.id for r in connector.shard_ranges(stream, 4)
                    for page in connector.read(stream, since, key_range=r)
                    for c in page.contacts if not page.related]
            assert hits.count(target.id) == 1
        finally:
            parts.close()


def test_a_shard_of_a_run_without_the_lease_stops_before_reading(tmp_path: Path) -> None:
    server = build_sandbox("hubspot", contacts=50, seed=5, anchor=ANCHOR)
    with server:
        crm = Crm("hubspot", server, tmp_path)
        crm.quiet_rate_limits()
        crm.setup()
        parts = load_parts(load_settings(crm.config, env={}))
        try:
            store = parts.store
            run_id = store.start_run(crm="hubspot", mode="full")
            store.add_shards(run_id, [{"shard": 0, "stream": "hubspot:contacts"}])
            other = store.start_run(crm="hubspot", mode="full")
            store.acquire_lease("sync:hubspot", other, LEASE_TTL)
            calls = parts.connector.api_calls()
            spec = ShardSpec(run_id=run_id, shard=0, stream="hubspot:contacts", lo=None,
                             hi=None, since=None, now=ANCHOR, mode="full")
            with pytest.raises(RunInProgress):
                ShardRun(parts.connector, parts.ruleset, store, options=SyncOptions(),
                         now=ANCHOR).execute_shard(spec)
            assert parts.connector.api_calls() == calls, "the stale shard called the CRM"
        finally:
            parts.close()


def test_shard_summaries_add_up_into_the_runs() -> None:
    total = RunSummary("r1", "hubspot", "full", ANCHOR)
    for read, rejected in ((120, 0), (80, 2)):
        part = RunSummary("r1", "hubspot", "full", ANCHOR)
        part.counts.update({"read": read, "rejected": rejected})
        part.statuses.update({"lead": read - 10, "prospect": 10})
        part.transitions["lead → prospect"] += 3
        part.read_by_stream["hubspot:contacts"] += read
        part.api_calls = 7
        total.absorb(part.to_json())
    assert total.counts["read"] == 200 and total.counts["rejected"] == 2
    assert total.statuses == {"lead": 180, "prospect": 20}
    assert total.transitions["lead → prospect"] == 6
    assert total.read_by_stream["hubspot:contacts"] == 200
    assert total.api_calls == 14


@pytest.fixture(params=["sqlite", "postgresql"])
def shared_store_url(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    from pgschema import state_url_for

    yield from state_url_for(request.param, tmp_path)


def test_shards_of_one_run_journal_side_by_side_without_colliding(shared_store_url: str) -> None:
    """Workers journal under one run id at once, each through its own connection pool."""
    import threading

    from crmsync.state import StateStore

    stores = [StateStore.open(shared_store_url) for _ in range(3)]
    try:
        run_id = stores[0].start_run(crm="hubspot", mode="full")
        failures: list[BaseException] = []
        ids: list[int] = []
        lock = threading.Lock()

        def journal(store: StateStore, shard: int) -> None:
            try:
                for page in range(30):
                    writes = [(f"{shard}-{page}-{n}", "contacts", {"status": None},
                               {"status": "lead"}) for n in range(5)]
                    got = store.journal_fields(run_id, "hubspot:contacts", writes)
                    with lock:
                        ids.extend(got)
            except BaseException as error:  # noqa: BLE001 - reported below
                failures.append(error)

        threads = [threading.Thread(target=journal, args=(s, n)) for n, s in enumerate(stores)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures, failures[0]
        assert len(ids) == len(set(ids)) == 3 * 30 * 5
        entries = stores[0].pending_entries("hubspot:contacts")
        assert len(entries) == 450
    finally:
        for store in stores:
            store.close()
