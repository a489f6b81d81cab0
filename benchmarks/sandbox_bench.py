"""Throughput and CPU per call of the sandbox HTTP server itself (not of crmsync).

Run on demand (not a test):  python benchmarks/sandbox_bench.py [--calls 2000] [--threads 4]

A ``crmsync sandbox serve`` child process (HubSpot flavour, quotas off) answers a small loop of
``GET /crm/v3/objects/contacts/{id}`` and ``POST .../batch/read`` (100 ids) calls over
keep-alive ``requests`` sessions, first from one thread, then from several at once. Printed side
by side: calls per second and the server process's CPU per call (from ``/proc``; Linux only).
The machine is shared and noisy: compare ratios between rows of one run, and runs on one machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sync_bench import process_cpu_seconds  # noqa: E402 - shared /proc reader


class Server:
    """A ``crmsync sandbox serve`` child process with quotas off."""

    def __init__(self, contacts: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crmsync", "sandbox", "serve", "--crm", "hubspot", "--port",
             "0", "--contacts", str(contacts)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        assert self.process.stdout is not None
        first = self.process.stdout.readline().split()
        self.base_url, self.token = first[0], first[1].removeprefix("token=")
        requests.post(f"{self.base_url}/_sandbox/config",
                      json={"rate_limits": {"enabled": False}}, timeout=30).raise_for_status()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _loop(server: Server, kind: str, calls: int, ids: list[str], errors: list[str]) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {server.token}"
    base = f"{server.base_url}/crm/v3/objects/contacts"
    for n in range(calls):
        if kind == "get":
            response = session.get(f"{base}/{ids[n % len(ids)]}")
        else:
            chunk = [{"id": i} for i in ids[(n * 100) % len(ids):][:100]]
            response = session.post(f"{base}/batch/read",
                                    json={"inputs": chunk, "properties": ["email", "country"]})
        if response.status_code != 200:
            errors.append(f"{kind}: {response.status_code}")
    session.close()


def measure(
    server: Server, kind: str, calls: int, threads: int, ids: list[str]
) -> tuple[float, float | None]:
    """Return (calls per second, server CPU ms per call) for ``calls`` split over ``threads``."""
    errors: list[str] = []
    per_thread = calls // threads
    workers = [threading.Thread(target=_loop, args=(server, kind, per_thread, ids, errors))
               for _ in range(threads)]
    cpu0 = process_cpu_seconds(server.process.pid)
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - start
    cpu1 = process_cpu_seconds(server.process.pid)
    if errors:
        raise SystemExit(f"{len(errors)} failed calls, first: {errors[0]}")
    done = per_thread * threads
    cpu_ms = None if cpu0 is None or cpu1 is None else (cpu1 - cpu0) * 1000 / done
    return done / wall, cpu_ms


def main() -> None:
    """Parse options, run the loops, print one table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="GET calls per row")
    parser.add_argument("--threads", type=int, default=4,
                        help="client threads of the parallel rows")
    parser.add_argument("--contacts", type=int, default=2000)
    args = parser.parse_args()
    server = Server(args.contacts)
    try:
        listing = requests.get(f"{server.base_url}/_sandbox/records/contacts", timeout=60).json()
        ids = [row["id"] for row in listing["results"]]
        _loop(server, "get", 50, ids, [])  # warm up connections and caches
        rows = []
        for kind, calls in (("get", args.calls), ("batch_read", max(args.calls // 10, 40))):
            for threads in (1, args.threads):
                rate, cpu = measure(server, kind, calls, threads, ids)
                rows.append((kind, threads, calls, rate, cpu))
    finally:
        server.close()
    print(f"{'call':<12}{'threads':>8}{'calls':>8}{'calls/s':>10}{'server cpu ms/call':>20}")
    for kind, threads, calls, rate, cpu in rows:
        cpu_text = "n/a" if cpu is None else f"{cpu:.3f}"
        print(f"{kind:<12}{threads:>8}{calls:>8}{rate:>10,.0f}{cpu_text:>20}")


if __name__ == "__main__":
    main()
