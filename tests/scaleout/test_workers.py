"""Issue "Scheduled runs and scale-out" §3-4: sharded runs on real Celery workers.

Workers are ``crmsync worker`` processes on RabbitMQ, sharing a PostgreSQL state store and a
Redis rate limit; the coordinator is :func:`crmsync.workers.sharded_run` in this process; the
CRMs are the sandboxes, driven through the real SDKs. Every comparison is against a plain
single-process run of the same seed with the same clock.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from crmsync.config import load_settings
from crmsync.errors import ExitCode
from crmsync.sandbox.launch import build_sandbox, limits_config
from crmsync.state import StateStore
from crmsync.sync import RunSummary, SyncOptions, SyncRun
from crmsync.wiring import load_parts
from crmsync.workers import sharded_run
from sync.conftest import Crm, crm_state, task_signature

from .conftest import ANCHOR, write_config

NOW = ANCHOR + timedelta(hours=9)
#: The issue's figure is 20,000 (CRMSYNC_TEST_SCALEOUT_CONTACTS=20000); CI runs a smaller org.
CONTACTS = int(os.environ.get("CRMSYNC_TEST_SCALEOUT_CONTACTS", "3000"))


def _reference(crm_name: str, contacts: int, tmp: Path, seed: int = 3,
               summaries: list[RunSummary] | None = None) -> dict[str, Any]:
    """The CRM after one plain single-process full run (the comparator; its summary is
    appended to ``summaries`` when given)."""
    workdir = tmp / f"reference-{crm_name}"
    workdir.mkdir()
    with build_sandbox(crm_name, contacts=contacts, seed=seed, anchor=ANCHOR) as server:
        crm = Crm(crm_name, server, workdir)
        crm.quiet_rate_limits()
        crm.setup()
        parts = load_parts(load_settings(crm.config, env={}))
        try:
            summary = SyncRun(parts.connector, parts.ruleset, parts.store, now=NOW,
                              options=SyncOptions(full=True)).execute()
        finally:
            parts.close()
        assert summary.exit_code == ExitCode.OK, summary.error
        if summaries is not None:
            summaries.append(summary)
        return crm_state(crm)


def _sharded(config: Path, **options: Any) -> RunSummary:
    parts = load_parts(load_settings(config, env={}))
    try:
        return sharded_run(parts, SyncOptions(full=True, **options), now=NOW).execute()
    finally:
        parts.close()


def _shards(config: Path, run_id: str) -> list[Any]:
    parts = load_parts(load_settings(config, env={}))
    try:
        return parts.store.shards(run_id)
    finally:
        parts.close()


def _assert_no_duplicate_tasks(crm: Crm) -> None:
    identities = Counter(task_signature(crm))
    assert not [i for i, n in identities.items() if n > 1], "a task was created twice"


def test_two_workers_over_eight_shards_leave_the_crm_as_one_process_does(
    tmp_path: Path, broker_url: str, state_url: str, queue: str, workers_for: Any,
) -> None:
    single: list[RunSummary] = []
    expected = _reference("hubspot", CONTACTS, tmp_path, summaries=single)
    with build_sandbox("hubspot", contacts=CONTACTS, seed=3, anchor=ANCHOR) as server:
        crm = Crm("hubspot", server, tmp_path)
        crm.quiet_rate_limits()
        crm.setup()
        config = write_config(tmp_path / "workers.toml", crm="hubspot", base_url=server.base_url,
                              token=server.token, state_url=state_url, broker_url=broker_url,
                              queue=queue, shards=8)
        pool = workers_for(config)
        pool.start(2)
        summary = _sharded(config)
        assert summary.exit_code == ExitCode.OK, f"{summary.error}\n{pool.logs()}"
        assert crm_state(crm) == expected
        _assert_no_duplicate_tasks(crm)
        shards = _shards(config, summary.run_id)
        assert len(shards) == 8 and {s.status for s in shards} == {"done"}
        # One ledger row, one summary: every contact read once, across all shards.
        assert summary.counts["read"] == CONTACTS
        assert sum(summary.workers.values()) == 8
        # The report's per-run numbers add up across shards as one process counts them.
        [one] = single
        assert summary.rule_hits == one.rule_hits and sum(summary.rule_hits.values()) > 0
        assert summary.stage_totals == one.stage_totals == dict(one.statuses)
        assert (summary.sla_breaches, summary.sla_by_owner) == (one.sla_breaches, one.sla_by_owner)
        # A second sharded run over the same state writes nothing.
        again = _sharded(config)
        assert again.exit_code == ExitCode.OK, again.error
        assert again.counts["field_writes"] == 0 and again.counts["tasks_created"] == 0


def test_a_worker_killed_mid_shard_duplicates_nothing_and_the_next_run_finishes_its_job(
    tmp_path: Path, broker_url: str, state_url: str, queue: str, workers_for: Any,
) -> None:
    contacts = 1200
    expected = _reference("hubspot", contacts, tmp_path)
    with build_sandbox("hubspot", contacts=contacts, seed=3, anchor=ANCHOR) as server:
        crm = Crm("hubspot", server, tmp_path)
        crm.quiet_rate_limits()
        crm.setup()
        # Slow calls, so the kill lands while a shard is half done.
        server.install_faults({"latency_ms": 80, "times": None})
        config = write_config(tmp_path / "workers.toml", crm="hubspot", base_url=server.base_url,
                              token=server.token, state_url=state_url, broker_url=broker_url,
                              queue=queue, shards=4)
        pool = workers_for(config)
        victim, _ = pool.start(2)
        outcome: list[RunSummary] = []
        coordinator = threading.Thread(target=lambda: outcome.append(_sharded(config)))
        coordinator.start()
        # Wait until the victim works on a shard, then let it call the CRM a few times. The
        # poll is one query on an open store: a slow poll (on a loaded machine) would find the
        # shard late and the kill could land after the victim finished all it had.
        deadline = time.monotonic() + 120
        run_id = None
        with StateStore.open(state_url) as store:
            while time.monotonic() < deadline:
                runs = store.runs(limit=1)
                run_id = runs[0].id if runs else None
                shards = store.shards(run_id) if run_id else []
                if any(s.status == "running" and s.worker and
                       s.worker.endswith(f":{victim.pid}") for s in shards):
                    break
                time.sleep(0.02)
            else:
                pytest.fail("the worker never started a shard\n" + pool.logs())
        time.sleep(0.3)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        coordinator.join(timeout=600)
        assert outcome, "the sharded run never finished\n" + pool.logs()
        summary = outcome[0]
        assert summary.exit_code == ExitCode.OK, f"{summary.error}\n{pool.logs()}"
        assert run_id == summary.run_id
        shards = _shards(config, summary.run_id)
        assert {s.status for s in shards} == {"done"}
        assert max(s.attempts for s in shards) >= 2, (
            "no shard was run again after the kill: "
            f"{[(s.shard, s.attempts, s.worker) for s in shards]} (victim pid {victim.pid})")
        server.install_faults({"latency_ms": 0, "times": None})
        _assert_no_duplicate_tasks(crm)
        # Task creates the dead attempt had queued are intents without a task yet: the next
        # run's recovery finds them in the CRM or creates them (known gap: not within this run).
        again = _sharded(config)
        assert again.exit_code == ExitCode.OK, f"{again.error}\n{pool.logs()}"
        state = crm_state(crm)
        missing = sorted(set(expected["tasks"]) - set(state["tasks"]))
        extra = sorted(set(state["tasks"]) - set(expected["tasks"]))
        assert state == expected, (f"{len(missing)} tasks missing, e.g. {missing[:3]}; "
                                   f"{len(extra)} extra, e.g. {extra[:3]}")
        _assert_no_duplicate_tasks(crm)


def test_four_workers_share_one_rate_limit_and_never_see_a_429(
    tmp_path: Path, broker_url: str, redis_url: str, state_url: str, queue: str,
    workers_for: Any,
) -> None:
    import redis

    # A portal allowing 20 calls per 10 s: more than a window's worth of calls must be paced
    # across four processes, or the emulator answers 429.
    limits = limits_config("hubspot", rate_limit=20, rate_window_s=10)
    with build_sandbox("hubspot", contacts=300, seed=3, anchor=ANCHOR, config=limits) as server:
        crm = Crm("hubspot", server, tmp_path)
        crm.setup()
        time.sleep(10.5)  # setup's own calls leave the window
        server.reset()
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter("crmsync:pace:default:*"):
            client.delete(key)  # the connection's shared limit starts empty
        config = write_config(tmp_path / "workers.toml", crm="hubspot", base_url=server.base_url,
                              token=server.token, state_url=state_url, broker_url=broker_url,
                              queue=queue, shards=8, redis_url=redis_url)
        pool = workers_for(config)
        pool.start(4)
        summary = _sharded(config)
        calls = server.call_counts()
        assert summary.exit_code == ExitCode.OK, f"{summary.error}\n{pool.logs()}"
        assert calls["rate_limited"] == 0, (calls["rate_limited_by_policy"], calls["by_status"])
        # The limit was binding: more calls than two windows allow, and the shared pacer made
        # callers wait for the window (its count of waits lives in Redis beside the window).
        assert calls["total"] > 40, calls
        waits = int(client.hget("crmsync:pace:default:burst", "waits") or 0)
        assert waits > 0, "nobody waited: the limit was never reached"
        assert len(summary.workers) >= 2, summary.workers
