"""``crmsync undo RUN_ID``: put back the fields a run changed and close the tasks it created.

Undo is careful rather than blind: a field is restored only while the CRM still holds what the
run wrote, so a rep's edit (or a later run's decision) made since is never overwritten. The undo
is itself a run in the ledger, journaled like any other, so it can be inspected and undone.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

from crmsync.connectors.base import Connector, RecordUpdate
from crmsync.errors import ConfigError, ExitCode
from crmsync.model import TaskClose
from crmsync.plan import same_value
from crmsync.state import JournalEntry, StateStore


@dataclass
class UndoResult:
    """What an undo did."""

    run_id: str
    undo_run_id: str
    restored: int = 0
    skipped: int = 0
    tasks_closed: int = 0
    failed: int = 0

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return dict(self.__dict__)


def undo_run(connector: Connector, store: StateStore, run_id: str) -> UndoResult:
    """Restore the fields ``run_id`` changed (where untouched since) and close its tasks."""
    record = store.get_run(run_id)
    if record is None:
        raise ConfigError(f"no run {run_id!r} in the state store; see `crmsync runs`")
    journal = store.journal_for_run(run_id)
    undo_id = store.start_run(connector.crm, "undo")
    result = UndoResult(run_id, undo_id)
    # Pending (and superseded) field writes count too: a run killed mid-call may or may not
    # have landed them, and the "still holds what the run wrote" check below tells which.
    by_stream: dict[str, list[JournalEntry]] = defaultdict(list)
    for entry in _merged_field_writes(journal):
        by_stream[entry.stream].append(entry)
    for stream, field_entries in by_stream.items():
        _restore_fields(connector, store, undo_id, stream, field_entries, result)
    creates = [
        e for e in journal
        if e.kind == "task_create" and e.state == "applied" and e.task_id and e.task_key
        and _still_open(store, e)
    ]
    for stream in sorted({e.stream for e in creates}):
        closes = [TaskClose(e.record_id, e.object_type, e.task_key or "", e.task_id or "")
                  for e in creates if e.stream == stream]
        store.journal_task_closes(undo_id, stream, closes)
        for outcome in connector.close_tasks(closes):
            if outcome.ok and outcome.key:
                store.task_closed(outcome.key)
                result.tasks_closed += 1
            else:
                result.failed += 1
    status, code = ("partial", ExitCode.PARTIAL) if result.failed else ("ok", ExitCode.OK)
    store.finish_run(undo_id, status, int(code), result.to_json())
    return result


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
    entries: list[JournalEntry],
    result: UndoResult,
) -> None:
    current = {c.id: c for c in connector.read_ids(stream, [e.record_id for e in entries])}
    restorable = []
    for entry in entries:
        contact = current.get(entry.record_id)
        after: dict[str, Any] = dict(entry.after or {})
        if contact is None or not all(
            same_value(contact.outputs.get(name), value) for name, value in after.items()
        ):
            result.skipped += 1
            continue
        restorable.append((entry, contact.outputs))
    if not restorable:
        return
    ids = store.journal_fields(
        undo_id, stream,
        [(e.record_id, e.object_type, {k: outputs.get(k) for k in e.before or {}},
          dict(e.before or {})) for e, outputs in restorable],
    )
    outcomes = {
        r.record_id: r
        for r in connector.write_fields(
            [RecordUpdate(e.record_id, e.object_type, dict(e.before or {})) for e, _ in restorable]
        )
    }
    applied = []
    for (entry, _), journal_id in zip(restorable, ids, strict=True):
        outcome = outcomes.get(entry.record_id)
        if outcome is not None and outcome.ok:
            applied.append(journal_id)
            result.restored += 1
        else:
            store.journal_rejected(journal_id, (outcome.error_code if outcome else None)
                                   or "NO_RESULT", (outcome.message if outcome else "") or "")
            result.failed += 1
    store.journal_applied(applied)
