"""API calls a HubSpot read costs: full and incremental, by endpoint, at several sizes.

Run on demand: ``python benchmarks/hubspot_reads.py [contacts ...]`` (default 2000 20000). For
each size: a fresh seeded sandbox (rate limits off: this counts calls, it does not time them),
one full read (``since=None``) and one incremental read of everything (``since`` before the
oldest change), each through the connector's public ``read``; prints the calls per endpoint
and the total, beside the contacts and deals read.

To compare with another version of the connector, run the same script against that version's
source: ``PYTHONPATH=/path/to/other/src python benchmarks/hubspot_reads.py``.
"""

from __future__ import annotations

import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from crmsync.connectors.fieldmap_load import load_fieldmap
from crmsync.connectors.hubspot import HubSpotConnector
from crmsync.sandbox.hubspot import HubSpotEmulator
from crmsync.sandbox.hubspot.ratelimit import RateLimits
from crmsync.sandbox.seed import generate_org
from crmsync.sandbox.server import SandboxServer

ROOT = Path(__file__).resolve().parents[1]
ANCHOR = datetime(2026, 11, 23, tzinfo=UTC)
SHORT = {
    "GET /crm/v3/objects/contacts": "list",
    "POST /crm/v3/objects/contacts/search": "search",
    "POST /crm/v4/associations/contacts/deals/batch/read": "assoc",
    "POST /crm/v3/objects/deals/batch/read": "deals",
    "POST /crm/v3/objects/deals/search": "deal search",
    "POST /crm/v3/objects/contacts/batch/read": "batch read",
}


def measure(contacts: int) -> list[tuple[str, int, Counter[str], int]]:
    """Return ``(read, contacts read, calls by endpoint, total calls)`` for a full and an
    incremental read of a fresh account."""
    org = generate_org(contacts, 3, ANCHOR)
    fieldmap = load_fieldmap(ROOT / "connectors" / "hubspot.json")
    rows = []
    with SandboxServer(HubSpotEmulator(org, rate_limits=RateLimits(enabled=False))) as server:
        for name, since in (("full", None), ("incremental", ANCHOR - timedelta(days=3650))):
            connector = HubSpotConnector(fieldmap, token=server.token, base_url=server.base_url)
            server.reset()
            read = sum(len(page.contacts) for page in connector.read("hubspot:contacts", since)
                       if not page.related)
            counts = Counter({SHORT.get(k, k): v for k, v in
                              server.call_counts()["by_endpoint"].items()})
            rows.append((name, read, counts, connector.api_calls()))
            connector.close()
    return rows


def main(sizes: list[int]) -> None:
    columns = ["list", "search", "assoc", "deal search", "batch read", "deals"]
    print(f"{'contacts':>9} {'read':<12}{'read n':>8}"
          + "".join(f"{c:>12}" for c in columns) + f"{'total':>8}")
    for size in sizes:
        for name, read, counts, total in measure(size):
            print(f"{size:>9} {name:<12}{read:>8}"
                  + "".join(f"{counts.get(c, 0):>12}" for c in columns) + f"{total:>8}",
                  flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [2000, 20000])
