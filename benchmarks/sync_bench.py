"""Sync efficiency against the sandbox CRMs: API calls vs the minimum, writes on re-runs,
incremental cost, wall time with injected latency, and peak memory as contacts grow.

Run on demand (not a test):

    python benchmarks/sync_bench.py [--crm hubspot] [--sizes 2000,10000] [--concurrency 1,4]

The sandbox runs in a child process (``crmsync sandbox serve``) so the sync's own memory is
measured alone (tracemalloc peak). Numbers are printed side by side in one table per CRM; the
machine is shared and noisy, so compare ratios, not absolute seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from crmsync.config import load_settings
from crmsync.connectors.hubspot.wire import SEARCH_PER_SECOND
from crmsync.sandbox.launch import seed_anchor
from crmsync.sandbox.seed import generate_org
from crmsync.sync import SyncOptions, SyncRun, minimum_api_calls
from crmsync.wiring import load_parts

ROOT = Path(__file__).resolve().parents[1]


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process, or None where /proc is unavailable (Linux)."""
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():
        return None
    fields = stat.read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Sandbox:
    """A ``crmsync sandbox serve`` child process."""

    def __init__(self, crm: str, contacts: int, seed: int = 1, extra: Sequence[str] = ()) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crmsync", "sandbox", "serve", "--crm", crm, "--port", "0",
             "--contacts", str(contacts), "--seed", str(seed), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline().split()
        self.base_url, self.token = first[0], first[1].removeprefix("token=")

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.base_url}/_sandbox/{path}", data=data,
                                         method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read() or b"null")

    def cpu_seconds(self) -> float:
        """The emulator's own CPU so far (0.0 where /proc is unavailable)."""
        return process_cpu_seconds(self.process.pid) or 0.0

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def set_up(box: Sandbox, crm: str, latency_ms: int) -> tuple[Path, Any]:
    """Point a fresh crmsync (config, SQLite store) at ``box``, create its fields, lift the
    quotas, zero the call counts and add ``latency_ms`` to every call.

    Returns the config file and the connector's ``ApiLimits``.
    """
    workdir = Path(tempfile.mkdtemp(prefix="crmsync-bench-"))
    config = workdir / "crmsync.toml"
    config.write_text(
        f'[crm]\ntype = "{crm}"\nbase_url = "{box.base_url}"\ntoken = "{box.token}"\n'
        f'[state]\nurl = "sqlite:///{workdir / "state.db"}"\n', "utf-8")
    parts = load_parts(load_settings(config, env={}))
    parts.connector.setup()
    limits = parts.connector.limits
    parts.close()
    # Rate limits would make the first run's wall time measure the CRM's quota, not us.
    if crm == "hubspot":
        # Lift the quota rather than switch it off: the rate-limit headers keep coming and
        # crmsync paces itself by them, as it would against a generous real account.
        box.admin("POST", "config", {"rate_limits": {
            "per_10s": 1_000_000, "search_per_s": 10_000, "daily": 100_000_000}})
    box.admin("POST", "reset")
    box.admin("POST", "faults", {"latency_ms": latency_ms})
    return config, limits


def _run(config: Path, *, trace_memory: bool = False,
         **options: Any) -> tuple[Any, float, int, float]:
    """One run; returns (summary, wall seconds, peak traced bytes, client CPU seconds).

    tracemalloc slows Python down severalfold, so memory is traced only when asked, in a run
    whose time is not reported.
    """
    parts = load_parts(load_settings(config, env={}))
    try:
        if trace_memory:
            tracemalloc.start()
        started, cpu_started = time.perf_counter(), time.process_time()
        summary = SyncRun(parts.connector, parts.ruleset, parts.store,
                          options=SyncOptions(**options)).execute()
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        peak = 0
        if trace_memory:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        return summary, seconds, peak, cpu
    finally:
        parts.close()


def measure(crm: str, contacts: int, latency_ms: int, concurrency: int = 4) -> dict[str, Any]:
    """Measure one CRM at one size and ``[sync] concurrency``; returns the results row."""
    box = Sandbox(crm, contacts)
    try:
        config, limits = set_up(box, crm, latency_ms)
        server_before = box.cpu_seconds()
        first, seconds, _, cpu = _run(config, full=True, concurrency=concurrency)
        server_cpu = box.cpu_seconds() - server_before
        calls = box.admin("GET", "calls")
        # The same seed and day give the same org in this process as in the sandbox's.
        org = generate_org(contacts, 1, seed_anchor())
        deals = sum(len(p.deals) for p in org.people)
        minimum = minimum_api_calls(first, limits, related_records=deals)
        box.admin("POST", "reset")
        _run(config, concurrency=concurrency)  # settles the echo of our own writes
        box.admin("POST", "reset")
        again, _, _, _ = _run(config, concurrency=concurrency)
        repeat_writes = box.admin("GET", "calls")["writes"]
        # Memory of a whole-org pass: a full re-scan reads and evaluates every contact.
        _, _, peak, _ = _run(config, full=True, trace_memory=True, concurrency=concurrency)
        # The latency floor: every call waits ``latency_ms``, ``concurrency`` of them at once.
        ideal_s = calls["total"] * latency_ms / 1000 / concurrency
        # The rate floor: HubSpot allows 5 searches a second per account, and crmsync paces
        # itself to that whatever the sandbox allows, so searches alone take this long.
        searches = sum(n for endpoint, n in calls["by_endpoint"].items()
                       if endpoint.endswith("/search"))
        rate_floor_s = searches / SEARCH_PER_SECOND if crm == "hubspot" else 0.0
        return {
            "crm": crm, "contacts": contacts, "concurrency": concurrency,
            "calls": calls["total"], "minimum": minimum,
            "ratio": calls["total"] / max(1, minimum), "repeat_writes": repeat_writes,
            "seconds": seconds, "ideal_s": ideal_s, "time_ratio": seconds / max(1e-9, ideal_s),
            "searches": searches, "rate_floor_s": rate_floor_s,
            "rate_ratio": seconds / max(1e-9, ideal_s, rate_floor_s),
            "peak_mib": peak / 2**20, "cpu_s": cpu, "server_cpu_s": server_cpu,
            # Share of the machine's cores busy with the client and the emulator together:
            # near 1.0, the run is CPU-bound and latency is not what sets the wall time.
            "busy": (cpu + server_cpu) / max(1e-9, seconds * (os.cpu_count() or 1)),
            "status": first.status,
            "repeat_status": again.status,
        }
    finally:
        box.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crm", choices=["hubspot", "salesforce", "both"], default="both")
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--concurrency", default="4",
                        help="[sync] concurrency values to compare, e.g. 1,4")
    args = parser.parse_args()
    crms = ["hubspot", "salesforce"] if args.crm == "both" else [args.crm]
    print(f"{'crm':<11}{'contacts':>9}{'conc':>5}{'calls':>7}{'min':>6}{'x min':>7}"
          f"{'rerun writes':>13}"
          f"{'wall s':>8}{'client cpu s':>13}{'cpu µs/c':>9}{'server cpu s':>13}{'busy':>6}"
          f"{'floor s':>9}{'x':>6}{'searches':>9}{'rate floor s':>13}{'x rate':>7}"
          f"{'peak MiB':>10}")
    runs = [(crm, int(size), int(concurrency)) for crm in crms
            for size in args.sizes.split(",") for concurrency in args.concurrency.split(",")]
    for crm, size, concurrency in runs:
        r = measure(crm, size, args.latency_ms, concurrency)
        print(f"{r['crm']:<11}{r['contacts']:>9}{r['concurrency']:>5}{r['calls']:>7}"
              f"{r['minimum']:>6}{r['ratio']:>7.2f}{r['repeat_writes']:>13}{r['seconds']:>8.1f}"
              f"{r['cpu_s']:>13.1f}{r['cpu_s'] / r['contacts'] * 1e6:>9.0f}"
              f"{r['server_cpu_s']:>13.1f}{r['busy']:>6.2f}"
              f"{r['ideal_s']:>9.1f}{r['time_ratio']:>6.2f}{r['searches']:>9}"
              f"{r['rate_floor_s']:>13.1f}{r['rate_ratio']:>7.2f}{r['peak_mib']:>10.1f}",
              flush=True)

if __name__ == "__main__":
    main()
