"""One sync run: read a page, evaluate, plan, apply, journal, commit the cursor.

The loop is the same for ``crmsync plan`` (dry run: nothing written, nothing committed) and
``crmsync run``. Its promises (DESIGN.md §5):

* incremental: read from the stream's cursor minus an overlap, skip ids already processed at
  exactly the cursor, cap the new cursor at the run's start, commit it only after the page's
  writes are journaled;
* minimal writes: only outputs that changed are written (``plan``), batched by the connector;
* nothing lost: every write is journaled *before* the CRM call and settled after it; per-record
  rejections are recorded and retried next run; a run killed anywhere leaves enough in the
  state store for the next run to finish the job without duplicates;
* clean stops: a used-up daily quota or refused credentials end the run with the cursor where
  the last fully written page left it.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from crmsync.connectors.base import ApiLimits, Connector, RecordUpdate, WriteResult, chunks
from crmsync.errors import (
    AuthError,
    CrmsyncError,
    ExitCode,
    QuotaExhausted,
    TransientError,
)
from crmsync.model import Contact, Cursor, TaskClose, TaskCreate
from crmsync.plan import ContactPlan, OpenTask, PlanOptions, plan_contact
from crmsync.rules import RuleSet
from crmsync.state import StateStore

log = logging.getLogger("crmsync.sync")


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
    """

    dry_run: bool = False
    full: bool = False
    overlap: timedelta = timedelta(minutes=5)
    task_close_policy: str = "rule"
    samples: int = 5


@dataclass
class RunSummary:
    """What a run did, for the ledger, the CLI table, ``--output json`` and the log line."""

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
    samples: list[dict[str, Any]] = field(default_factory=list)
    #: Funnel health (DOMAIN.md): contacts stuck in a stage, SLA breaches, miss reasons.
    stuck: Counter[str] = field(default_factory=Counter)
    sla_breaches: int = 0
    miss_reasons: dict[str, Counter[str]] = field(
        default_factory=lambda: {"soft": Counter(), "hard": Counter()}
    )
    read_by_stream: Counter[str] = field(default_factory=Counter)
    api_calls: int = 0
    estimated_write_calls: int = 0

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (no contact data beyond ids and reasons)."""
        return {
            "run_id": self.run_id,
            "crm": self.crm,
            "mode": self.mode,
            "status": self.status,
            "exit_code": int(self.exit_code),
            "error": self.error,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "counts": dict(self.counts),
            "statuses": dict(self.statuses),
            "miss_types": dict(self.miss_types),
            "transitions": dict(self.transitions.most_common()),
            "funnel": {
                "stuck": dict(self.stuck),
                "sla_breaches": self.sla_breaches,
                "miss_reasons": {k: dict(v.most_common(20)) for k, v in self.miss_reasons.items()},
            },
            "read_by_stream": dict(self.read_by_stream),
            "api_calls": self.api_calls,
            "estimated_write_calls": self.estimated_write_calls,
            # Reasons quote CRM data (loss reasons, domains): only a dry run's answer, which a
            # person asked for, carries them; the ledger and scheduled runs' output do not.
            "samples": self.samples if self.mode == "plan" else [],
        }

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


ProgressCallback = Callable[[str, int], None]

#: A contact in these stages for longer than this counts as stuck (funnel health).
STUCK_AFTER = {"lead": timedelta(days=90), "prospect": timedelta(days=45),
               "opportunity": timedelta(days=30)}
#: How long a run's lease lasts without a heartbeat (renewed after every page).
LEASE_TTL = timedelta(minutes=15)
#: An opportunity should hear from its rep within this long of becoming one (DOMAIN.md SLA).
SLA_FIRST_TOUCH = timedelta(days=2)


class SyncRun:
    """Execute one run of one connector against one rule set, recording it in the state store.

    Args:
        connector: The CRM to read from and write to.
        ruleset: The compiled rules.
        store: The state store (ledger, cursors, journal, tasks, rejections).
        options: Run behaviour.
        now: The run's clock; the only time the rules ever see.
        on_progress: Called with (stream, contacts processed) after each page.
    """

    def __init__(
        self,
        connector: Connector,
        ruleset: RuleSet,
        store: StateStore,
        *,
        options: SyncOptions | None = None,
        now: datetime | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        self.connector = connector
        self.ruleset = ruleset
        self.store = store
        self.options = options or SyncOptions()
        # The one place a run reads the clock: everything downstream is given this value.
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        # CRMs keep milliseconds; a run's stamps are cut to that, so what is written reads back
        # equal (diffs and undo compare them).
        self.now = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        self.on_progress = on_progress or (lambda stream, n: None)
        self.plan_options = _plan_options(self.options.task_close_policy, ruleset)
        self.summary: RunSummary | None = None
        self._queued_tasks: list[TaskCreate] = []
        self._rejected_now: set[str] = set()

    @property
    def _current(self) -> RunSummary:
        """The summary of the run in progress (only inside :meth:`execute`)."""
        assert self.summary is not None, "no run in progress"
        return self.summary

    @property
    def mode(self) -> str:
        """``plan`` for a dry run, ``full`` for a re-scan, ``run`` otherwise."""
        if self.options.dry_run:
            return "plan"
        return "full" if self.options.full else "run"

    def execute(self) -> RunSummary:
        """Run every stream of the connector; never raises a CrmsyncError (the summary says)."""
        run_id = self.store.start_run(
            crm=self.connector.crm,
            mode=self.mode,
            ruleset_version=self.ruleset.version,
            ruleset_hash=self.ruleset.content_hash,
            started_at=self.now,
        )
        summary = RunSummary(run_id, self.connector.crm, self.mode, self.now)
        self.summary = summary
        started = time.monotonic()
        calls_before = self.connector.api_calls()
        try:
            self._hold_lease()
            # Credentials and crmsync's fields, checked before anything is read or written (a
            # plan against a CRM without them would promise writes a run cannot make).
            self.connector.check()
            for stream in self.connector.streams():
                self._sync_stream(stream)
        except CrmsyncError as error:
            summary.status, summary.exit_code = _outcome(error)
            summary.error = f"{type(error).__name__}: {error}"
        except BaseException as error:
            # Interrupted (Ctrl-C, SIGTERM) or a bug: the ledger must not say "running" forever.
            # Only the error's type is kept: a foreign message may quote record data.
            summary.status, summary.exit_code = "aborted", ExitCode.TRANSIENT
            summary.error = type(error).__name__
            self._finish(summary, started, calls_before)
            raise
        else:
            rejected = summary.counts.get("rejected", 0)
            summary.status = "partial" if rejected else "ok"
            summary.exit_code = ExitCode.PARTIAL if rejected else ExitCode.OK
        self._finish(summary, started, calls_before)
        return summary

    def _hold_lease(self) -> None:
        """Take or extend the CRM's run lease: two writers at once could duplicate tasks."""
        if not self.options.dry_run:
            self.store.acquire_lease(f"sync:{self.connector.crm}", self._current.run_id, LEASE_TTL)

    def _finish(self, summary: RunSummary, started: float, calls_before: int) -> None:
        if not self.options.dry_run:
            self.store.release_lease(f"sync:{self.connector.crm}", summary.run_id)
        summary.api_calls = self.connector.api_calls() - calls_before
        summary.finished_at = summary.started_at + timedelta(seconds=time.monotonic() - started)
        self.store.finish_run(
            summary.run_id,
            status=summary.status,
            exit_code=int(summary.exit_code),
            counts=summary.to_json(),
            error=summary.error,
            finished_at=summary.finished_at,
        )
        log.info(summary.logfmt())

    # -- one stream ---------------------------------------------------------------------------

    def _sync_stream(self, stream: str) -> None:
        cursor = self.store.get_cursor(stream)
        if not self.options.dry_run:
            self._recover_pending_tasks(stream)
        since = None
        if not self.options.full and cursor.value is not None:
            since = cursor.value - self.options.overlap
        # Records rejected last run are retried first. Only their ids are remembered, so that
        # the same record met again in this run's pages is not written twice; remembering every
        # id read would make memory grow with the org.
        retried: set[str] = set()
        retry_ids = [] if self.options.dry_run else self.store.rejected_ids(stream)
        if retry_ids:
            self._process(stream, self.connector.read_ids(stream, retry_ids))
            retried.update(retry_ids)
        if self.options.full:
            cursor = Cursor(stream)  # a full re-scan skips nothing

        new_cursor = cursor
        scanned_unordered = False
        for page in self.connector.read(stream, since, self.now):
            contacts = [
                c for c in page.contacts
                if c.id not in retried and not _already_processed(c, cursor)
            ]
            self._process(stream, contacts)
            self._hold_lease()
            if page.related or self.options.dry_run:
                continue
            if page.ordered:
                new_cursor = _advance(new_cursor, page.contacts, cap=self.now)
                self.store.commit_cursor(new_cursor)
            else:
                scanned_unordered = True
        self._flush_tasks(stream)
        # A record retried this run and not rejected again is settled, whatever its outcome
        # was (written, unchanged by now, or gone from the CRM): stop retrying it.
        self.store.resolve_rejections(stream, retried - self._rejected_now)
        if scanned_unordered and not self.options.dry_run:
            # An id-ordered scan saw everything modified before the run started, no more.
            self.store.commit_cursor(Cursor(stream, self.now, frozenset()))

    def _process(self, stream: str, fresh: Sequence[Contact]) -> None:
        if not fresh:
            return
        summary = self._current
        ids = [c.id for c in fresh]
        open_tasks = self._open_tasks(ids)
        closed: dict[str, dict[str, int]] = {}
        for (record_id, purpose), count in self.store.closed_task_counts(ids).items():
            closed.setdefault(record_id, {})[purpose] = count
        plans = []
        for contact in fresh:
            decision = self.ruleset.evaluate(contact.facts, now=self.now, contact_id=contact.id)
            plan = plan_contact(contact, decision, now=self.now,
                                open_tasks=open_tasks.get(contact.id),
                                closed_counts=closed.get(contact.id), options=self.plan_options)
            plans.append(plan)
            self._tally(summary, plan)
        summary.counts["read"] += len(fresh)
        summary.read_by_stream[stream] += len(fresh)
        summary.counts["evaluated"] += len(fresh)
        if not self.options.dry_run:
            self._apply(stream, plans)
        self.on_progress(stream, len(fresh))

    def _tally(self, summary: RunSummary, plan: ContactPlan) -> None:
        decision = plan.decision
        summary.statuses[decision.status] += 1
        summary.miss_types[decision.miss_type] += 1
        old, new = plan.transition
        if old != new:
            summary.transitions[f"{old} → {new}"] += 1
        old_miss, new_miss = plan.miss_transition
        if old_miss != new_miss:
            summary.transitions[f"{old_miss} miss → {new_miss} miss"] += 1
        summary.counts["updated" if plan.updates else "unchanged"] += 1
        self._tally_health(summary, plan)
        summary.counts["planned_task_creates"] += len(plan.task_creates)
        summary.counts["planned_task_closes"] += len(plan.task_closes)
        if plan.changed and len(summary.samples) < self.options.samples:
            summary.samples.append(
                {"id": plan.contact.id, "transition": f"{old} → {new}",
                 "miss_type": decision.miss_type, "score": decision.score,
                 "reason": decision.reason, "tasks": [t.spec.purpose for t in plan.task_creates]}
            )

    def _tally_health(self, summary: RunSummary, plan: ContactPlan) -> None:
        """Count what DOMAIN.md's funnel-health report needs, without keeping any contact."""
        decision, facts = plan.decision, plan.contact.facts
        since = plan.contact.outputs.get("status_since") if not plan.updates.get("status_since") \
            else None
        if (decision.status in STUCK_AFTER and isinstance(since, datetime)
                and self.now - since > STUCK_AFTER[decision.status]):
            summary.stuck[decision.status] += 1
        if decision.status == "opportunity":
            contacted = facts.get("last_contacted_at")
            became = since if isinstance(since, datetime) else self.now
            if (not isinstance(contacted, datetime) or contacted < became) and (
                self.now - became > SLA_FIRST_TOUCH
            ):
                summary.sla_breaches += 1
        if decision.miss_type in summary.miss_reasons:
            reason = facts.get("closed_lost_reason") or facts.get("competitor") or "(none recorded)"
            summary.miss_reasons[decision.miss_type][str(reason).strip().lower()[:60]] += 1

    def _open_tasks(self, contact_ids: Sequence[str]) -> dict[str, dict[str, OpenTask]]:
        by_contact: dict[str, dict[str, OpenTask]] = {}
        for task in self.store.open_tasks(contact_ids):
            # An unsettled intent has no CRM id yet: it blocks a second create, but cannot be
            # closed until recovery finds it.
            by_contact.setdefault(task.record_id, {})[task.key] = OpenTask(
                task.key, task.purpose, task.task_id or ""
            )
        return by_contact

    # -- writing ------------------------------------------------------------------------------

    def _apply(self, stream: str, plans: Sequence[ContactPlan]) -> None:
        updates = [p for p in plans if p.updates]
        if updates:
            self._write_fields(stream, updates)
        creates = [c for p in plans for c in p.task_creates]
        if creates:
            self._queue_tasks(stream, creates)
        closes = [c for p in plans for c in p.task_closes if c.task_id]
        if closes:
            self._close_tasks(stream, closes)

    def _write_fields(self, stream: str, plans: Sequence[ContactPlan]) -> None:
        summary = self._current
        for batch in chunks(plans, self.connector.limits.write_batch):
            journal_ids = self.store.journal_fields(
                summary.run_id, stream,
                [(p.contact.id, p.contact.object_type, dict(p.previous), dict(p.updates))
                 for p in batch],
            )
            results = self.connector.write_fields(
                [RecordUpdate(p.contact.id, p.contact.object_type, p.updates) for p in batch]
            )
            self._settle(stream, batch, journal_ids, results, kind="fields")

    def _settle(
        self,
        stream: str,
        plans: Sequence[ContactPlan],
        journal_ids: Sequence[int],
        results: Sequence[WriteResult],
        *,
        kind: str,
    ) -> None:
        summary = self._current
        by_id = {r.record_id: r for r in results}
        applied, resolved = [], []
        for plan, journal_id in zip(plans, journal_ids, strict=True):
            result = by_id.get(plan.contact.id)
            if result is not None and result.ok:
                applied.append(journal_id)
                resolved.append(plan.contact.id)
                continue
            code = result.error_code if result else "NO_RESULT"
            message = result.message if result else "the CRM returned no result for this record"
            self.store.journal_rejected(journal_id, code or "UNKNOWN", message or "")
            self._reject(stream, plan.contact.id, code or "UNKNOWN", message or "")
        if applied:
            self.store.journal_applied(applied)
            self.store.resolve_rejections(stream, resolved)
            summary.counts["field_writes"] += len(applied)

    def _reject(self, stream: str, record_id: str, code: str, message: str) -> None:
        """Remember a record the CRM refused, so the next run retries it."""
        summary = self._current
        self.store.record_rejection(stream, record_id, summary.run_id, code, message)
        self._rejected_now.add(record_id)
        summary.counts["rejected"] += 1

    def _queue_tasks(self, stream: str, creates: Sequence[TaskCreate]) -> None:
        """Record task intents now; create them in full batches, possibly pages later.

        Pages can be smaller than a task batch (HubSpot lists 100 contacts, creates 100 tasks
        but only a fraction of contacts need one), so creates wait for a full batch. The intent
        is recorded before the page's cursor moves on: a run stopped with tasks still queued
        leaves intents, which the next run's recovery finds or re-plans.
        """
        summary = self._current
        records = self.store.task_intents(summary.run_id, stream, creates)
        # A key that is already open, or left as an unsettled intent by another run, is never
        # created again here: recovery settles it first.
        fresh = {r.key for r in records if r.state == "intent" and r.run_id == summary.run_id}
        self._queued_tasks.extend(c for c in creates if c.key in fresh)
        batch_size = self.connector.limits.task_batch
        while len(self._queued_tasks) >= batch_size:
            batch, self._queued_tasks = (self._queued_tasks[:batch_size],
                                         self._queued_tasks[batch_size:])
            self._create_tasks(stream, batch)

    def _flush_tasks(self, stream: str) -> None:
        """Create whatever task creates are still queued for ``stream``."""
        if self._queued_tasks:
            batch, self._queued_tasks = self._queued_tasks, []
            self._create_tasks(stream, batch)

    def _create_tasks(self, stream: str, batch: Sequence[TaskCreate]) -> None:
        summary = self._current
        results = self.connector.create_tasks(batch)
        by_key = {r.key: r for r in results if r.key}
        created = {}
        for create in batch:
            result = by_key.get(create.key)
            if result is not None and result.ok and result.task_id:
                created[create.key] = result.task_id
            else:
                code = (result.error_code if result else None) or "NO_RESULT"
                self.store.task_failed(create.key, code, (result.message if result else "") or "")
                self._reject(stream, create.contact_id, code, "task create failed")
        self.store.tasks_created(created)
        summary.counts["tasks_created"] += len(created)

    def _close_tasks(self, stream: str, closes: Sequence[TaskClose]) -> None:
        summary = self._current
        for batch in chunks(closes, self.connector.limits.task_batch):
            journal_ids = self.store.journal_task_closes(summary.run_id, stream, batch)
            by_key = {r.key: r for r in self.connector.close_tasks(batch) if r.key}
            for close, journal_id in zip(batch, journal_ids, strict=True):
                result = by_key.get(close.key)
                if result is not None and result.ok:
                    self.store.task_closed(close.key)
                    summary.counts["tasks_closed"] += 1
                    continue
                code = (result.error_code if result else None) or "NO_RESULT"
                self.store.journal_rejected(journal_id, code, (result.message if result else "") or "")
                self._reject(stream, close.contact_id, code, "task close failed")

    def _recover_pending_tasks(self, stream: str) -> None:
        """Settle task creates a stopped run left half-done: find them in the CRM, or re-plan.

        Found tasks are recorded as open; the others are forgotten and their contacts re-read
        by this run, so a task lost between "intent" and "created" is neither lost nor
        duplicated.
        """
        pending = self.store.pending_task_intents(stream)
        if not pending:
            return
        found = self.connector.find_tasks(
            sorted({p.record_id for p in pending}), [p.key for p in pending]
        )
        self.store.tasks_created({i.key: found[i.key] for i in pending if i.key in found})
        summary = self._current
        for intent in pending:
            if intent.key not in found:
                # Never created: forget the intent and have this run re-read the contact, so the
                # task is planned afresh even if the contact itself has not changed.
                self.store.task_failed(intent.key, "INTERRUPTED",
                                       "run stopped before the task was created")
                self.store.record_rejection(stream, intent.record_id, summary.run_id,
                                            "INTERRUPTED", "task create interrupted")


def _outcome(error: CrmsyncError) -> tuple[str, ExitCode]:
    """Return the run status and exit code an error ends a run with (DESIGN.md §4)."""
    if isinstance(error, QuotaExhausted):
        return "aborted", ExitCode.AUTH_OR_QUOTA  # resumes next time, where it stopped
    if isinstance(error, AuthError):
        return "failed", ExitCode.AUTH_OR_QUOTA
    if isinstance(error, TransientError):
        return "failed", ExitCode.TRANSIENT
    return "failed", error.exit_code


def minimum_api_calls(summary: RunSummary, limits: ApiLimits, *, related_records: int = 0) -> int:
    """Return the fewest API calls the CRM allows for what a run read and wrote.

    Reads: each stream's contacts at the largest page size, plus ``related_records`` (deals)
    at the same page size. Writes: field updates at the largest batch, tasks likewise. A dry
    run is charged its reads only.
    """
    pages = sum(math.ceil(n / limits.read_page) for n in summary.read_by_stream.values())
    pages += math.ceil(related_records / limits.read_page)
    if summary.mode == "plan":
        return pages
    counts = summary.counts
    return (pages + math.ceil(counts.get("field_writes", 0) / limits.write_batch)
            + math.ceil(counts.get("tasks_created", 0) / limits.task_batch)
            + math.ceil(counts.get("tasks_closed", 0) / limits.task_batch))


def _plan_options(policy: str, ruleset: RuleSet) -> PlanOptions:
    if policy == "leave":
        return PlanOptions(close_obsolete_tasks=False)
    if policy == "close":
        return PlanOptions(close_obsolete_tasks=True)
    # "rule": a purpose whose template says so stays open; a purpose no template names any
    # more (the rule was deleted) is closed.
    keep = frozenset(t.purpose for t in ruleset.tree.tasks if not t.close_when_obsolete)
    return PlanOptions(close_obsolete_tasks=True, keep_open_purposes=keep)


def _advance(cursor: Cursor, contacts: Iterable[Contact], *, cap: datetime) -> Cursor:
    """Move a cursor past a page of contacts, never beyond the run's start ``cap``.

    ``ids_at_value`` keeps the ids processed within the cursor's last second, so the next read
    (which starts at that second) skips them unless they changed again.
    """
    stamped = [c for c in contacts if c.modified_at is not None]
    if not stamped:
        return cursor
    top = min(max(c.modified_at for c in stamped), cap)  # type: ignore[type-var]
    if cursor.value is not None and top < cursor.value:
        return cursor
    floor = top.replace(microsecond=0)
    ids = frozenset(c.id for c in stamped if floor <= c.modified_at <= top)  # type: ignore[operator]
    if cursor.value is not None and cursor.value.replace(microsecond=0) == floor:
        ids |= cursor.ids_at_value
    return Cursor(cursor.stream, top, ids)


def _already_processed(contact: Contact, cursor: Cursor) -> bool:
    """Whether an incremental read met a record the previous run processed in this state."""
    return (
        cursor.value is not None
        and contact.id in cursor.ids_at_value
        and contact.modified_at is not None
        and contact.modified_at <= cursor.value
    )


def chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + size]
