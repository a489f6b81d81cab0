"""A shadow candidate on a sharded run: ``crmsync worker`` processes on RabbitMQ, PostgreSQL.

The CRM ends as a plain single-process run without a candidate leaves it, and the run's
comparison (its shards' rows added up) matches an independent count of both rule files on
the same facts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crmsync.config import load_settings
from crmsync.errors import ExitCode
from crmsync.rules import load_ruleset
from crmsync.sandbox.launch import build_sandbox
from crmsync.sync import SyncOptions
from crmsync.wiring import load_parts
from crmsync.workers import sharded_run
from sync.conftest import ROOT, Crm, crm_state
from sync.test_shadow import NOW, cells, independent_count, write_candidate

from .conftest import ANCHOR, write_config

CONTACTS = 400


def test_a_sharded_run_shadows_on_every_shard_and_writes_as_without(
    tmp_path: Path, broker_url: str, state_url: str, queue: str, workers_for: Any,
) -> None:
    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    with build_sandbox("hubspot", contacts=CONTACTS, seed=3, anchor=ANCHOR) as server:
        ref = Crm("hubspot", server, reference_dir, now=NOW)
        ref.quiet_rate_limits()
        ref.setup()
        assert ref.run(full=True).exit_code == ExitCode.OK
        expected_crm = crm_state(ref)

    candidate_file = write_candidate(tmp_path / "candidate.json")
    with build_sandbox("hubspot", contacts=CONTACTS, seed=3, anchor=ANCHOR) as server:
        crm = Crm("hubspot", server, tmp_path)
        crm.quiet_rate_limits()
        crm.setup()
        config = write_config(tmp_path / "workers.toml", crm="hubspot", base_url=server.base_url,
                              token=server.token, state_url=state_url, broker_url=broker_url,
                              queue=queue, shards=4, shadow=candidate_file)
        crm.config = config
        expected = independent_count(crm, load_ruleset(ROOT / "rules/default.json"),
                                     load_ruleset(candidate_file))
        pool = workers_for(config)
        pool.start(2)
        parts = load_parts(load_settings(config, env={}))
        try:
            summary = sharded_run(parts, SyncOptions(full=True), now=NOW).execute()
            shards = parts.store.shards(summary.run_id)
        finally:
            parts.close()
        assert summary.exit_code == ExitCode.OK, f"{summary.error}\n{pool.logs()}"
        assert crm_state(crm) == expected_crm
    assert len(shards) == 4 and all(s.summary and s.summary["shadow"] for s in shards)
    assert summary.shadow is not None
    assert summary.shadow["contacts"] == summary.counts["evaluated"] == CONTACTS
    assert cells(summary.shadow["status_matrix"]) == expected["status"]
    assert cells(summary.shadow["miss_matrix"]) == expected["miss"]
    assert summary.shadow["hits_candidate"] == dict(expected["hits_candidate"])
