"""Salesforce full reads and field writes: REST/Collections beside Bulk API 2.0, calls and time.

Run on demand: ``python benchmarks/salesforce_bulk.py [--latency-ms 20] [contacts ...]``
(default 20000 100000). For each size: a fresh seeded sandbox with crmsync's fields, the given
latency injected on every call; then, per object, a full read (the connector picks a Bulk 2.0
query when that costs fewer calls), and the same field updates for every record written once
through sObject Collections (``write_fields``) and once through Bulk 2.0 ingest
(``write_fields_bulk``). Prints calls and seconds side by side.

To see another version's reads (e.g. before Bulk 2.0 queries), run this script against that
version's source: ``PYTHONPATH=/path/to/other/src python benchmarks/salesforce_bulk.py``; it
skips the bulk write where the connector has none.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

from crmsync.connectors.base import RecordUpdate
from crmsync.connectors.fieldmap_load import load_fieldmap
from crmsync.connectors.salesforce import SalesforceAuth, SalesforceConnector
from crmsync.sandbox.launch import build_sandbox

ROOT = Path(__file__).resolve().parents[1]
ANCHOR = datetime(2026, 11, 23, tzinfo=UTC)


def _timed(connector: SalesforceConnector, fn):  # type: ignore[no-untyped-def]
    calls, started = connector.api_calls(), time.perf_counter()
    result = fn()
    return result, connector.api_calls() - calls, time.perf_counter() - started


def measure(contacts: int, latency_ms: int) -> list[tuple[str, str, int, int, float]]:
    """Return rows ``(what, object, records, calls, seconds)`` for one fresh sandbox."""
    fieldmap = load_fieldmap(ROOT / "connectors" / "salesforce.json")
    server = build_sandbox("salesforce", contacts=contacts, seed=3, anchor=ANCHOR)
    rows = []
    with server:
        connector = SalesforceConnector(
            fieldmap, auth=SalesforceAuth.with_session(server.base_url, server.token))
        connector.setup()
        server.install_faults({"latency_ms": latency_ms})
        for stream in connector.streams():
            obj = stream.split(":")[1]
            pages, calls, seconds = _timed(connector, lambda s=stream: list(
                connector.read(s, None)))
            records = [c for p in pages for c in p.contacts]
            bulk = not all(p.ordered for p in pages)
            rows.append((f"full read ({'bulk query' if bulk else 'REST'})", obj, len(records),
                         calls, seconds))
            updates = [RecordUpdate(c.id, obj, {"status": "prospect", "score": n % 100})
                       for n, c in enumerate(records)]
            results, calls, seconds = _timed(connector, lambda u=updates: connector.write_fields(u))
            assert all(r.ok for r in results)
            rows.append(("write (Collections)", obj, len(updates), calls, seconds))
            if hasattr(connector, "write_fields_bulk"):
                again = [RecordUpdate(u.record_id, obj, {"status": "lead", "score": 1})
                         for u in updates]
                results, calls, seconds = _timed(
                    connector, lambda u=again: connector.write_fields_bulk(u))
                assert all(r.ok for r in results)
                rows.append(("write (Bulk 2.0 ingest)", obj, len(again), calls, seconds))
        connector.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("sizes", nargs="*", type=int, default=[20_000, 100_000])
    parser.add_argument("--latency-ms", type=int, default=20)
    args = parser.parse_args()
    print(f"latency {args.latency_ms} ms per call")
    print(f"{'contacts':>9}  {'what':<26}{'object':<9}{'records':>9}{'calls':>7}{'seconds':>9}")
    for size in args.sizes:
        for what, obj, records, calls, seconds in measure(size, args.latency_ms):
            print(f"{size:>9}  {what:<26}{obj:<9}{records:>9}{calls:>7}{seconds:>9.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
