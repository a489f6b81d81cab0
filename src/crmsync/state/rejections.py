"""Rejected records: what the CRM refused, retried by the next run until settled."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from crmsync.state.base import StoreBase
from crmsync.state.schema import _rejections

_RESOLVE = _rejections.update().where(
    _rejections.c.stream == sa.bindparam("b_stream"),
    _rejections.c.record_id.in_(sa.bindparam("ids", expanding=True)),
    _rejections.c.resolved.is_(False),
).values(resolved=True, updated_at=sa.bindparam("now"))


class Rejections(StoreBase):
    """Per-record rejections, one row per (stream, record)."""

    def record_rejection(
        self, stream: str, record_id: str, run_id: str, code: str, message: str
    ) -> None:
        """Remember a record the CRM rejected, so the next run retries it."""
        now = self._clock()
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

    def resolve_rejection(self, stream: str, record_id: str) -> None:
        """Mark one rejected record as written successfully since."""
        self.resolve_rejections(stream, [record_id])

    def resolve_rejections(self, stream: str, record_ids: Iterable[str]) -> None:
        """Mark rejected records as written successfully since (unknown ids are ignored)."""
        ids = list(record_ids)
        if not ids:
            return
        with self._begin() as conn:
            conn.execute(_RESOLVE, {"b_stream": stream, "ids": ids, "now": self._clock()})

    def rejected_ids(self, stream: str) -> list[str]:
        """Return the ids of a stream's unresolved rejected records, sorted."""
        with self._connect() as conn:
            return list(conn.execute(
                sa.select(_rejections.c.record_id).where(
                    _rejections.c.stream == stream, _rejections.c.resolved.is_(False)
                ).order_by(_rejections.c.record_id)
            ).scalars())
