"""The write journal: every write's before/after, pending before the CRM call, settled after."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from crmsync.state.base import DEFAULT_SCOPE, StoreBase
from crmsync.state.bulk import Bulk, one_of
from crmsync.state.records import JournalEntry, PendingWrite
from crmsync.state.schema import JOURNAL_KINDS, _journal, _runs

#: Journal columns an insert sets, in the order of :meth:`Journal._insert_rows`'s rows
#: (``run_id``, ``state`` and the two stamps are the same for the whole batch).
_INSERTED = ("stream", "object_type", "record_id", "kind", "name", "before", "after",
             "task_key", "task_id", "seq", "run_id", "state", "created_at", "updated_at")

#: Set-based settles and reads: one statement whatever the number of ids (see ``one_of``).
def _q_settle(dialect: Dialect) -> sa.Executable:
    return (_journal.update().where(one_of(dialect, _journal.c.id, "ids"))
            .values(state=sa.bindparam("state"), updated_at=sa.bindparam("now")))


_LOCK_RUN = (_runs.update().where(_runs.c.id == sa.bindparam("run_id"))
             .values(status=_runs.c.status))
_MAX_SEQ = (sa.select(sa.func.coalesce(sa.func.max(_journal.c.seq), 0))
            .where(_journal.c.run_id == sa.bindparam("run_id")))
_IDS_BY_SEQ = (sa.select(_journal.c.id)
               .where(_journal.c.run_id == sa.bindparam("run_id"),
                      _journal.c.seq > sa.bindparam("low"), _journal.c.seq <= sa.bindparam("high"))
               .order_by(_journal.c.seq))


#: The columns of a :class:`JournalEntry`, in its fields' order (rows become entries by position).
_ENTRY_COLUMNS = tuple(_journal.c[f.name] for f in fields(JournalEntry))


def _insert(dialect: Dialect) -> Bulk:
    return Bulk(dialect, _journal, _journal.insert(), _INSERTED)


def _set_task_id(dialect: Dialect) -> Bulk:
    return Bulk(dialect, _journal, _journal.update().where(_journal.c.id == sa.bindparam("b_id")),
                ("task_id", "b_id"), types={"b_id": _journal.c.id.type})


def _reject(dialect: Dialect) -> Bulk:
    return Bulk(dialect, _journal, _journal.update().where(_journal.c.id == sa.bindparam("b_id")),
                ("b_id", "error_code", "error_message", "state", "updated_at"),
                types={"b_id": _journal.c.id.type})


class Journal(StoreBase):
    """Journaled writes (what undo reverses, what recovery settles)."""

    def journal_pending(self, run_id: str, entries: Sequence[PendingWrite]) -> list[int]:
        """Journal writes as ``pending`` before sending them; return their ids, in order."""
        if not entries:
            return []
        for entry in entries:
            if entry.kind not in JOURNAL_KINDS:
                raise ValueError(f"unknown journal kind {entry.kind!r}")
        with self._begin() as conn:
            return self._insert_rows(conn, run_id, [
                (self._scoped(e.stream), e.object_type, e.record_id, e.kind, e.name, e.before,
                 e.after, self._scoped(e.task_key) if e.task_key else None, e.task_id)
                for e in entries
            ], self._clock())

    def journal_fields(
        self,
        run_id: str,
        stream: str,
        writes: Sequence[tuple[str, str, Mapping[str, Any], Mapping[str, Any]]],
    ) -> list[int]:
        """Journal field writes, one entry per record: ``(record_id, object_type, before, after)``.

        ``before``/``after`` map output names to values; undo writes ``before`` back. One
        statement for the whole list, in one transaction.
        """
        if not writes:
            return []
        rows = self._field_rows(stream, writes)
        with self._begin() as conn:
            return self._insert_rows(conn, run_id, rows, self._clock())

    def _field_rows(
        self, stream: str, writes: Sequence[tuple[str, str, Mapping[str, Any], Mapping[str, Any]]]
    ) -> list[tuple[Any, ...]]:
        """The journal rows of :meth:`journal_fields`' writes (as :meth:`_insert_rows` takes)."""
        stream = self._scoped(stream)
        rows = []
        for record_id, object_type, before, after in writes:
            # What a plan gives has the same names before and after: kept as it is (the row
            # is serialised before this transaction ends, never held).
            if before.keys() != after.keys():
                before = {k: before.get(k) for k in after}
            rows.append((stream, object_type, record_id, "fields", ",".join(sorted(after)),
                         before, after, None, None))
        return rows

    def journal_applied(
        self, ids: Iterable[int], *, task_ids: Mapping[int, str] | None = None
    ) -> None:
        """Mark journal entries applied (one statement); ``task_ids`` gives created task ids."""
        ids = list(ids)
        if not ids:
            return
        now = self._clock()
        with self._begin() as conn:
            self._settle_entries(conn, ids, "applied", now)
            if task_ids:
                self._bulk("journal.task_id", _set_task_id).execute(
                    conn, [(task_id, entry_id) for entry_id, task_id in task_ids.items()])

    def journal_rejected(self, entry_id: int, code: str, message: str) -> None:
        """Mark one journal entry rejected with the CRM's error (code and message, no data)."""
        with self._begin() as conn:
            self._reject_entries(conn, [(entry_id, code, message)], self._clock())

    def _settle_entries(self, conn: sa.Connection, ids: Sequence[int], state: str,
                        now: datetime) -> None:
        """Move entries to ``state``: one statement, whatever the number of ids."""
        conn.execute(self._query("journal.settle", _q_settle),
                     {"ids": list(ids), "state": state, "now": now})

    def _reject_entries(self, conn: sa.Connection, rows: Sequence[tuple[int, str, str]],
                        now: datetime) -> None:
        """Mark entries ``(id, code, message)`` rejected, in one executemany."""
        self._bulk("journal.reject", _reject).execute(
            conn, rows, {"state": "rejected", "updated_at": now})

    def supersede_entries(self, entry_ids: Iterable[int]) -> None:
        """Mark journal entries ``superseded``: a later run re-reads and re-plans their records."""
        ids = list(entry_ids)
        if not ids:
            return
        with self._begin() as conn:
            self._settle_entries(conn, ids, "superseded", self._clock())

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
        query = (sa.select(*_ENTRY_COLUMNS).where(*where)
                 .order_by(_journal.c.run_id, _journal.c.seq))
        with self._connect() as conn:
            rows = conn.execute(query).all()
        if self._connection == DEFAULT_SCOPE:  # stored bare
            return [JournalEntry(*row) for row in rows]
        return [self._entry(row) for row in rows]

    def _entry(self, row: Sequence[Any]) -> JournalEntry:
        """A journal row (:data:`_ENTRY_COLUMNS`) with its bare stream and task key."""
        entry = JournalEntry(*row)
        return dataclasses.replace(
            entry, stream=self._unscoped(entry.stream),
            task_key=self._unscoped(entry.task_key) if entry.task_key else None)

    def _insert_rows(
        self, conn: sa.Connection, run_id: str, rows: Sequence[tuple[Any, ...]], now: datetime
    ) -> list[int]:
        """Insert pending journal rows with one executemany; return their ids in order.

        Each row is ``(stream, object_type, record_id, kind, name, before, after, task_key,
        task_id)``, the stream and task key as stored (scoped to the connection by the caller).
        """
        if not rows:
            return []
        # Per-run sequence numbers; (run_id, seq) is unique. The shards of a sharded run journal
        # under one run id from several processes: a no-op write on the run's ledger row first
        # takes its row lock (PostgreSQL) or the write lock (SQLite) until this transaction
        # ends, so two writers never read the same highest seq.
        conn.execute(_LOCK_RUN, {"run_id": run_id})
        seq = conn.execute(_MAX_SEQ, {"run_id": run_id}).scalar_one()
        self._bulk("journal.insert", _insert).execute(
            conn, [(*row, seq + offset) for offset, row in enumerate(rows, start=1)],
            {"run_id": run_id, "state": "pending", "created_at": now, "updated_at": now},
        )
        # Read back by (run_id, seq), the unique index: ids need not be consecutive.
        ids = conn.execute(_IDS_BY_SEQ, {"run_id": run_id, "low": seq,
                                         "high": seq + len(rows)}).scalars().all()
        return list(ids)
