"""The write journal: every write's before/after, pending before the CRM call, settled after."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from crmsync.state.base import StoreBase
from crmsync.state.records import JournalEntry, PendingWrite
from crmsync.state.schema import JOURNAL_KINDS, _journal


class Journal(StoreBase):
    """Journaled writes (what undo reverses, what recovery settles)."""

    def journal_pending(self, run_id: str, entries: Sequence[PendingWrite]) -> list[int]:
        """Journal writes as ``pending`` before sending them; return their ids, in order."""
        if not entries:
            return []
        with self._begin() as conn:
            return _insert_pending(conn, run_id, self._scope_writes(entries), self._clock())

    def _scope_writes(self, entries: Sequence[PendingWrite]) -> list[PendingWrite]:
        """Return ``entries`` with their stream and task key as this connection stores them."""
        return [dataclasses.replace(e, stream=self._scoped(e.stream),
                                    task_key=self._scoped(e.task_key) if e.task_key else None)
                for e in entries]

    def journal_fields(
        self,
        run_id: str,
        stream: str,
        writes: Sequence[tuple[str, str, Mapping[str, Any], Mapping[str, Any]]],
    ) -> list[int]:
        """Journal field writes, one entry per record: ``(record_id, object_type, before, after)``.

        ``before``/``after`` map output names to values; undo writes ``before`` back.
        """
        return self.journal_pending(run_id, [
            PendingWrite(stream, object_type, record_id, "fields", ",".join(sorted(after)),
                         {k: before.get(k) for k in after}, dict(after))
            for record_id, object_type, before, after in writes
        ])

    def journal_applied(
        self, ids: Iterable[int], *, task_ids: Mapping[int, str] | None = None
    ) -> None:
        """Mark journal entries applied; ``task_ids`` gives created task ids by entry id."""
        ids = list(ids)
        if not ids:
            return
        now = self._clock()
        with self._begin() as conn:
            conn.execute(
                _journal.update().where(_journal.c.id.in_(ids))
                .values(state="applied", updated_at=now)
            )
            for entry_id, task_id in (task_ids or {}).items():
                conn.execute(
                    _journal.update().where(_journal.c.id == entry_id).values(task_id=task_id)
                )

    def journal_rejected(self, entry_id: int, code: str, message: str) -> None:
        """Mark one journal entry rejected with the CRM's error (code and message, no data)."""
        with self._begin() as conn:
            conn.execute(
                _journal.update().where(_journal.c.id == entry_id).values(
                    state="rejected", error_code=code, error_message=message,
                    updated_at=self._clock(),
                )
            )

    def supersede_entries(self, entry_ids: Iterable[int]) -> None:
        """Mark journal entries ``superseded``: a later run re-reads and re-plans their records."""
        ids = list(entry_ids)
        if not ids:
            return
        with self._begin() as conn:
            conn.execute(_journal.update().where(_journal.c.id.in_(ids))
                         .values(state="superseded", updated_at=self._clock()))

    def rejected_entries(self, run_id: str) -> list[JournalEntry]:
        """Return a run's writes the CRM refused: record id, outputs and the CRM's error."""
        return self._journal_rows(_journal.c.run_id == run_id, _journal.c.state == "rejected")

    def journal_for_run(self, run_id: str) -> list[JournalEntry]:
        """Return every journal entry of a run in write order (what undo reverses)."""
        return self._journal_rows(_journal.c.run_id == run_id)

    def pending_entries(self, stream: str) -> list[JournalEntry]:
        """Return entries of a stream left ``pending`` by a run that stopped mid-write."""
        return self._journal_rows(_journal.c.stream == self._scoped(stream),
                                  _journal.c.state == "pending")

    def _journal_rows(self, *where: sa.ColumnElement[bool]) -> list[JournalEntry]:
        query = _journal.select().where(*where).order_by(_journal.c.run_id, _journal.c.seq)
        with self._connect() as conn:
            return [JournalEntry(**{
                **row._asdict(), "stream": self._unscoped(row.stream),
                "task_key": self._unscoped(row.task_key) if row.task_key else None,
            }) for row in conn.execute(query)]


def _insert_pending(
    conn: sa.Connection, run_id: str, entries: Sequence[PendingWrite], now: datetime
) -> list[int]:
    """Insert pending journal rows with one executemany; return their ids in order."""
    if not entries:
        return []
    # Per-run sequence numbers; (run_id, seq) is unique, so a racing writer fails loudly.
    seq = conn.execute(
        sa.select(sa.func.coalesce(sa.func.max(_journal.c.seq), 0))
        .where(_journal.c.run_id == run_id)
    ).scalar_one()
    rows = []
    for offset, entry in enumerate(entries, start=1):
        if entry.kind not in JOURNAL_KINDS:
            raise ValueError(f"unknown journal kind {entry.kind!r}")
        rows.append({
            "run_id": run_id, "seq": seq + offset, "stream": entry.stream,
            "object_type": entry.object_type, "record_id": entry.record_id,
            "kind": entry.kind, "name": entry.name, "before": entry.before,
            "after": entry.after, "state": "pending", "task_key": entry.task_key,
            "task_id": entry.task_id, "created_at": now, "updated_at": now,
        })
    conn.execute(_journal.insert(), rows)
    ids = conn.execute(
        sa.select(_journal.c.id)
        .where(_journal.c.run_id == run_id, _journal.c.seq > seq,
               _journal.c.seq <= seq + len(rows))
        .order_by(_journal.c.seq)
    ).scalars().all()
    return list(ids)
