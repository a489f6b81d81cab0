"""What a run is told (:class:`SyncOptions`) and what it reports (:class:`RunSummary`)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from crmsync.connectors.base import ApiLimits
from crmsync.errors import ExitCode

#: Updates one Bulk API 2.0 ingest job carries while a stream is still being read. Salesforce
#: makes a batch of every 10,000 records of a job (plus an empty one for the upload) and counts
#: batches against the org's 15,000 per rolling 24 hours: a job of 2,000 costs what one of
#: 10,000 costs, batches and API calls (about five) alike. The price of waiting: up to this many
#: updates journaled and held before they are sent, and the stream's cursor held behind them.
BULK_JOB_RECORDS = 10_000
#: How many rejected writes a summary lists (the ledger keeps them all in the journal).
MAX_LISTED_REJECTIONS = 100
#: How many SLA-breaching record ids a summary lists (the report's drill-down; ids only).
MAX_LISTED_BREACHES = 200


@dataclass(frozen=True)
class SyncOptions:
    """How a run behaves.

    Attributes:
        dry_run: Plan only: read and evaluate, write nothing, commit no cursor.
        full: Ignore the cursors and re-read everything.
        overlap: How far before the cursor an incremental read starts (late-indexed records).
        task_close_policy: What happens to an open crmsync task whose purpose no longer
            applies: ``rule`` (its task template's ``close_when_obsolete`` decides), ``close``
            or ``leave``.
        samples: How many example decisions the summary keeps.
        restamp: Write the rule set's version onto every contact it decided, even one whose
            outputs did not change (a rule change then writes every contact once).
        concurrency: Write calls in flight at once (and one page read ahead when above 1).
        bulk_threshold: Pending updates of one stream from which they go through the CRM's
            bulk API (Salesforce Bulk 2.0, jobs of up to ``BULK_JOB_RECORDS`` while the stream
            is read) instead of batches; 0 never uses it.
        trigger: Who started the run, for the ledger: ``schedule:NAME`` or ``user@host``.
    """

    dry_run: bool = False
    full: bool = False
    overlap: timedelta = timedelta(minutes=5)
    task_close_policy: str = "rule"
    samples: int = 5
    restamp: bool = False
    concurrency: int = 4
    bulk_threshold: int = 2000
    trigger: str | None = None


@dataclass
class RunSummary:
    """What a run did, for the ledger, the CLI table, ``--output json`` and the log line.

    ``transitions`` are funnel moves the CRM's data caused; ``reclassified`` are moves a rule
    set or field map change caused on contacts whose data did not change. ``changes`` counts
    contacts per output that changed; ``scope`` says per stream whether the whole stream was
    read and why.
    """

    run_id: str
    crm: str
    mode: str
    started_at: datetime
    finished_at: datetime | None = None
    status: str = "running"
    exit_code: ExitCode = ExitCode.OK
    error: str | None = None
    counts: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    miss_types: Counter[str] = field(default_factory=Counter)
    transitions: Counter[str] = field(default_factory=Counter)
    reclassified: Counter[str] = field(default_factory=Counter)
    changes: Counter[str] = field(default_factory=Counter)
    scope: dict[str, str] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    #: Funnel health (DOMAIN.md): contacts stuck in a stage, SLA breaches, misses by the rule
    #: that decided them (rule ids, never the free text a rep typed).
    stuck: Counter[str] = field(default_factory=Counter)
    sla_breaches: int = 0
    miss_reasons: dict[str, Counter[str]] = field(
        default_factory=lambda: {"soft": Counter(), "hard": Counter()}
    )
    #: SLA breaches per owner (CRM user id, ``(none)`` when unowned) and the first
    #: :data:`MAX_LISTED_BREACHES` breaches (``record_id``, ``object_type``, ``owner_id``: ids
    #: only): the report's by-rep view and drill-down.
    sla_by_owner: Counter[str] = field(default_factory=Counter)
    sla_breach_ids: list[dict[str, str | None]] = field(default_factory=list)
    #: Rule health: how many evaluated contacts each rule fired for (decision rules and task
    #: templates, by id); every rule of the rule set is present, 0 if it never fired.
    rule_hits: Counter[str] = field(default_factory=Counter)
    #: Every contact's current stage and miss type once the run finished (state store totals;
    #: empty for dry runs): the report's one point per run for stage counts over time.
    stage_totals: dict[str, int] = field(default_factory=dict)
    miss_totals: dict[str, int] = field(default_factory=dict)
    read_by_stream: Counter[str] = field(default_factory=Counter)
    rejections: list[dict[str, Any]] = field(default_factory=list)
    #: Per stream: records to update, tasks to create and close (writes are batched per stream).
    planned_writes: dict[str, Counter[str]] = field(default_factory=dict)
    #: Per stream: how field updates were sent, ``batches`` or ``bulk`` (Bulk API 2.0 jobs).
    write_paths: dict[str, str] = field(default_factory=dict)
    #: Sharded runs: the workers (``host:pid``) that ran its shards, and how many each.
    workers: Counter[str] = field(default_factory=Counter)
    api_calls: int = 0
    estimated_write_calls: int = 0
    ruleset_version: str = ""
    #: With ``[rules] shadow``: the candidate's comparison against production (counts, rule
    #: ids and a few record ids; see :mod:`crmsync.sync.shadow`); None without a candidate.
    shadow: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (ids, counts and rule ids; no contact data)."""
        return {
            "run_id": self.run_id,
            "crm": self.crm,
            "mode": self.mode,
            "status": self.status,
            "exit_code": int(self.exit_code),
            "error": self.error,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "ruleset_version": self.ruleset_version,
            "scope": dict(self.scope),
            "counts": dict(self.counts),
            "changes": dict(self.changes),
            "statuses": dict(self.statuses),
            "miss_types": dict(self.miss_types),
            "transitions": dict(self.transitions.most_common()),
            "reclassified": dict(self.reclassified.most_common()),
            "funnel": {
                "stuck": dict(self.stuck),
                "sla_breaches": self.sla_breaches,
                "miss_reasons": {k: dict(v.most_common(20)) for k, v in self.miss_reasons.items()},
                "sla_by_owner": dict(self.sla_by_owner.most_common()),
                "sla_breach_ids": list(self.sla_breach_ids),
                "stage_totals": dict(self.stage_totals),
                "miss_totals": dict(self.miss_totals),
            },
            "rule_hits": dict(self.rule_hits),
            "read_by_stream": dict(self.read_by_stream),
            "write_paths": dict(self.write_paths),
            "workers": dict(self.workers),
            "rejections": list(self.rejections),
            "api_calls": self.api_calls,
            "estimated_write_calls": self.estimated_write_calls,
            "estimated_api_calls": (self.api_calls + self.estimated_write_calls
                                    if self.mode == "plan" else None),
            # Reasons quote CRM data (loss reasons, domains): only a dry run's answer, which a
            # person asked for, carries them; the ledger and scheduled runs' output do not.
            "samples": self.samples if self.mode == "plan" else [],
            "shadow": self.shadow,
        }

    def absorb(self, part: dict[str, Any]) -> None:
        """Add a shard's summary (its :meth:`to_json`) into this run's summary.

        Counters add up; the rejection list keeps the first :data:`MAX_LISTED_REJECTIONS`.
        Samples are left out: a sharded run is a real run, whose summary keeps none.
        """
        for name in ("counts", "changes", "statuses", "miss_types", "transitions",
                     "reclassified", "read_by_stream"):
            getattr(self, name).update(part.get(name) or {})
        funnel = part.get("funnel") or {}
        self.stuck.update(funnel.get("stuck") or {})
        self.sla_breaches += int(funnel.get("sla_breaches") or 0)
        for kind, reasons in (funnel.get("miss_reasons") or {}).items():
            self.miss_reasons.setdefault(kind, Counter()).update(reasons)
        self.sla_by_owner.update(funnel.get("sla_by_owner") or {})
        room = MAX_LISTED_BREACHES - len(self.sla_breach_ids)
        self.sla_breach_ids.extend((funnel.get("sla_breach_ids") or [])[:max(0, room)])
        self.rule_hits.update(part.get("rule_hits") or {})
        room = MAX_LISTED_REJECTIONS - len(self.rejections)
        self.rejections.extend((part.get("rejections") or [])[:max(0, room)])
        for stream, path in (part.get("write_paths") or {}).items():
            if self.write_paths.get(stream) != "bulk":
                self.write_paths[stream] = path
        self.api_calls += int(part.get("api_calls") or 0)

    def logfmt(self) -> str:
        """Return the one-line ``key=value`` summary log tools parse."""
        seconds = (
            (self.finished_at - self.started_at).total_seconds() if self.finished_at else 0.0
        )
        keys = ("read", "evaluated", "updated", "unchanged", "tasks_created", "tasks_closed",
                "rejected")
        parts = [f"crmsync_run={self.run_id}", f"mode={self.mode}", f"crm={self.crm}",
                 f"status={self.status}", f"exit={int(self.exit_code)}"]
        parts += [f"{key}={self.counts.get(key, 0)}" for key in keys]
        parts += [f"api_calls={self.api_calls}", f"duration_s={seconds:.1f}"]
        return " ".join(parts)


def minimum_api_calls(summary: RunSummary, limits: ApiLimits, *, related_records: int = 0) -> int:
    """Return the fewest API calls the CRM allows for what a run read and wrote.

    Reads: each stream's contacts at the largest page size; where the read does not carry the
    links to related records (HubSpot search), one link lookup per ``limits.links_batch``
    contacts; ``related_records`` (deals) at the largest related read. Writes: field updates at
    the largest batch, tasks likewise. A dry run is charged its reads only. Calls made to be
    safe rather than for the data (the pre-flight check, task-key lookups) are not counted.
    """
    read = summary.read_by_stream.values()
    pages = sum(math.ceil(n / limits.read_page) for n in read)
    if limits.links_batch:
        pages += sum(math.ceil(n / limits.links_batch) for n in read)
    pages += math.ceil(related_records / (limits.related_batch or limits.read_page))
    if summary.mode == "plan":
        return pages
    counts = summary.counts
    return (pages + math.ceil(counts.get("field_writes", 0) / limits.write_batch)
            + math.ceil(counts.get("tasks_created", 0) / limits.task_batch)
            + math.ceil(counts.get("tasks_closed", 0) / limits.task_batch))


def estimate_write_calls(summary: RunSummary, limits: ApiLimits, *, bulk_threshold: int = 0) -> int:
    """Return the write calls a run would make for what a dry run planned.

    Field updates at the CRM's largest batch, or, where the CRM has a bulk path and a stream
    plans ``bulk_threshold`` updates or more, as the run routes them (:func:`bulk_jobs`): each
    job at ``limits.calls_per_bulk_write``. Task creates and closes at the largest batch.
    Counted per stream, as the run batches them (a batch never mixes objects; task creates wait
    for a full batch across the pages of one stream).
    """
    calls = 0
    for planned in summary.planned_writes.values():
        updates = planned["updates"]
        if limits.bulk_write and bulk_threshold:
            jobs, updates = bulk_jobs(updates, bulk_threshold)
            calls += jobs * limits.calls_per_bulk_write
        calls += (math.ceil(updates / limits.write_batch)
                  + math.ceil(planned["task_creates"] / limits.task_batch)
                  + (math.ceil(planned["task_creates"] / limits.task_lookup_batch)
                     if limits.task_lookup_batch else 0)
                  + math.ceil(planned["task_closes"] / limits.task_batch))
    return calls


def bulk_jobs(updates: int, threshold: int) -> tuple[int, int]:
    """Return (bulk jobs, updates left to batches) for one stream's ``updates``.

    As :mod:`crmsync.sync.writes` routes them: a job for every :data:`BULK_JOB_RECORDS` pending
    while the stream is read (or ``threshold``, if higher), and one for what is left at its end
    when that is ``threshold`` or more.
    """
    size = max(threshold, BULK_JOB_RECORDS)
    jobs, left = divmod(updates, size)
    if left >= threshold:
        return jobs + 1, 0
    return jobs, left
