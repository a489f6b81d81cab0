"""``crmsync undo RUN_ID``: put back the fields a run changed and close the tasks it created.

Undo is careful rather than blind: a field is restored only while the CRM still holds what the
run wrote, so a rep's edit (or a later run's decision) made since is never overwritten. The undo
is itself a run in the ledger, journaled like any other, so it can be inspected and undone.

Undo writes to the CRM, so it takes the same lease as a sync run (``sync:{crm}``): it never
writes alongside a run, and a run never starts while an undo writes. ``--dry-run`` works out
the same plan (reading the CRM) and writes nothing, takes no lease and records no run.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from crmsync.connectors.base import Connector, RecordUpdate
from crmsync.errors import ConfigError, ExitCode, RunInProgress
from crmsync.model import TaskClose
from crmsync.plan import same_value
from crmsync.state import JournalEntry, StateStore, stored_category

log = logging.getLogger("crmsync.undo")

#: Undo holds the run lease this long without renewal (an undo is a handful of batches).
UNDO_LEASE_MINUTES = 15
#: The rule-set hash of decisions an undo put back: no rule set, so every one is re-decided.
UNDONE_RULES = ""


@dataclass
class UndoResult:
    """What an undo did (or, for a dry run, would do)."""

    run_id: str
    undo_run_id: str
    restored: int = 0
    skipped: int = 0
    tasks_closed: int = 0
    failed: int = 0
    #: Tasks the undone run closed: undo leaves them closed (a rep may have acted on them).
    tasks_left_closed: int = 0
    #: An earlier undo of the same run, if any (this one then finds little or nothing to do).
    undone_before: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class Restore:
    """One record whose fields an undo puts back: ``values`` is what it writes."""

    stream: str
    entry: JournalEntry
    current: dict[str, Any]

    @property
    def values(self) -> dict[str, Any]:
        """The outputs written back (the values before the undone run)."""
        return dict(self.entry.before or {})


@dataclass
class UndoPlan:
    """What an undo of ``run_id`` would write: restores, skipped records and task closes."""

    run_id: str
    restores: list[Restore] = field(default_factory=list)
    skipped: int = 0
    closes: dict[str, list[TaskClose]] = field(default_factory=dict)
    #: Tasks the run closed, which undo leaves closed.
    left_closed: int = 0

    def to_json(self) -> dict[str, Any]:
        """Return the dry run's answer: every write the undo would make."""
        return {
            "run_id": self.run_id,
            "dry_run": True,
            "would_restore": len(self.restores),
            "would_skip": self.skipped,
            "would_close_tasks": sum(len(c) for c in self.closes.values()),
            "tasks_left_closed": self.left_closed,
            "restores": [
                {"record_id": r.entry.record_id, "object_type": r.entry.object_type,
                 "stream": r.stream,
                 "fields": {name: {"now": r.current.get(name), "restore": value}
                            for name, value in r.values.items()}}
                for r in self.restores
            ],
            "task_closes": [
                {"record_id": c.contact_id, "task_id": c.task_id, "key": c.key}
                for closes in self.closes.values() for c in closes
            ],
        }


def plan_undo(connector: Connector, store: StateStore, run_id: str) -> UndoPlan:
    """Work out what undoing ``run_id`` writes, reading the CRM's current values (no writes).

    Raises:
        ConfigError: No such run.
    """
    if store.get_run(run_id) is None:
        raise ConfigError(f"no run {run_id!r} in the state store; see `crmsync runs`")
    journal = store.journal_for_run(run_id)
    plan = UndoPlan(run_id)
    # Pending (and superseded) field writes count too: a run killed mid-call may or may not
    # have landed them, and the "still holds what the run wrote" check tells which.
    by_stream: dict[str, list[JournalEntry]] = defaultdict(list)
    for entry in _merged_field_writes(journal):
        by_stream[entry.stream].append(entry)
    for stream, entries in by_stream.items():
        current = {c.id: c for c in connector.read_ids(stream, [e.record_id for e in entries])}
        for entry in entries:
            contact = current.get(entry.record_id)
            after: dict[str, Any] = dict(entry.after or {})
            if contact is None or not all(
                same_value(contact.outputs.get(name), value) for name, value in after.items()
            ):
                plan.skipped += 1
                continue
            now = {k: contact.outputs.get(k) for k in entry.before or {}}
            plan.restores.append(Restore(stream, entry, now))
    creates = [
        e for e in journal
        if e.kind == "task_create" and e.state == "applied" and e.task_id and e.task_key
        and _still_open(store, e)
    ]
    plan.left_closed = sum(1 for e in journal if e.kind == "task_close" and e.state == "applied")
    for stream in sorted({e.stream for e in creates}):
        plan.closes[stream] = [TaskClose(e.record_id, e.object_type, e.task_key or "",
                                         e.task_id or "") for e in creates if e.stream == stream]
    return plan


def undo_run(connector: Connector, store: StateStore, run_id: str) -> UndoResult:
    """Restore the fields ``run_id`` changed (where untouched since) and close its tasks.

    Raises:
        ConfigError: No such run.
        RunInProgress: A sync run (or another undo) holds this CRM's lease; nothing was done.
    """
    if store.get_run(run_id) is None:
        raise ConfigError(f"no run {run_id!r} in the state store; see `crmsync runs`")
    undo_id = store.start_run(connector.crm, "undo")
    lease = f"sync:{connector.crm}"
    try:
        dead = store.acquire_lease(lease, undo_id, timedelta(minutes=UNDO_LEASE_MINUTES))
    except RunInProgress as busy:
        store.finish_run(undo_id, "skipped", int(ExitCode.BUSY), {"run_id": run_id}, str(busy))
        raise
    if dead and store.abort_run(dead, "stopped without finishing (lease taken over)"):
        log.warning("run %s stopped without finishing; the next sync run finishes its work", dead)
    earlier = store.undos_of(run_id)
    result = UndoResult(run_id, undo_id, undone_before=earlier[0].id if earlier else None)
    try:
        _apply(connector, store, undo_id, plan_undo(connector, store, run_id), result)
    except BaseException as error:
        status, code = ("failed", getattr(error, "exit_code", ExitCode.TRANSIENT))
        store.finish_run(undo_id, status, int(code), result.to_json(),
                         f"undo stopped ({type(error).__name__})")
        raise
    finally:
        store.release_lease(lease, undo_id)
    status, code = ("partial", ExitCode.PARTIAL) if result.failed else ("ok", ExitCode.OK)
    store.finish_run(undo_id, status, int(code), result.to_json())
    return result


def _apply(connector: Connector, store: StateStore, undo_id: str, plan: UndoPlan,
           result: UndoResult) -> None:
    result.skipped = plan.skipped
    result.tasks_left_closed = plan.left_closed
    by_stream: dict[str, list[Restore]] = defaultdict(list)
    for restore in plan.restores:
        by_stream[restore.stream].append(restore)
    for stream, restores in by_stream.items():
        restored = _restore_fields(connector, store, undo_id, stream, restores, result)
        _record_restored(connector, store, undo_id, stream, restored, plan.run_id)
    for stream, closes in plan.closes.items():
        store.journal_task_closes(undo_id, stream, closes)
        for outcome in connector.close_tasks(closes):
            if outcome.ok and outcome.key:
                store.task_closed(outcome.key)
                result.tasks_closed += 1
            else:
                result.failed += 1


def _merged_field_writes(journal: list[JournalEntry]) -> list[JournalEntry]:
    """One entry per record: the first ``before`` and the last ``after`` of its writes."""
    merged: dict[tuple[str, str], JournalEntry] = {}
    for entry in sorted(journal, key=lambda e: e.seq):
        if entry.kind != "fields" or entry.state not in ("applied", "pending", "superseded"):
            continue
        key = (entry.stream, entry.record_id)
        first = merged.get(key)
        if first is None:
            merged[key] = entry
            continue
        before = {**dict(entry.before or {}), **dict(first.before or {})}
        after = {**dict(first.after or {}), **dict(entry.after or {})}
        merged[key] = replace(first, before=before, after=after)
    return list(merged.values())


def _still_open(store: StateStore, entry: JournalEntry) -> bool:
    task = store.task_lookup(entry.record_id, entry.task_key or "")
    return task is not None and task.state == "open"


def _restore_fields(
    connector: Connector,
    store: StateStore,
    undo_id: str,
    stream: str,
    restores: list[Restore],
    result: UndoResult,
) -> list[str]:
    """Write ``restores`` back, journaled; return the ids of the records the CRM took."""
    ids = store.journal_fields(
        undo_id, stream,
        [(r.entry.record_id, r.entry.object_type, r.current, r.values) for r in restores],
    )
    outcomes = {
        o.record_id: o
        for o in connector.write_fields(
            [RecordUpdate(r.entry.record_id, r.entry.object_type, r.values) for r in restores]
        )
    }
    applied, restored = [], []
    for restore, journal_id in zip(restores, ids, strict=True):
        outcome = outcomes.get(restore.entry.record_id)
        if outcome is not None and outcome.ok:
            applied.append(journal_id)
            restored.append(restore.entry.record_id)
            result.restored += 1
        else:
            store.journal_rejected(journal_id, (outcome.error_code if outcome else None)
                                   or "NO_RESULT", (outcome.message if outcome else "") or "")
            result.failed += 1
    store.journal_applied(applied)
    return restored


def _record_restored(connector: Connector, store: StateStore, undo_id: str, stream: str,
                     record_ids: list[str], undone_run: str) -> None:
    """Make the state store say what the CRM holds again after a restore.

    The restored records are read back: their decisions become the values put back (a record
    put back to no decision at all is forgotten), stamped with no rule set and the CRM's new
    modification stamp, so the next run re-decides them and counts what moves as a rule
    change, not as a change in the data. The stream's stamp no longer names rules that decided
    every contact, so the next run re-reads the stream.
    """
    if not record_ids:
        return
    rows, forgotten = [], []
    for contact in connector.read_ids(stream, record_ids):
        outputs = contact.outputs
        status, miss_type = outputs.get("status"), outputs.get("miss_type")
        if not status:
            forgotten.append(contact.id)
            continue
        since = outputs.get("status_since")
        score = outputs.get("score")
        rows.append({
            "record_id": contact.id, "status": status, "miss_type": miss_type or "none",
            "score": float(score) if isinstance(score, int | float) else None,
            "status_since": since if isinstance(since, datetime) else None,
            "ruleset_hash": UNDONE_RULES, "modified_at": contact.modified_at,
            "owner_id": contact.owner_id,
            "lead_source": stored_category(contact.facts.get("lead_source")),
        })
    store.save_contact_states(undo_id, stream, rows)
    store.forget_contact_states(stream, forgotten)
    stamp = store.stream_stamp(stream)
    if stamp is not None:
        store.set_stream_stamp(stream, ruleset_version=f"undo of {undone_run}",
                               ruleset_hash=UNDONE_RULES, fieldmap_hash=stamp.fieldmap_hash,
                               run_id=undo_id)
