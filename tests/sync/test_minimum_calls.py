"""``minimum_api_calls`` counts what each CRM's APIs allow at best, from their documented sizes.

The expected figures are worked out here from the wire contract (HubSpot: search pages of
200, v4 association reads of 1,000 contacts, batch reads and writes of 100; Salesforce: query
pages of 2,000, collections of 200), not from the function, so a wrong page size or a missing
kind of call fails.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from crmsync.connectors.hubspot import HubSpotConnector
from crmsync.connectors.salesforce import SalesforceConnector
from crmsync.sync import RunSummary, minimum_api_calls


def _summary(mode: str, read: dict[str, int], **counts: int) -> RunSummary:
    return RunSummary(run_id="r1", crm="x", mode=mode, started_at=datetime(2026, 12, 7, tzinfo=UTC),
                      counts=Counter(counts), read_by_stream=Counter(read))


def test_hubspot_counts_search_pages_association_reads_and_deal_batches() -> None:
    summary = _summary("run", {"hubspot:contacts": 10_000}, field_writes=10_000,
                       tasks_created=2_550, tasks_closed=30)
    # 50 search pages, 10 association reads, 24 deal reads (2,400 deals at 100),
    # 100 update batches, 26 create batches, 1 close batch.
    assert minimum_api_calls(summary, HubSpotConnector.limits,
                             related_records=2_400) == 50 + 10 + 24 + 100 + 26 + 1


def test_a_hubspot_plan_is_charged_its_reads_only() -> None:
    summary = _summary("plan", {"hubspot:contacts": 2_001}, field_writes=2_001)
    assert minimum_api_calls(summary, HubSpotConnector.limits, related_records=101) == 11 + 3 + 2


@pytest.mark.parametrize(("leads", "contacts", "deals", "expected_reads"),
                         [(6_000, 4_000, 2_400, 3 + 2 + 2), (1, 0, 0, 1)])
def test_salesforce_reads_carry_their_links(leads: int, contacts: int, deals: int,
                                             expected_reads: int) -> None:
    summary = _summary("run", {"salesforce:Lead": leads, "salesforce:Contact": contacts},
                       field_writes=leads + contacts)
    writes = -(-(leads + contacts) // 200)
    assert minimum_api_calls(summary, SalesforceConnector.limits,
                             related_records=deals) == expected_reads + writes
