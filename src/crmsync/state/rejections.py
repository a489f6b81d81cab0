"""Rejected records: what the CRM refused, retried by the next run until settled."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from crmsync.state.base import StoreBase
from crmsync.state.bulk import Bulk, dialect_insert, one_of
from crmsync.state.schema import _rejections


def _q_resolve(dialect: Dialect) -> sa.Executable:
    return _rejections.update().where(
        _rejections.c.stream == sa.bindparam("b_stream"),
        one_of(dialect, _rejections.c.record_id, "ids"),
        _rejections.c.resolved.is_(False),
    ).values(resolved=True, updated_at=sa.bindparam("now"))


#: A rejection's own columns, in the order of ``_record_rejections``' rows.
_REJECTED = ("record_id", "error_code", "message", "stream", "run_id", "attempts", "resolved",
             "updated_at")


def _upsert(dialect: Dialect) -> Bulk:
    insert = dialect_insert(dialect)
    statement = insert(_rejections)
    statement = statement.on_conflict_do_update(
        index_elements=[_rejections.c.stream, _rejections.c.record_id],
        set_={"run_id": statement.excluded.run_id,
              "error_code": statement.excluded.error_code,
              "message": statement.excluded.message, "resolved": statement.excluded.resolved,
              # excluded.attempts is 1: no literal, so every parameter is a row's value
              "attempts": _rejections.c.attempts + statement.excluded.attempts,
              "updated_at": statement.excluded.updated_at},
    )
    return Bulk(dialect, _rejections, statement, _REJECTED)


class Rejections(StoreBase):
    """Per-record rejections, one row per (stream, record)."""

    def record_rejection(
        self, stream: str, record_id: str, run_id: str, code: str, message: str
    ) -> None:
        """Remember a record the CRM rejected, so the next run retries it."""
        now = self._clock()
        stream = self._scoped(stream)
        key = (_rejections.c.stream == stream) & (_rejections.c.record_id == record_id)
        with self._begin() as conn:
            done = conn.execute(_rejections.update().where(key).values(
                run_id=run_id, error_code=code, message=message, resolved=False,
                attempts=_rejections.c.attempts + 1, updated_at=now,
            ))
            if done.rowcount == 0:
                conn.execute(_rejections.insert().values(
                    stream=stream, record_id=record_id, run_id=run_id, error_code=code,
                    message=message, attempts=1, resolved=False, updated_at=now,
                ))

    def _record_rejections(self, conn: sa.Connection, stream: str, run_id: str,
                           rows: Sequence[tuple[str, str, str]], now: datetime) -> None:
        """Remember rejected records ``(record_id, code, message)``: one statement."""
        self._bulk("rejections.upsert", _upsert).execute(
            conn, rows, {"stream": self._scoped(stream), "run_id": run_id, "attempts": 1,
                         "resolved": False, "updated_at": now})

    def resolve_rejection(self, stream: str, record_id: str) -> None:
        """Mark one rejected record as written successfully since."""
        self.resolve_rejections(stream, [record_id])

    def resolve_rejections(self, stream: str, record_ids: Iterable[str]) -> None:
        """Mark rejected records as written successfully since (unknown ids are ignored)."""
        ids = list(record_ids)
        if not ids:
            return
        with self._begin() as conn:
            self._resolve(conn, stream, ids, self._clock())

    def _resolve(self, conn: sa.Connection, stream: str, ids: Sequence[str],
                 now: datetime) -> None:
        conn.execute(self._query("rejections.resolve", _q_resolve),
                     {"b_stream": self._scoped(stream), "ids": list(ids), "now": now})

    def rejected_ids(self, stream: str) -> list[str]:
        """Return the ids of a stream's unresolved rejected records, sorted."""
        with self._connect() as conn:
            return list(conn.execute(
                sa.select(_rejections.c.record_id).where(
                    _rejections.c.stream == self._scoped(stream),
                    _rejections.c.resolved.is_(False),
                ).order_by(_rejections.c.record_id)
            ).scalars())
