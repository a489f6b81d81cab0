"""What a worker does with one shard message: claim it, run it, record the outcome.

Kept apart from Celery so the same function runs under a worker, in tests and in a debugger.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from crmsync.errors import ConfigError, CrmsyncError
from crmsync.sync import SyncOptions
from crmsync.sync.shard import ShardRun, ShardSpec
from crmsync.wiring import Parts

log = logging.getLogger("crmsync.workers")


def shard_error(error: CrmsyncError) -> dict[str, Any]:
    """The JSON a failed shard leaves in the shard ledger (no record data: ids and codes)."""
    return {"kind": type(error).__name__, "exit_code": int(error.exit_code), "message": str(error)}


def execute_shard(payload: dict[str, Any], build_parts: Callable[[str], Parts]) -> str:
    """Execute one shard message; return what happened (``done``, ``failed``, ``skipped``).

    Args:
        payload: The :meth:`ShardSpec.to_json` message.
        build_parts: Assembles rule set, connector and state store for a connection name
            (from the worker's own settings).

    A shard already ``done`` (a redelivered message) is skipped. A crmsync error is recorded
    as ``failed`` with its exit code for the coordinator; a state store that fails is raised
    (nothing can be recorded; the coordinator notices the silent shard).
    """
    spec = ShardSpec.from_json(payload)
    parts = build_parts(spec.connection)
    store = parts.store
    try:
        if store.claim_shard(spec.run_id, spec.shard) is None:
            log.info("shard %s/%d already done; skipped", spec.run_id, spec.shard)
            return "skipped"
        run = ShardRun(parts.connector, parts.ruleset, store,
                       options=SyncOptions(**spec.options), now=spec.now,
                       fieldmap_hash=spec.fieldmap_hash)
        try:
            if spec.ruleset_hash and parts.ruleset.content_hash != spec.ruleset_hash:
                raise ConfigError(
                    "this worker's rule file differs from the one the run was started with; "
                    "deploy the same rules to every worker")
            summary = run.execute_shard(spec)
        except CrmsyncError as error:
            log.warning("shard %s/%d failed: %s", spec.run_id, spec.shard, error)
            partial = run.summary.to_json() if run.summary is not None else None
            store.finish_shard(spec.run_id, spec.shard, status="failed", summary=partial,
                               error=json.dumps(shard_error(error)))
            return "failed"
        store.finish_shard(spec.run_id, spec.shard, status="done", summary=summary.to_json())
        log.info("shard %s/%d done: %s", spec.run_id, spec.shard, summary.logfmt())
        return "done"
    finally:
        parts.close()


__all__ = ["execute_shard", "shard_error"]
