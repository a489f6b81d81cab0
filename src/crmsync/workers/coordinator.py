"""The coordinator of a sharded run: one ledger row, one lease, shards sent to the workers.

:class:`WorkersRun` is a :class:`~crmsync.sync.SyncRun` whose streams are not read here: after
what is done once per stream (recovery of a stopped run, re-reading last run's rejected
records), each stream is split into key ranges, recorded in the shard ledger and sent to the
workers; the run waits for all of them, adds their summaries into its own, and then moves the
cursor and stamps the rules exactly as a local run does. Dry runs (``crmsync plan``) stay local.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crmsync.errors import (
    AuthError,
    ConfigError,
    CrmsyncError,
    QuotaExhausted,
    RunInProgress,
    TransientError,
)
from crmsync.state import ShardRecord
from crmsync.sync.run import SyncRun
from crmsync.sync.shard import ShardSpec
from crmsync.workers.app import TASK_NAME

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger("crmsync.workers")

#: How a failed shard's error kind is raised again by the coordinator (its exit code follows).
_ERRORS: dict[str, type[CrmsyncError]] = {
    "QuotaExhausted": QuotaExhausted, "AuthError": AuthError, "ConfigError": ConfigError,
    "InvalidFileError": ConfigError, "RunInProgress": RunInProgress,
}


class WorkersRun(SyncRun):
    """A run whose streams are read and written by Celery workers, shard by shard.

    Args (beyond :class:`SyncRun`'s):
        app: The Celery app used to send shards (the broker).
        queue: The queue the workers listen on.
        shards_per_stream: Key ranges each stream is split into.
        connection: The connection name the workers build their parts for.
        start_timeout_s: Give up when no worker has taken any shard for this long.
        stall_timeout_s: Give up on a shard whose worker has been silent this long (a shard
            beats before every page).
        poll_s: How often the shard ledger is read while waiting.
    """

    def __init__(self, *args: Any, app: Celery, queue: str = "crmsync",
                 shards_per_stream: int = 8, connection: str = "default",
                 start_timeout_s: float = 120.0, stall_timeout_s: float = 600.0,
                 poll_s: float = 0.25, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.app = app
        self.queue = queue
        self.shards_per_stream = max(1, shards_per_stream)
        self.connection = connection
        self.start_timeout_s = start_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.poll_s = poll_s
        self._next_shard = 0

    def _sync_stream(self, stream: str) -> None:
        if self.options.dry_run:
            super()._sync_stream(stream)
            return
        stream_pass = self._open_stream(stream)
        # Last run's rejected records were re-read here; settle them before the shards start.
        self._flush_writes(stream)
        ranges = self.connector.shard_ranges(stream, self.shards_per_stream)  # type: ignore[attr-defined]
        summary = self._current
        options = {"concurrency": self.options.concurrency, "samples": 0,
                   "task_close_policy": self.options.task_close_policy,
                   "restamp": self.options.restamp, "full": self.options.full,
                   "bulk_threshold": self.options.bulk_threshold}
        specs = [
            ShardSpec(run_id=summary.run_id, shard=self._next_shard + i, stream=stream, lo=lo,
                      hi=hi, since=stream_pass.since, now=self.now, mode=summary.mode,
                      retried=tuple(sorted(stream_pass.retried)),
                      ruleset_hash=self.ruleset.content_hash, fieldmap_hash=self.fieldmap_hash,
                      shadow_hash=self.shadow.content_hash if self.shadow else "",
                      connection=self.connection, options=options)
            for i, (lo, hi) in enumerate(ranges)
        ]
        self._next_shard += len(specs)
        self.store.add_shards(summary.run_id, [
            {"shard": s.shard, "stream": s.stream, "lo": s.lo, "hi": s.hi} for s in specs])
        for spec in specs:
            self.app.send_task(TASK_NAME, args=[spec.to_json()], queue=self.queue)
        log.info("%s: %d shards sent to the workers", stream, len(specs))
        self._await(stream, [s.shard for s in specs])
        self._close_stream(stream_pass)

    def _await(self, stream: str, numbers: Sequence[int]) -> None:
        """Wait for every shard of a stream; add up their summaries; raise a shard's error."""
        wanted = set(numbers)
        started = time.monotonic()
        last_beat = started
        reported: set[int] = set()
        while True:
            rows = [r for r in self.store.shards(self._current.run_id) if r.shard in wanted]
            for row in rows:
                if row.status in ("done", "failed") and row.shard not in reported:
                    reported.add(row.shard)
                    read = (row.summary or {}).get("counts", {}).get("read", 0)
                    self.on_progress(stream, int(read))
            if len(reported) == len(wanted):
                break
            now = time.monotonic()
            if now - last_beat > 5:
                self._hold_lease()
                last_beat = now
            self._check_stalls(rows, started)
            time.sleep(self.poll_s)
        summary = self._current
        workers: Counter[str] = Counter()
        for row in rows:
            if row.summary:
                summary.absorb(row.summary)
            if row.worker:
                workers[row.worker] += 1
        summary.workers.update(workers)
        failed = [r for r in rows if r.status == "failed"]
        if failed:
            raise _shard_error(failed[0])

    def _check_stalls(self, rows: Sequence[ShardRecord], started: float) -> None:
        if all(r.status == "queued" for r in rows):
            if time.monotonic() - started > self.start_timeout_s:
                raise TransientError(
                    f"no worker took this run's shards within {self.start_timeout_s:.0f} s; "
                    f"is `crmsync worker` running on queue {self.queue!r}?")
            return
        now = datetime.now(UTC)  # noqa: TID251 - compared with the ledger's bookkeeping stamps
        for row in rows:
            silent = (now - row.updated_at).total_seconds()
            if row.status == "running" and silent > self.stall_timeout_s:
                raise TransientError(
                    f"shard {row.shard} stalled: its worker ({row.worker}) has been silent for "
                    f"{silent:.0f} s; run again to finish the job")


def _shard_error(row: ShardRecord) -> CrmsyncError:
    """Rebuild the error a shard failed with, so the run ends with the right exit code."""
    try:
        error = json.loads(row.error or "{}")
    except ValueError:
        error = {}
    kind = _ERRORS.get(str(error.get("kind")), TransientError)
    return kind(f"shard {row.shard} ({row.worker}): {error.get('message') or 'failed'}")
