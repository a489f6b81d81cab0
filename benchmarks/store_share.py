"""How much of a sync's client CPU the state store takes, method by method.

Run on demand (not a test):  python benchmarks/store_share.py [--crm hubspot] [--contacts 10000]

One full first sync against a seeded sandbox (a child process, 20 ms latency, HubSpot quotas
raised as in ``sync_bench.py``), SQLite store. Every public ``StateStore`` method of the run's
store is timed with ``time.process_time`` (outermost call only), so the table says where the
store's share of the client CPU goes, in µs per contact.
"""

from __future__ import annotations

import argparse
import collections
import functools
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sync_bench import Sandbox, set_up  # noqa: E402

from crmsync.config import load_settings  # noqa: E402
from crmsync.sync import SyncOptions, SyncRun  # noqa: E402
from crmsync.wiring import load_parts  # noqa: E402


def _timed(store: Any) -> collections.Counter[str]:
    """Time every public method of ``store`` (this instance only); return the totals."""
    totals: collections.Counter[str] = collections.Counter()
    depth = [0]
    for name in dir(store):
        method = getattr(store, name)
        if name.startswith("_") or not callable(method):
            continue

        def timed(*args: Any, _method: Any = method, _name: str = name, **kwargs: Any) -> Any:
            depth[0] += 1
            started = time.process_time()
            try:
                return _method(*args, **kwargs)
            finally:
                depth[0] -= 1
                if depth[0] == 0:  # a batch method calling another counts once
                    totals[_name] += time.process_time() - started

        setattr(store, name, functools.wraps(method)(timed))
    return totals


def measure(crm: str, contacts: int) -> None:
    """Run one full sync and print the store's share of its client CPU."""
    box = Sandbox(crm, contacts)
    try:
        config, _limits = set_up(box, crm, latency_ms=20)
        parts = load_parts(load_settings(config, env={}))
        try:
            totals = _timed(parts.store)
            started = time.process_time()
            summary = SyncRun(parts.connector, parts.ruleset, parts.store,
                              options=SyncOptions(full=True)).execute()
            cpu = time.process_time() - started
            totals = collections.Counter(totals)  # the run's calls, not close()'s
        finally:
            parts.close()
        inside = sum(totals.values())
        print(f"{crm} {contacts} ({summary.status}): client CPU {cpu / contacts * 1e6:.0f} "
              f"µs/contact, in StateStore {inside / contacts * 1e6:.0f} µs/contact "
              f"({inside / cpu:.0%})")
        for name, seconds in totals.most_common(8):
            print(f"    {name:<24}{seconds / contacts * 1e6:>7.1f} µs/contact")
    finally:
        box.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crm", choices=["hubspot", "salesforce", "both"], default="both")
    parser.add_argument("--contacts", type=int, default=10_000)
    args = parser.parse_args()
    for crm in ["hubspot", "salesforce"] if args.crm == "both" else [args.crm]:
        measure(crm, args.contacts)


if __name__ == "__main__":
    main()
