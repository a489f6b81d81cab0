"""Every contact's current decision: what the funnel report counts, and what de-duplicates reads.

Ids and outputs only (status, miss type, score, since when, which rule set, the CRM's
modification stamp): never names, emails or any other fact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from crmsync.state.base import StoreBase
from crmsync.state.bulk import Bulk, dialect_insert, one_of
from crmsync.state.records import ContactRow, ContactState
from crmsync.state.schema import _contacts, _journal, _tasks

#: Columns a new decision overwrites; ``first_run_id`` keeps the run that first saw the contact.
_UPDATED = ("status", "miss_type", "score", "status_since", "ruleset_hash", "modified_at",
            "owner_id", "lead_source", "run_id", "updated_at")
#: A saved row's own columns, in the order of ``save_contact_states``' rows; the others are the
#: same for the whole batch.
_SAVED = ("record_id", "status", "miss_type", "score", "status_since", "ruleset_hash",
          "modified_at", "owner_id", "lead_source", "stream", "run_id", "first_run_id",
          "updated_at")
#: The columns of a :class:`ContactState` after its stream, in its fields' order (rows become
#: states by position; the stream is the one asked for).
_STATE_COLUMNS = tuple(_contacts.c[f.name] for f in fields(ContactState) if f.name != "stream")
assert _STATE_COLUMNS[0].name == "record_id"  # _states keys its rows by their first value


def _q_states(dialect: Dialect) -> sa.Executable:
    return sa.select(*_STATE_COLUMNS).where(_contacts.c.stream == sa.bindparam("stream"),
                                            one_of(dialect, _contacts.c.record_id, "ids"))


def _q_forget(dialect: Dialect) -> sa.Executable:
    return _contacts.delete().where(_contacts.c.stream == sa.bindparam("stream"),
                                    one_of(dialect, _contacts.c.record_id, "ids"))


def _upsert(dialect: Dialect) -> Bulk:
    insert = dialect_insert(dialect)
    statement = insert(_contacts)
    statement = statement.on_conflict_do_update(
        index_elements=[_contacts.c.stream, _contacts.c.record_id],
        set_={name: statement.excluded[name] for name in _UPDATED},
    )
    return Bulk(dialect, _contacts, statement, _SAVED)


class ContactStates(StoreBase):
    """The current-state table, one row per (stream, record)."""

    def contact_states(self, stream: str, record_ids: Iterable[str]) -> dict[str, ContactState]:
        """Return the stored state of some records of ``stream``, by record id."""
        ids = list(record_ids)
        if not ids:
            return {}
        with self._connect() as conn:
            return self._states(conn, stream, ids)

    def contact_state_any_stream(self, record_id: str) -> list[ContactState]:
        """Return the stored state of one record id in every stream of this connection (a CRM
        id names one record, but the caller need not know whether it is a Lead or a Contact)."""
        query = sa.select(_contacts.c.stream, *_STATE_COLUMNS).where(
            _contacts.c.record_id == record_id, self._in_scope(_contacts.c.stream))
        with self._connect() as conn:
            return [ContactState(self._unscoped(row[0]), *row[1:])
                    for row in conn.execute(query)]

    def _states(self, conn: sa.Connection, stream: str,
                ids: Sequence[str]) -> dict[str, ContactState]:
        rows = conn.execute(self._query("contacts.states", _q_states),
                            {"stream": self._scoped(stream), "ids": ids}).all()
        # The stream is the one asked for (bare), so it is not read back.
        # Plain tuples: the record id leads the columns (a Row's by-name lookup costs more).
        return {row[0]: ContactState(stream, *row) for row in rows}

    def save_contact_states(
        self, run_id: str, stream: str, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Insert or update decisions, one statement per batch.

        Each row holds ``record_id``, ``status``, ``miss_type``, ``score``, ``status_since``,
        ``ruleset_hash`` and ``modified_at``, and may hold ``owner_id`` and ``lead_source``.
        """
        if not rows:
            return
        with self._begin() as conn:
            self._save(conn, run_id, stream, rows, self._clock())

    def forget_contact_states(self, stream: str, record_ids: Iterable[str]) -> None:
        """Delete the stored decisions of some records: the CRM holds none of crmsync's for them
        (an undo put back their values from before crmsync's first decision)."""
        ids = list(record_ids)
        if not ids:
            return
        with self._begin() as conn:
            conn.execute(self._query("contacts.forget", _q_forget),
                         {"stream": self._scoped(stream), "ids": ids})

    def _save(self, conn: sa.Connection, run_id: str, stream: str,
              rows: Sequence[Mapping[str, Any]], now: datetime) -> None:
        constants = {"stream": self._scoped(stream), "run_id": run_id, "first_run_id": run_id,
                     "updated_at": now}
        values = [(row["record_id"], row["status"], row["miss_type"], row["score"],
                   row["status_since"], row["ruleset_hash"], row["modified_at"],
                   row.get("owner_id"), row.get("lead_source")) for row in rows]
        self._bulk("contacts.upsert", _upsert).execute(conn, values, constants)

    def status_counts(self, stream: str | None = None) -> Counter[str]:
        """Return how many contacts hold each status now (one stream, or all)."""
        return self._count(_contacts.c.status, stream)

    def miss_type_counts(self, stream: str | None = None) -> Counter[str]:
        """Return how many contacts hold each miss type now (one stream, or all)."""
        return self._count(_contacts.c.miss_type, stream)

    def report_rows(self) -> list[ContactRow]:
        """Return every contact's current decision with its owner and lead source (the report).

        One query; the report aggregates in memory (owners, sources, time in stage, stuck).
        """
        c = _contacts.c
        query = sa.select(c.stream, c.record_id, c.status, c.miss_type, c.score, c.status_since,
                          c.owner_id, c.lead_source).where(self._in_scope(c.stream))
        with self._connect() as conn:
            return [ContactRow(self._unscoped(r[0]), *r[1:]) for r in conn.execute(query)]

    def open_tasks_by_owner(
            self, today: date | None = None) -> list[tuple[str | None, str, int, int]]:
        """Return ``(owner id, purpose, open tasks, overdue)``: crmsync's open follow-ups per rep.

        The task's contact's owner (tasks are assigned to it); ``None`` when the contact has no
        owner or no decision stored. A task is overdue when the due date crmsync gave it (kept
        in its create's journal entry) is before ``today``; with no ``today``, none is. One
        grouped query.
        """
        t, c = _tasks.c, _contacts.c
        # ISO dates compare as text; the journal keeps the due date the create was sent with.
        due = _journal.c.after["due"].as_string()
        overdue = (sa.func.sum(sa.case((due < today.isoformat(), 1), else_=0))
                   if today is not None else sa.literal(0))
        query = (sa.select(c.owner_id, t.purpose, sa.func.count(), overdue)
                 .select_from(_tasks.outerjoin(_contacts, sa.and_(
                     c.stream == t.stream, c.record_id == t.record_id))
                     .outerjoin(_journal, _journal.c.id == t.journal_id))
                 .where(t.state == "open", self._in_scope(t.stream))
                 .group_by(c.owner_id, t.purpose))
        with self._connect() as conn:
            return [(owner, purpose, int(n), int(late or 0))
                    for owner, purpose, n, late in conn.execute(query)]

    def contacts_first_seen(self, run_ids: Iterable[str]) -> int:
        """Return how many contacts were first decided by one of ``run_ids`` (new contacts)."""
        ids = list(run_ids)
        if not ids:
            return 0
        with self._connect() as conn:
            return int(conn.execute(
                sa.select(sa.func.count()).select_from(_contacts)
                .where(_contacts.c.first_run_id.in_(ids))
            ).scalar_one())

    def _count(self, column: sa.Column[Any], stream: str | None) -> Counter[str]:
        query = sa.select(column, sa.func.count()).group_by(column)
        query = query.where(_contacts.c.stream == self._scoped(stream) if stream is not None
                            else self._in_scope(_contacts.c.stream))
        with self._connect() as conn:
            return Counter({str(value): int(n) for value, n in conn.execute(query)})
