"""One shard of a sharded run: a slice of one stream, read and written on its own.

A run is streams split into shards of pages. ``crmsync run`` executes each stream as one shard
in its own process (:class:`~crmsync.sync.SyncRun`); ``crmsync run --via workers`` splits
streams into key ranges and Celery workers execute them (:class:`ShardRun`), with the same page
loop, the same journal and the same write pool. The coordinator of a sharded run does what is
done once per stream (recovery, retries of rejected records, the cursor, the rule-set stamp);
a shard only reads its key range, decides, writes and settles, and reports its summary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crmsync.errors import RunInProgress
from crmsync.model import Cursor
from crmsync.sync.collector import tuned_for_run
from crmsync.sync.inflight import CursorGate
from crmsync.sync.run import StreamPass, SyncRun
from crmsync.sync.shadow import ShadowTally
from crmsync.sync.summary import RunSummary
from crmsync.sync.tally import Tally, miss_rule_ids, rule_ids


@dataclass(frozen=True)
class ShardSpec:
    """What a worker needs to execute one shard (sent as JSON through the broker).

    Attributes:
        run_id: The sharded run this shard belongs to.
        shard: Its number within the run.
        stream: The stream it slices.
        lo: Smallest record id of the slice (inclusive); None for open.
        hi: Record id the slice stops before (exclusive); None for open.
        since: Incremental lower bound of modification time; None for a full read.
        now: The run's clock (every shard decides with the same ``now``).
        mode: The run's mode (``run`` or ``full``).
        retried: Records the coordinator already re-read (rejected last run); skipped here.
        ruleset_hash: The coordinator's rule set: a worker with other rules refuses the shard.
        fieldmap_hash: The coordinator's field map, likewise.
        shadow_hash: The coordinator's candidate rule set (``[rules] shadow``), or empty: a
            worker shadows with its own candidate only when it is the same one.
        connection: The named connection the run syncs.
    """

    run_id: str
    shard: int
    stream: str
    lo: str | None
    hi: str | None
    since: datetime | None
    now: datetime
    mode: str
    retried: tuple[str, ...] = ()
    ruleset_hash: str = ""
    fieldmap_hash: str = ""
    shadow_hash: str = ""
    connection: str = "default"
    options: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the message body (plain JSON types only)."""
        return {
            "run_id": self.run_id, "shard": self.shard, "stream": self.stream, "lo": self.lo,
            "hi": self.hi, "since": self.since.isoformat() if self.since else None,
            "now": self.now.isoformat(), "mode": self.mode, "retried": list(self.retried),
            "ruleset_hash": self.ruleset_hash, "fieldmap_hash": self.fieldmap_hash,
            "connection": self.connection, "options": dict(self.options),
            "shadow_hash": self.shadow_hash,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ShardSpec:
        """Rebuild a spec from :meth:`to_json`'s output."""
        return cls(
            run_id=data["run_id"], shard=int(data["shard"]), stream=data["stream"],
            lo=data.get("lo"), hi=data.get("hi"),
            since=datetime.fromisoformat(data["since"]) if data.get("since") else None,
            now=datetime.fromisoformat(data["now"]), mode=data["mode"],
            retried=tuple(data.get("retried") or ()), ruleset_hash=data.get("ruleset_hash", ""),
            fieldmap_hash=data.get("fieldmap_hash", ""), shadow_hash=data.get("shadow_hash", ""),
            connection=data.get("connection") or "default", options=dict(data.get("options") or {}),
        )


class ShardRun(SyncRun):
    """Execute one shard of a run started elsewhere (by a coordinator) under its run id.

    It takes no lease and moves no cursor: the coordinator holds the lease for the whole run
    and commits the cursor once every shard is done. Before every page the shard checks that
    its run still holds the lease, so a shard of a run that was taken over stops instead of
    writing beside another run.
    """

    def execute_shard(self, spec: ShardSpec) -> RunSummary:
        """Read, decide, write and settle the shard's records; return what it did.

        Raises :class:`~crmsync.errors.CrmsyncError` (quota, credentials, transient failures)
        for the worker to record; writes already sent are settled first.
        """
        with tuned_for_run():
            return self._execute_shard(spec)

    def _execute_shard(self, spec: ShardSpec) -> RunSummary:
        self._spec = spec
        summary = RunSummary(spec.run_id, self.connector.crm, spec.mode, self.now,
                             ruleset_version=self.ruleset.version)
        self.summary = summary
        self._tally = Tally(summary, self.now, miss_rule_ids(self.ruleset.tree.decisions),
                            self.options.samples, rule_ids(self.ruleset.tree))
        self._shadow = ShadowTally(self.shadow) if self.shadow is not None else None
        calls_before = self.connector.api_calls()
        self._check_fence()
        self._gate = CursorGate()
        self._page = self._gate.open_page()
        stream_pass = StreamPass(spec.stream, full=spec.since is None, since=spec.since,
                                 cursor=Cursor(spec.stream), retried=set(spec.retried))
        pages = self.connector.read(  # type: ignore[call-arg]
            spec.stream, spec.since, self.now, key_range=(spec.lo, spec.hi))
        try:
            self._read_pages(stream_pass, pages, commit_cursors=False)
        finally:
            self._inflight.close()
            self._tally.finish()
            summary.api_calls = self.connector.api_calls() - calls_before
        rejected = summary.counts.get("rejected", 0)
        summary.status = "partial" if rejected else "ok"
        if self._shadow is not None:
            # One row per shard, replaced if the shard is run again; the run adds them up.
            summary.shadow = self._shadow.to_json()
            self.store.record_shadow(spec.run_id, spec.shard, summary.shadow)
        return summary

    def _hold_lease(self) -> None:
        self._check_fence()

    def _check_fence(self) -> None:
        holder = self.store.shard_heartbeat(self._spec.run_id, self._spec.shard,
                                            self._lease_name)
        if holder != self._current.run_id:
            raise RunInProgress(
                f"run {self._current.run_id} no longer holds this CRM's lease "
                f"({'held by run ' + holder if holder else 'released'}); shard stopped")
