"""What a worker does with one shard message: claim it, run it, record the outcome.

Kept apart from Celery so the same function runs under a worker, in tests and in a debugger.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from crmsync.errors import ConfigError, CrmsyncError, ExitCode
from crmsync.redact import redact_text
from crmsync.rules import RuleSet
from crmsync.state import StateError
from crmsync.sync import SyncOptions
from crmsync.sync.shard import ShardRun, ShardSpec
from crmsync.wiring import Parts

log = logging.getLogger("crmsync.workers")


def shard_error(error: Exception) -> dict[str, Any]:
    """The JSON a failed shard leaves in the shard ledger (no record data: ids and codes).

    A crmsync error keeps its message and exit code; another exception (a bug) is named by
    its class with a redacted message, and counts as transient (exit 4: run again).
    """
    if isinstance(error, CrmsyncError):
        return {"kind": type(error).__name__, "exit_code": int(error.exit_code),
                "message": str(error)}
    # The first line only: database drivers put the offending values on the next ones.
    first = redact_text(str(error)).strip().splitlines()[0][:300] if str(error).strip() else ""
    return {"kind": type(error).__name__, "exit_code": int(ExitCode.TRANSIENT),
            "message": f"{type(error).__name__}: {first}"}


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
                       fieldmap_hash=spec.fieldmap_hash, shadow=_shadow(parts, spec))
        try:
            if spec.ruleset_hash and parts.ruleset.content_hash != spec.ruleset_hash:
                raise ConfigError(
                    "this worker's rule file differs from the one the run was started with; "
                    "deploy the same rules to every worker")
            summary = run.execute_shard(spec)
        except StateError:
            raise  # nothing can be recorded; the coordinator notices the silent shard
        except Exception as error:  # noqa: BLE001 - every failure is recorded, never left hanging
            # A crmsync error keeps its exit code; anything else (a bug) fails the run with
            # exit 4 and its class name, the message redacted like the CLI's last resort.
            log.warning("shard %s/%d failed: %s", spec.run_id, spec.shard,
                        redact_text(str(error)))
            partial = run.summary.to_json() if run.summary is not None else None
            store.finish_shard(spec.run_id, spec.shard, status="failed", summary=partial,
                               error=json.dumps(shard_error(error)))
            return "failed"
        store.finish_shard(spec.run_id, spec.shard, status="done", summary=summary.to_json())
        log.info("shard %s/%d done: %s", spec.run_id, spec.shard, summary.logfmt())
        return "done"
    finally:
        parts.close()


def _shadow(parts: Parts, spec: ShardSpec) -> RuleSet | None:
    """The candidate this shard evaluates: the worker's own, when it is the coordinator's.

    A worker with another candidate (or none) still executes the shard (production work must
    not wait on an experiment); it leaves the comparison out, and the report shows fewer
    contacts compared than evaluated.
    """
    candidate = parts.shadow
    if not spec.shadow_hash or candidate is None:
        if spec.shadow_hash:
            log.warning("shard %s/%d: the run shadows a candidate rule file; this worker has "
                        "no [rules] shadow, so the shard is not compared", spec.run_id, spec.shard)
        return None
    if candidate.content_hash != spec.shadow_hash:
        log.warning("shard %s/%d: this worker's candidate rule file differs from the run's; "
                    "the shard is not compared", spec.run_id, spec.shard)
        return None
    return candidate


__all__ = ["execute_shard", "shard_error"]
