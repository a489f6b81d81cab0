"""Scale-out: one process vs 2 and 4 Celery workers on one sandbox HubSpot portal.

Run on demand (not a test; needs RabbitMQ, PostgreSQL and Redis on localhost):

    python benchmarks/scaleout_bench.py --contacts 100000 --latency-ms 20 --workers 0,2,4

Each configuration gets a fresh sandbox of the same seed (a child process), a fresh PostgreSQL
schema and its own queue, and makes one full run with the same clock. It prints, side by side:
wall time, API calls, the sandbox's 429 count, the calls' latency floor (calls x latency divided
by the calls the configuration can have in flight) and the ratio of the wall time to it, plus
the coordinator's CPU. ``--rate-limit N`` sets the portal's 10-second limit (default: the
sandbox's own, 100 per 10 s, as a starter HubSpot account has); ``--no-rate-limit`` lifts it to
see what the client and the emulator can do.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sync_bench import Sandbox  # the same child-process sandbox (benchmarks/ is on sys.path)

from crmsync.config import load_settings
from crmsync.sync import SyncOptions, SyncRun
from crmsync.wiring import load_parts
from crmsync.workers import sharded_run

ROOT = Path(__file__).resolve().parents[1]
#: A database of the benchmark's own (created when missing), so test suites running against the
#: shared `test` database at the same time cannot disturb it.
PG_URL = os.environ.get("CRMSYNC_BENCH_POSTGRES_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/crmsync_bench")
BROKER = os.environ.get("CRMSYNC_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
REDIS = os.environ.get("CRMSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NOW = datetime(2026, 11, 23, 9, tzinfo=UTC)


def _ensure_database() -> None:
    url = sa.make_url(PG_URL)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :name"),
                              {"name": url.database}).first()
        if not exists:
            conn.execute(sa.text(f'CREATE DATABASE "{url.database}"'))
    admin.dispose()


def _schema() -> tuple[str, str]:
    _ensure_database()
    name = f"crmsync_bench_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    engine.dispose()
    sep = "&" if "?" in PG_URL else "?"
    return name, f"{PG_URL}{sep}options=-csearch_path%3D{name}"


def _drop(name: str) -> None:
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{name}" CASCADE'))
    engine.dispose()


def measure(workers: int, contacts: int, latency_ms: int, sandbox_args: list[str],
            concurrency: int) -> dict[str, Any]:
    """One full run of a fresh sandbox: locally (``workers == 0``) or by that many workers."""
    box = Sandbox("hubspot", contacts, extra=sandbox_args)
    schema, state_url = _schema()
    queue = f"crmsync-bench-{uuid.uuid4().hex[:8]}"
    workdir = Path(tempfile.mkdtemp(prefix="crmsync-scaleout-"))
    config = workdir / "crmsync.toml"
    config.write_text(
        f'[crm]\ntype = "hubspot"\nbase_url = "{box.base_url}"\ntoken = "{box.token}"\n'
        f'[rules]\npath = "{(ROOT / "rules/default.json").as_posix()}"\n'
        f'[state]\nurl = "{state_url}"\n[sync]\nconcurrency = {concurrency}\n'
        f'[workers]\nbroker_url = "{BROKER}"\nredis_url = "{REDIS}"\nqueue = "{queue}"\n'
        f"shards = {max(1, workers) * 4}\nconcurrency = 1\nstart_timeout_s = 120\n", "utf-8")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        import redis

        client = redis.Redis.from_url(REDIS)
        for key in client.scan_iter("crmsync:pace:default:*"):
            client.delete(key)
        parts = load_parts(load_settings(config, env={}))
        parts.connector.setup()
        parts.close()
        time.sleep(10.5)  # setup's calls leave the 10-second window
        for number in range(workers):
            with (workdir / f"worker-{number}.log").open("wb") as log:
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "crmsync", "worker", "--config", str(config)],
                    stdout=log, stderr=subprocess.STDOUT))
        box.admin("POST", "reset")
        box.admin("POST", "faults", {"latency_ms": latency_ms, "times": None})
        parts = load_parts(load_settings(config, env={}))
        try:
            options = SyncOptions(full=True, concurrency=concurrency)
            runner = (sharded_run(parts, options, now=NOW) if workers else
                      SyncRun(parts.connector, parts.ruleset, parts.store, options=options,
                              now=NOW))
            started, cpu = time.perf_counter(), time.process_time()
            summary = runner.execute()
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        finally:
            parts.close()
        calls = box.admin("GET", "calls")
        waits = int(client.hget("crmsync:pace:default:burst", "waits") or 0)
        # What may be in flight at once: locally the write pool plus the read-ahead; with
        # workers, each worker's one shard does the same.
        in_flight = max(1, workers) * (concurrency + 1)
        floor = calls["total"] * latency_ms / 1000 / in_flight
        if summary.status != "ok":
            print(f"  {summary.error} (worker logs: {workdir})", flush=True)
        return {"config": f"{workers} workers" if workers else "1 process",
                "status": summary.status, "read": summary.counts.get("read", 0),
                "seconds": seconds, "calls": calls["total"],
                "rate_limited": calls.get("rate_limited", 0), "floor_s": floor,
                "ratio": seconds / max(floor, 1e-9), "coordinator_cpu_s": cpu,
                "pacer_waits": waits}
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        box.close()
        _drop(schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--workers", default="0,2,4", help="0 is the single process")
    parser.add_argument("--concurrency", type=int, default=4, help="[sync] concurrency")
    parser.add_argument("--rate-limit", type=int, default=None,
                        help="the portal's calls per 10 s (default: the sandbox's 100)")
    parser.add_argument("--no-rate-limit", action="store_true")
    args = parser.parse_args()
    sandbox_args = ["--no-rate-limits"] if args.no_rate_limit else (
        ["--rate-limit", str(args.rate_limit)] if args.rate_limit else [])
    print(f"{'config':<12}{'status':>8}{'read':>9}{'wall s':>9}{'calls':>8}{'429s':>6}"
          f"{'floor s':>9}{'x floor':>9}{'coord cpu s':>12}{'pacer waits':>12}")
    for workers in (int(w) for w in args.workers.split(",")):
        r = measure(workers, args.contacts, args.latency_ms, sandbox_args, args.concurrency)
        print(f"{r['config']:<12}{r['status']:>8}{r['read']:>9}{r['seconds']:>9.1f}"
              f"{r['calls']:>8}{r['rate_limited']:>6}{r['floor_s']:>9.1f}{r['ratio']:>9.2f}"
              f"{r['coordinator_cpu_s']:>12.1f}{r['pacer_waits']:>12}", flush=True)


if __name__ == "__main__":
    main()
