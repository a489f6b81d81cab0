"""The task registry: one row per deterministic task key, intent → open → closed."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from crmsync.model import TaskClose, TaskCreate
from crmsync.state.journal import Journal, _insert_pending
from crmsync.state.records import PendingWrite, TaskRecord
from crmsync.state.schema import _journal, _tasks


class TaskRegistry(Journal):
    """crmsync's tasks, by key: what is open, what a stopped run left half-done."""

    def task_lookup(self, record_id: str, key: str) -> TaskRecord | None:
        """Return the registry row of a task key for a record, or ``None``."""
        with self._connect() as conn:
            row = conn.execute(
                _tasks.select().where(_tasks.c.key == self._scoped(key),
                                      _tasks.c.record_id == record_id)
            ).first()
        return self._task(row) if row else None

    def open_tasks(self, record_ids: Iterable[str]) -> list[TaskRecord]:
        """Return the open (or possibly open) tasks of some records."""
        ids = list(record_ids)
        if not ids:
            return []
        with self._connect() as conn:
            rows = conn.execute(
                _tasks.select().where(_tasks.c.record_id.in_(ids),
                                      _tasks.c.state.in_(("intent", "open")),
                                      self._in_scope(_tasks.c.key))
            ).all()
        return [self._task(row) for row in rows]

    def closed_task_counts(self, record_ids: Iterable[str]) -> dict[tuple[str, str], int]:
        """Return ``{(record id, purpose): tasks closed so far}`` (the next task's generation)."""
        ids = list(record_ids)
        if not ids:
            return {}
        with self._connect() as conn:
            rows = conn.execute(
                sa.select(_tasks.c.record_id, _tasks.c.purpose, sa.func.count())
                .where(_tasks.c.record_id.in_(ids), _tasks.c.state == "closed",
                       self._in_scope(_tasks.c.key))
                .group_by(_tasks.c.record_id, _tasks.c.purpose)
            ).all()
        return {(row[0], row[1]): int(row[2]) for row in rows}

    def task_intent(self, run_id: str, stream: str, create: TaskCreate) -> TaskRecord:
        """Record the intent to create one task; see :meth:`task_intents`."""
        return self.task_intents(run_id, stream, [create])[0]

    def task_intents(
        self, run_id: str, stream: str, creates: Sequence[TaskCreate]
    ) -> list[TaskRecord]:
        """Record intents to create tasks (registry + pending journal) before calling the CRM.

        Idempotent per key: a key already ``open`` or ``intent`` is left as it is and returned
        so the caller can see a task exists or may exist (recover it, never create it twice);
        a ``closed`` or ``failed`` key becomes a fresh intent.
        """
        if not creates:
            return []
        keys = [self._scoped(c.key) for c in creates]
        scoped = dict(zip(keys, creates, strict=True))
        stream = self._scoped(stream)
        now = self._clock()
        # One transaction: an intent never exists without its journal entry, nor the reverse.
        with self._begin() as conn:
            existing = {
                row.key: row.state
                for row in conn.execute(
                    sa.select(_tasks.c.key, _tasks.c.state).where(_tasks.c.key.in_(keys))
                )
            }
            fresh = [k for k in keys if existing.get(k) not in ("intent", "open")]
            journal_ids = _insert_pending(conn, run_id, [
                PendingWrite(stream, c.object_type, c.contact_id, "task_create", c.spec.purpose,
                             None, {"subject": c.spec.subject, "due": c.spec.due,
                                    "priority": c.spec.priority}, task_key=k)
                for k, c in ((k, scoped[k]) for k in fresh)
            ], now)
            inserts = []
            for key, journal_id in zip(fresh, journal_ids, strict=True):
                create = scoped[key]
                values = {"record_id": create.contact_id, "stream": stream,
                          "purpose": create.spec.purpose, "state": "intent", "task_id": None,
                          "run_id": run_id, "journal_id": journal_id, "updated_at": now}
                if key in existing:  # closed or failed before: rare, one by one
                    conn.execute(_tasks.update().where(_tasks.c.key == key).values(**values))
                else:
                    inserts.append({"key": key, **values})
            if inserts:
                conn.execute(_tasks.insert(), inserts)
            rows = conn.execute(_tasks.select().where(_tasks.c.key.in_(keys))).all()
        by_key = {row.key: self._task(row) for row in rows}
        return [by_key[k] for k in keys]

    def task_created(self, key: str, task_id: str) -> None:
        """Record the CRM's id of a created task: the task is now open; its journal applied."""
        self.tasks_created({key: task_id})

    def tasks_created(self, task_ids: Mapping[str, str]) -> None:
        """Record created tasks (``{key: CRM task id}``) in one transaction; see task_created."""
        if not task_ids:
            return
        task_ids = {self._scoped(key): tid for key, tid in task_ids.items()}
        now = self._clock()
        with self._begin() as conn:
            journal_ids = dict(conn.execute(
                sa.select(_tasks.c.key, _tasks.c.journal_id).where(_tasks.c.key.in_(list(task_ids)))
            ).all())
            conn.execute(
                _tasks.update().where(_tasks.c.key == sa.bindparam("k"))
                .values(state="open", task_id=sa.bindparam("tid"), updated_at=now),
                [{"k": key, "tid": tid} for key, tid in task_ids.items()],
            )
            journal_rows = [{"jid": journal_ids[key], "tid": tid}
                            for key, tid in task_ids.items() if journal_ids.get(key) is not None]
            if journal_rows:
                conn.execute(
                    _journal.update().where(_journal.c.id == sa.bindparam("jid"))
                    .values(state="applied", task_id=sa.bindparam("tid"), updated_at=now),
                    journal_rows,
                )

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
                _tasks.select().where(_tasks.c.stream == self._scoped(stream),
                                      _tasks.c.state == "intent")
                .order_by(_tasks.c.key)
            ).all()
        return [self._task(row) for row in rows]

    def _task(self, row: sa.Row[Any]) -> TaskRecord:
        """A registry row with its bare key and stream."""
        return dataclasses.replace(_task(row), key=self._unscoped(row.key),
                                   stream=self._unscoped(row.stream))


def _task(row: sa.Row[Any]) -> TaskRecord:
    return TaskRecord(key=row.key, record_id=row.record_id, stream=row.stream,
                      purpose=row.purpose, state=row.state, task_id=row.task_id,
                      run_id=row.run_id, updated_at=row.updated_at)
