"""Writing a run's plans: field batches, task creates in full batches, closes, recovery.

Every write is journaled before the CRM call and settled after it; per-record rejections are
recorded (and listed in the summary) so the next run retries them. Batches are sent through
:class:`~crmsync.sync.inflight.InFlight` (up to ``[sync] concurrency`` at once) and settled on
the run's thread; every queued item carries the number of the page it was planned from, so the
:class:`~crmsync.sync.inflight.CursorGate` commits a page's cursor only once its writes settled.

Salesforce updates go through Bulk API 2.0 ingest jobs instead of collections when a stream has
``bulk_threshold`` of them pending (the connector says whether it can: ``limits.bulk_write``):
one job per :data:`BULK_JOB_RECORDS` updates while the stream is read, and one for what is left
at its end when that is still ``bulk_threshold`` or more.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from crmsync.connectors.base import Connector, RecordUpdate, WriteResult
from crmsync.model import TaskClose, TaskCreate
from crmsync.plan import ContactPlan
from crmsync.state import StateStore, TaskRecord
from crmsync.sync.inflight import CursorGate, InFlight
from crmsync.sync.summary import (
    BULK_JOB_RECORDS,
    MAX_LISTED_REJECTIONS,
    RunSummary,
    SyncOptions,
)
from crmsync.sync.tally import Tally

T = TypeVar("T")


def drain(queue: list[T], size: int, send: Callable[[list[T]], None], *,
          everything: bool = False) -> None:
    """Send queued items in full batches of ``size`` from the front, in place.

    What is left (less than a batch) waits for more, unless ``everything`` is asked for (the
    end of a stream).
    """
    while len(queue) >= size or (everything and queue):
        batch = queue[:size]
        del queue[:size]
        send(batch)


class Writer:
    """The writing half of :class:`~crmsync.sync.SyncRun` (a mixin: it shares its state)."""

    connector: Connector
    store: StateStore
    options: SyncOptions
    _queued_tasks: list[tuple[TaskCreate, int]]
    _queued_updates: list[tuple[ContactPlan, int, int]]
    _queued_closes: list[tuple[TaskClose, int, int]]
    _rejected_now: set[str]
    _inflight: InFlight
    _gate: CursorGate
    _page: int
    _tally: Tally | None

    @property
    def _current(self) -> RunSummary:
        raise NotImplementedError

    def _apply(self, stream: str, plans: Sequence[ContactPlan]) -> None:
        updates = [p for p in plans if p.updates]
        creates = [c for p in plans for c in p.task_creates]
        if updates and creates:
            # Both journaled in one transaction, before either is sent (one commit, not two).
            journal_ids, records = self.store.journal_page(
                self._current.run_id, stream, self._field_writes(updates), creates)
            self._queue_updates(stream, updates, journal_ids)
            self._queue_tasks(stream, creates, records)
        elif updates:
            self._queue_updates(stream, updates)
        elif creates:
            self._queue_tasks(stream, creates)
        closes = [c for p in plans for c in p.task_closes if c.task_id]
        if closes:
            self._queue_closes(stream, closes)

    @property
    def _bulk_threshold(self) -> int:
        """Pending updates from which a stream's updates go through Bulk 2.0 (0: never)."""
        if not getattr(self.connector.limits, "bulk_write", False):
            return 0
        return self.options.bulk_threshold

    @staticmethod
    def _field_writes(
        plans: Sequence[ContactPlan],
    ) -> list[tuple[str, str, dict[str, object], dict[str, object]]]:
        """The journal's ``(record id, object type, before, after)`` of plans' field updates.

        The plans' own dicts, not copies: the journal serialises them before it returns.
        """
        return [(p.contact.id, p.contact.object_type, p.previous, p.updates) for p in plans]

    def _queue_updates(self, stream: str, plans: Sequence[ContactPlan],
                       journal_ids: Sequence[int] | None = None) -> None:
        """Journal field writes now; send them in full batches, possibly pages later.

        A rule change moves a few contacts on each of many pages: sent page by page, 34 updates
        over 50 pages cost 33 calls; queued, one. They are journaled ``pending`` before the
        page's cursor moves, so a run stopped with updates still queued leaves pending rows,
        which the next run's recovery turns into re-reads (:meth:`_recover_pending_writes`).

        Where the CRM has a bulk path, updates wait until it is clear which path is cheaper:
        a job goes once :data:`BULK_JOB_RECORDS` are pending (or ``bulk_threshold``, if higher);
        at the stream's end, what is left goes as one job when it is ``bulk_threshold`` or more,
        as batches otherwise (:meth:`_flush_writes`).
        ``journal_ids``: the plans were journaled already (with the page's task intents).
        """
        if journal_ids is None:
            journal_ids = self.store.journal_fields(self._current.run_id, stream,
                                                    self._field_writes(plans))
        self._gate.planned(self._page, len(plans))
        self._queued_updates.extend(
            (plan, jid, self._page) for plan, jid in zip(plans, journal_ids, strict=True))
        threshold = self._bulk_threshold
        if threshold:
            if len(self._queued_updates) >= max(threshold, BULK_JOB_RECORDS):
                self._send_updates_bulk(stream, self._queued_updates[:])
                self._queued_updates.clear()
            return
        drain(self._queued_updates, self.connector.limits.write_batch,
              lambda batch: self._send_updates(stream, batch))

    def _send_updates(self, stream: str, batch: Sequence[tuple[ContactPlan, int, int]]) -> None:
        plans = [plan for plan, _, _ in batch]
        updates = [RecordUpdate(p.contact.id, p.contact.object_type, p.updates) for p in plans]
        self._inflight.submit(
            lambda: self.connector.write_fields(updates),
            lambda results: self._settle_updates(stream, batch, results),
            tuple(page for _, _, page in batch),
        )

    def _send_updates_bulk(self, stream: str,
                           batch: Sequence[tuple[ContactPlan, int, int]]) -> None:
        """Send a stream's pending updates as one bulk ingest job (Salesforce Bulk API 2.0)."""
        plans = [plan for plan, _, _ in batch]
        updates = [RecordUpdate(p.contact.id, p.contact.object_type, p.updates) for p in plans]
        summary = self._current
        summary.counts["bulk_jobs"] += 1
        summary.write_paths[stream] = "bulk"
        self._inflight.submit(
            lambda: self.connector.write_fields_bulk(updates),  # type: ignore[attr-defined]
            lambda results: self._settle_updates(stream, batch, results),
            tuple(page for _, _, page in batch),
        )

    def _settle_updates(self, stream: str, batch: Sequence[tuple[ContactPlan, int, int]],
                        results: Sequence[WriteResult]) -> None:
        # Journal, rejections and the batch's decisions in one settle (see _settle).
        plans = [plan for plan, _, _ in batch]
        self._settle(stream, plans, [jid for _, jid, _ in batch], results, kind="fields")

    def _queue_closes(self, stream: str, closes: Sequence[TaskClose]) -> None:
        """Queue obsolete-task closes into full batches, journaled first (as field writes)."""
        journal_ids = self.store.journal_task_closes(self._current.run_id, stream, closes)
        self._gate.planned(self._page, len(closes))
        self._queued_closes.extend(
            (close, jid, self._page) for close, jid in zip(closes, journal_ids, strict=True))
        drain(self._queued_closes, self.connector.limits.task_batch,
              lambda batch: self._close_tasks(stream, batch))

    def _flush_writes(self, stream: str) -> None:
        """Send whatever field updates, closes and task creates are still queued; settle all."""
        limits = self.connector.limits
        threshold = self._bulk_threshold
        if threshold and len(self._queued_updates) >= threshold:
            self._send_updates_bulk(stream, self._queued_updates[:])
            self._queued_updates.clear()
        drain(self._queued_updates, limits.write_batch,
              lambda batch: self._send_updates(stream, batch), everything=True)
        drain(self._queued_closes, limits.task_batch,
              lambda batch: self._close_tasks(stream, batch), everything=True)
        self._flush_tasks(stream)
        self._inflight.settle_all()
        if stream not in self._current.write_paths and self._current.counts["field_writes"]:
            self._current.write_paths[stream] = "batches"

    def _save_states(self, stream: str, plans: Sequence[ContactPlan]) -> None:
        raise NotImplementedError

    def _state_rows(self, plans: Sequence[ContactPlan]) -> list[dict[str, object]]:
        raise NotImplementedError

    def _recover_pending_writes(self, stream: str) -> None:
        """Turn field writes and task closes a stopped run left ``pending`` into re-reads.

        Whether they landed is unknown and the stopped run's cursor may have moved past them:
        their records are marked for retry (this run reads them first and re-plans them) and
        the rows ``superseded``.
        """
        pending = [e for e in self.store.pending_entries(stream)
                   if e.kind in ("fields", "task_close")]
        if not pending:
            return
        run_id = self._current.run_id
        for record_id in sorted({e.record_id for e in pending}):
            self.store.record_rejection(stream, record_id, run_id, "INTERRUPTED",
                                        "run stopped before this write was confirmed")
        self.store.supersede_entries([e.id for e in pending])

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
        applied, resolved, rejected = [], [], []
        for plan, journal_id in zip(plans, journal_ids, strict=True):
            result = by_id.get(plan.contact.id)
            if result is not None and result.ok:
                applied.append(journal_id)
                resolved.append(plan.contact.id)
                continue
            code = (result.error_code if result else "NO_RESULT") or "UNKNOWN"
            message = (result.message if result
                       else "the CRM returned no result for this record") or ""
            rejected.append((journal_id, plan.contact.id, code, message))
            self._reject(stream, plan.contact.id, code, message, fields=sorted(plan.updates),
                         recorded=True)
            if self._tally is not None:
                self._tally.refused(plan)
        # The whole batch in one transaction: journal, rejections and the decisions saved.
        self.store.settle_fields(summary.run_id, stream, applied=applied, resolved=resolved,
                                 states=self._state_rows(plans), rejected=rejected)
        summary.counts["field_writes"] += len(applied)

    def _reject(self, stream: str, record_id: str, code: str, message: str,
                fields: Sequence[str] = (), *, recorded: bool = False) -> None:
        """Remember a record the CRM refused, so the next run retries it.

        ``recorded``: the caller stores the rejection itself (with its batch's settle).
        """
        summary = self._current
        if not recorded:
            self.store.record_rejection(stream, record_id, summary.run_id, code, message)
        self._rejected_now.add(record_id)
        summary.counts["rejected"] += 1
        if len(summary.rejections) < MAX_LISTED_REJECTIONS:
            # The CRM's code and message name the field and the rule broken, not its value.
            summary.rejections.append({"record_id": record_id, "stream": stream,
                                       "fields": list(fields), "code": code,
                                       "message": message[:300]})

    def _queue_tasks(self, stream: str, creates: Sequence[TaskCreate],
                     records: Sequence[TaskRecord] | None = None) -> None:
        """Record task intents now; create them in full batches, possibly pages later.

        Pages can be smaller than a task batch (HubSpot lists 100 contacts, creates 100 tasks
        but only a fraction of contacts need one), so creates wait for a full batch. The intent
        is recorded before the page's cursor moves on: a run stopped with tasks still queued
        leaves intents, which the next run's recovery finds or re-plans.
        """
        summary = self._current
        if records is None:  # else recorded already, with the page's field writes
            records = self.store.task_intents(summary.run_id, stream, creates)
        # A key that is already open, or left as an unsettled intent by another run, is never
        # created again here: recovery settles it first.
        fresh = {r.key for r in records if r.state == "intent" and r.run_id == summary.run_id}
        queued = [(c, self._page) for c in creates if c.key in fresh]
        self._gate.planned(self._page, len(queued))
        self._queued_tasks.extend(queued)
        drain(self._queued_tasks, self._task_send_size(),
              lambda batch: self._create_tasks(stream, batch))

    def _flush_tasks(self, stream: str) -> None:
        """Create whatever task creates are still queued for ``stream``."""
        drain(self._queued_tasks, self._task_send_size(),
              lambda batch: self._create_tasks(stream, batch), everything=True)

    def _task_send_size(self) -> int:
        """Task creates handed to the connector at once: what one key lookup covers (HubSpot
        checks 500 keys in one search, then creates them 100 a call), else one create batch."""
        limits = self.connector.limits
        return max(limits.task_batch, limits.task_lookup_batch)

    def _create_tasks(self, stream: str, batch: Sequence[tuple[TaskCreate, int]]) -> None:
        creates = [create for create, _ in batch]
        self._inflight.submit(
            lambda: self.connector.create_tasks(creates),
            lambda results: self._settle_creates(stream, creates, results),
            tuple(page for _, page in batch),
        )

    def _settle_creates(self, stream: str, batch: Sequence[TaskCreate],
                        results: Sequence[WriteResult]) -> None:
        summary = self._current
        by_key = {r.key: r for r in results if r.key}
        created = {}
        found = 0
        for create in batch:
            result = by_key.get(create.key)
            if result is not None and result.ok and result.task_id:
                created[create.key] = result.task_id
                found += result.existed
            else:
                code = (result.error_code if result else None) or "NO_RESULT"
                self.store.task_failed(create.key, code, (result.message if result else "") or "")
                self._reject(stream, create.contact_id, code, "task create failed", fields=["task"])
        self.store.tasks_created(created)
        # A task the CRM already held is recorded as open, but it was not created.
        summary.counts["tasks_created"] += len(created) - found
        if found:
            summary.counts["tasks_found"] += found

    def _close_tasks(self, stream: str, batch: Sequence[tuple[TaskClose, int, int]]) -> None:
        closes = [close for close, _, _ in batch]
        self._inflight.submit(
            lambda: self.connector.close_tasks(closes),
            lambda results: self._settle_closes(stream, batch, results),
            tuple(page for _, _, page in batch),
        )

    def _settle_closes(self, stream: str, batch: Sequence[tuple[TaskClose, int, int]],
                       results: Sequence[WriteResult]) -> None:
        summary = self._current
        by_key = {r.key: r for r in results if r.key}
        for close, journal_id, _ in batch:
            result = by_key.get(close.key)
            if result is not None and result.ok:
                self.store.task_closed(close.key)
                summary.counts["tasks_closed"] += 1
                continue
            code = (result.error_code if result else None) or "NO_RESULT"
            message = (result.message if result else "") or ""
            self.store.journal_rejected(journal_id, code, message)
            self._reject(stream, close.contact_id, code, "task close failed", fields=["task"])

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
