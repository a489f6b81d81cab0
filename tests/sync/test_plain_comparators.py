"""The plain comparators of ``benchmarks/plain_sync.py`` (HubSpot) and
``benchmarks/plain_sync_salesforce.py`` do the job crmsync does.

Their client CPU is the yardstick crmsync's is measured against, so each must stay the same job:
a second, independent implementation of a first sync that decides every contact as crmsync
does, opens as many follow-up tasks and makes (about) the same calls. Both programs run here
against the sandbox over HTTP.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
ROOT = BENCHMARKS.parent


@pytest.fixture(scope="module")
def benchmarks() -> Iterator[None]:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield
    finally:
        sys.path.remove(str(BENCHMARKS))


@pytest.fixture(scope="module")
def plain_sync(benchmarks: None) -> ModuleType:
    import plain_sync

    return plain_sync


@pytest.fixture(scope="module")
def plain_sync_salesforce(benchmarks: None) -> ModuleType:
    import plain_sync_salesforce

    return plain_sync_salesforce


def test_the_plain_hubspot_sync_decides_every_contact_as_crmsync_does(
        plain_sync: ModuleType) -> None:
    now = plain_sync.run_clock()
    _, crmsync_calls, mine = plain_sync.measure_crmsync(600, now)
    _, plain_calls, plain = plain_sync.measure_plain(600, now)

    assert len(mine) == len(plain) == 601  # 600 decisions and the count of open tasks
    assert plain_sync.differences(mine, plain) == {}
    assert mine["_tasks"] > 0
    # The same calls, give or take the pooling of deal reads.
    assert abs(crmsync_calls - plain_calls) <= 0.1 * crmsync_calls + 2


def test_the_plain_salesforce_sync_reads_the_fields_crmsync_reads(
        plain_sync_salesforce: ModuleType) -> None:
    from crmsync.connectors.fieldmap_load import load_fieldmap
    from crmsync.connectors.salesforce import SalesforceAuth, SalesforceConnector

    fieldmap = load_fieldmap(ROOT / "connectors" / "salesforce.json")
    connector = SalesforceConnector(
        fieldmap, auth=SalesforceAuth.with_session("http://127.0.0.1:9", "unused"))
    for obj in plain_sync_salesforce.OBJECTS:
        assert plain_sync_salesforce.FIELDS[obj] == connector._select(obj)
    assert plain_sync_salesforce.DEAL_QUERY.startswith(connector._deal_select()[0] + " ")
    assert {o: t.field for o, t in fieldmap.outputs.items()} == plain_sync_salesforce.OUTPUTS


@pytest.mark.parametrize("bulk", [False, True], ids=["defaults", "bulk-paths"])
def test_the_plain_salesforce_sync_decides_and_writes_every_contact_as_crmsync_does(
        plain_sync: ModuleType, plain_sync_salesforce: ModuleType, bulk: bool) -> None:
    # With crmsync's defaults 600 contacts go through REST pages, Collections and upserts.
    # "bulk-paths" forces query pages of 50 and a bulk threshold of 100, so the same org also
    # takes a Bulk 2.0 query job (Leads: more pages to come than a job costs) and ingest jobs.
    knobs = {"bulk_threshold": 100, "page_size": 50} if bulk else {}
    now = plain_sync.run_clock()
    _, crmsync_calls, mine, mine_crm = plain_sync_salesforce.measure_crmsync(600, now, **knobs)
    _, plain_calls, plain, plain_crm = plain_sync_salesforce.measure_plain(600, now, **knobs)

    assert len(mine) == len(plain) == 601  # 600 decisions and the count of open tasks
    assert {k: v for k, v in mine.items() if plain.get(k) != v} == {}
    assert mine["_tasks"] > 0
    # What each left in the CRM: every Lead's and Contact's outputs, every task by key.
    assert len(mine_crm) >= 600 + mine["_tasks"]
    assert plain_sync.differences(mine_crm, plain_crm) == {}
    # The same calls (the two batch alike; the margin is for the odd refusal retried).
    assert abs(crmsync_calls - plain_calls) <= 0.1 * crmsync_calls + 2
