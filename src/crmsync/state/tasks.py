"""The task registry: one row per deterministic task key, intent → open → closed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from crmsync.model import TaskClose, TaskCreate
from crmsync.state.base import DEFAULT_SCOPE
from crmsync.state.bulk import Bulk, dialect_insert, one_of
from crmsync.state.journal import Journal
from crmsync.state.records import PendingWrite, TaskRecord
from crmsync.state.schema import _journal, _tasks

#: The columns of a :class:`TaskRecord`, in its fields' order (rows become records by position).
_RECORD_COLUMNS = tuple(_tasks.c[f.name] for f in fields(TaskRecord))


# The two page reads below are limited to one connection's task keys (``in_scope``), so
# their statements are cached per connection (see TaskRegistry._open).
def _q_open(dialect: Dialect, in_scope: sa.ColumnElement[bool]) -> sa.Executable:
    return sa.select(*_RECORD_COLUMNS).where(one_of(dialect, _tasks.c.record_id, "ids"),
                                             # not a literal IN: no per-call expansion
                                             sa.or_(_tasks.c.state == "intent",
                                                    _tasks.c.state == "open"),
                                             in_scope)


def _q_closed_counts(dialect: Dialect, in_scope: sa.ColumnElement[bool]) -> sa.Executable:
    return (sa.select(_tasks.c.record_id, _tasks.c.purpose, sa.func.count())
            .where(one_of(dialect, _tasks.c.record_id, "ids"), _tasks.c.state == "closed",
                   in_scope)
            .group_by(_tasks.c.record_id, _tasks.c.purpose))


def _q_by_keys(dialect: Dialect) -> sa.Executable:
    return sa.select(*_RECORD_COLUMNS).where(one_of(dialect, _tasks.c.key, "keys"))


def _q_journal_ids(dialect: Dialect) -> sa.Executable:
    return (sa.select(_tasks.c.key, _tasks.c.journal_id)
            .where(one_of(dialect, _tasks.c.key, "keys")))


#: An intent's columns, in the order of :meth:`TaskRegistry.task_intents`'s rows (the others
#: are the same for the whole batch).
_INTENT = ("key", "record_id", "purpose", "journal_id", "stream", "state", "task_id", "run_id",
           "updated_at")


def _insert(dialect: Dialect) -> Bulk:
    return Bulk(dialect, _tasks, _tasks.insert(), _INTENT)


def _renew(dialect: Dialect) -> Bulk:
    # A closed or failed key planned again becomes a fresh intent in place (the key is unique).
    return Bulk(dialect, _tasks, _tasks.update().where(_tasks.c.key == sa.bindparam("b_key")),
                (*_INTENT[1:], "b_key"), types={"b_key": _tasks.c.key.type})


def _opened(dialect: Dialect) -> Bulk:
    return Bulk(dialect, _tasks, _tasks.update().where(_tasks.c.key == sa.bindparam("b_key")),
                ("task_id", "b_key", "state", "updated_at"), types={"b_key": _tasks.c.key.type})


def _journal_applied(dialect: Dialect) -> Bulk:
    return Bulk(dialect, _journal, _journal.update().where(_journal.c.id == sa.bindparam("b_id")),
                ("task_id", "b_id", "state", "updated_at"), types={"b_id": _journal.c.id.type})


class TaskRegistry(Journal):
    """crmsync's tasks, by key: what is open, what a stopped run left half-done."""

    def task_lookup(self, record_id: str, key: str) -> TaskRecord | None:
        """Return the registry row of a task key for a record, or ``None``."""
        with self._connect() as conn:
            row = conn.execute(
                sa.select(*_RECORD_COLUMNS).where(_tasks.c.key == self._scoped(key),
                                                  _tasks.c.record_id == record_id)
            ).first()
        return self._task(row) if row else None

    def open_tasks(self, record_ids: Iterable[str]) -> list[TaskRecord]:
        """Return the open (or possibly open) tasks of some records."""
        ids = list(record_ids)
        if not ids:
            return []
        with self._connect() as conn:
            return self._open(conn, ids)

    def _open(self, conn: sa.Connection, ids: Sequence[str]) -> list[TaskRecord]:
        query = self._query(f"tasks.open@{self._connection}",
                            lambda dialect: _q_open(dialect, self._in_scope(_tasks.c.key)))
        rows = conn.execute(query, {"ids": ids})
        return [self._task(row) for row in rows]

    def closed_task_counts(self, record_ids: Iterable[str]) -> dict[tuple[str, str], int]:
        """Return ``{(record id, purpose): tasks closed so far}`` (the next task's generation)."""
        ids = list(record_ids)
        if not ids:
            return {}
        with self._connect() as conn:
            return self._closed_counts(conn, ids)

    def _closed_counts(self, conn: sa.Connection,
                       ids: Sequence[str]) -> dict[tuple[str, str], int]:
        query = self._query(f"tasks.closed_counts@{self._connection}",
                            lambda dialect: _q_closed_counts(dialect,
                                                             self._in_scope(_tasks.c.key)))
        rows = conn.execute(query, {"ids": ids}).all()
        return {(row[0], row[1]): int(row[2]) for row in rows}

    def task_intent(self, run_id: str, stream: str, create: TaskCreate) -> TaskRecord:
        """Record the intent to create one task; see :meth:`task_intents`."""
        return self.task_intents(run_id, stream, [create])[0]

    def adopt_tasks(self, run_id: str, stream: str,
                    tasks: Sequence[tuple[str, str, str, str, bool]]) -> None:
        """Record tasks found in the CRM that the registry does not know of, as they are there.

        Each is ``(record id, purpose, key, task id, open)``. A key already registered is left
        as it is. A store that lost its registry learns, this way, which tasks are open (none
        is created again) and how many of a purpose were closed (the next one's generation).
        """
        if not tasks:
            return
        insert = dialect_insert(self._engine.dialect)
        now, stored_stream = self._clock(), self._scoped(stream)
        rows = [{"key": self._scoped(key), "record_id": record_id, "stream": stored_stream,
                 "purpose": purpose, "state": "open" if is_open else "closed",
                 "task_id": task_id, "run_id": run_id, "journal_id": None, "updated_at": now}
                for record_id, purpose, key, task_id, is_open in tasks]
        with self._begin() as conn:
            conn.execute(insert(_tasks).on_conflict_do_nothing(index_elements=[_tasks.c.key]),
                         rows)

    def task_intents(
        self, run_id: str, stream: str, creates: Sequence[TaskCreate]
    ) -> list[TaskRecord]:
        """Record intents to create tasks (registry + pending journal) before calling the CRM.

        Idempotent per key: a key already ``open`` or ``intent`` is left as it is and returned
        so the caller can see a task exists or may exist (recover it, never create it twice);
        a ``closed`` or ``failed`` key becomes a fresh intent. One statement per table.
        """
        if not creates:
            return []
        # One transaction: an intent never exists without its journal entry, nor the reverse.
        with self._begin() as conn:
            return self._intents(conn, run_id, stream, creates, self._clock())[1]

    def _intents(
        self,
        conn: sa.Connection,
        run_id: str,
        stream: str,
        creates: Sequence[TaskCreate],
        now: datetime,
        journal_first: Sequence[tuple[Any, ...]] = (),
    ) -> tuple[list[int], list[TaskRecord]]:
        """Record task intents in ``conn`` (see :meth:`task_intents`).

        ``journal_first``: other journal rows (as :meth:`_insert_rows` takes) to journal in the
        same statement, ahead of the creates. Returns their ids and the creates' records.
        """
        keys = [self._scoped(c.key) for c in creates]
        stored_stream = self._scoped(stream)
        existing: dict[str, TaskRecord] = {}
        if keys:
            rows = conn.execute(self._query("tasks.by_keys", _q_by_keys), {"keys": keys})
            existing = {row.key: self._task(row) for row in rows}  # by stored key
        fresh = [(key, create) for key, create in zip(keys, creates, strict=True)
                 if key not in existing or not existing[key].is_open]
        journal_ids = self._insert_rows(conn, run_id, [*journal_first, *(
            (stored_stream, c.object_type, c.contact_id, "task_create", c.spec.purpose,
             None, {"subject": c.spec.subject, "due": c.spec.due,
                    "priority": c.spec.priority}, key, None)
            for key, c in fresh
        )], now)
        first_ids, journal_ids = journal_ids[:len(journal_first)], journal_ids[len(journal_first):]
        constants = {"stream": stored_stream, "state": "intent", "task_id": None,
                     "run_id": run_id, "updated_at": now}
        inserts, renewals = [], []
        for (key, create), journal_id in zip(fresh, journal_ids, strict=True):
            row = (create.contact_id, create.spec.purpose, journal_id)
            if key in existing:  # closed or failed before
                renewals.append((*row, key))
            else:
                inserts.append((key, *row))
        if inserts:
            self._bulk("tasks.insert", _insert).execute(conn, inserts, constants)
        if renewals:
            self._bulk("tasks.renew", _renew).execute(conn, renewals, constants)
        # What was written is known: no need to read it back.
        for key, create in fresh:
            existing[key] = TaskRecord(
                key=create.key, record_id=create.contact_id, stream=stream,
                purpose=create.spec.purpose, state="intent", task_id=None, run_id=run_id,
                updated_at=now)
        return first_ids, [existing[k] for k in keys]

    def task_created(self, key: str, task_id: str) -> None:
        """Record the CRM's id of a created task: the task is now open; its journal applied."""
        self.tasks_created({key: task_id})

    def tasks_created(self, task_ids: Mapping[str, str]) -> None:
        """Record created tasks (``{key: CRM task id}``) in one transaction; see task_created."""
        if not task_ids:
            return
        task_ids = {self._scoped(key): tid for key, tid in task_ids.items()}
        now = self._clock()
        settled = {"state": "open", "updated_at": now}
        with self._begin() as conn:
            journal_ids = dict(conn.execute(
                self._query("tasks.journal_ids", _q_journal_ids), {"keys": list(task_ids)}).all())
            self._bulk("tasks.opened", _opened).execute(
                conn, [(tid, key) for key, tid in task_ids.items()], settled)
            journal_rows = [(tid, journal_ids[key]) for key, tid in task_ids.items()
                            if journal_ids.get(key) is not None]
            if journal_rows:
                self._bulk("journal.task_applied", _journal_applied).execute(
                    conn, journal_rows, {"state": "applied", "updated_at": now})

    def task_failed(self, key: str, code: str, message: str) -> None:
        """Record that a task create did not happen; the purpose will be planned again."""
        key = self._scoped(key)
        now = self._clock()
        with self._begin() as conn:
            journal_id = conn.execute(
                sa.select(_tasks.c.journal_id).where(_tasks.c.key == key)
            ).scalar_one_or_none()
            conn.execute(_tasks.update().where(_tasks.c.key == key, _tasks.c.state == "intent")
                         .values(state="failed", updated_at=now))
            if journal_id is not None:
                conn.execute(_journal.update().where(_journal.c.id == journal_id).values(
                    state="rejected", error_code=code, error_message=message, updated_at=now))

    def journal_task_closes(
        self, run_id: str, stream: str, closes: Sequence[TaskClose]
    ) -> list[int]:
        """Journal task closes as ``pending`` before asking the CRM to close them."""
        return self.journal_pending(run_id, [
            PendingWrite(stream, c.object_type, c.contact_id, "task_close", None,
                         {"state": "open"}, {"state": "closed"}, task_key=c.key, task_id=c.task_id)
            for c in closes
        ])

    def task_closed(self, key: str) -> None:
        """Record that a task was closed; settles its pending close in the journal."""
        key = self._scoped(key)
        now = self._clock()
        with self._begin() as conn:
            conn.execute(_tasks.update().where(_tasks.c.key == key)
                         .values(state="closed", updated_at=now))
            conn.execute(_journal.update().where(
                _journal.c.task_key == key, _journal.c.kind == "task_close",
                _journal.c.state == "pending",
            ).values(state="applied", updated_at=now))

    def pending_task_intents(self, stream: str) -> list[TaskRecord]:
        """Return task creates a stopped run left unsettled (the CRM may or may not have them)."""
        with self._connect() as conn:
            rows = conn.execute(
                sa.select(*_RECORD_COLUMNS)
                .where(_tasks.c.stream == self._scoped(stream), _tasks.c.state == "intent")
                .order_by(_tasks.c.key)
            ).all()
        return [self._task(row) for row in rows]

    def _task(self, row: Sequence[Any]) -> TaskRecord:
        """A registry row (:data:`_RECORD_COLUMNS`) with its bare key and stream."""
        if self._connection == DEFAULT_SCOPE:  # stored bare: the sync's every page
            return TaskRecord(*row)
        key, record_id, stream, *rest = row
        return TaskRecord(self._unscoped(key), record_id, self._unscoped(stream), *rest)

