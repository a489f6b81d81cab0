"""Where each stream's incremental read starts next time, and what decided it last.

A cursor alone cannot tell that a rule edit left every unchanged contact with the old rule set's
decision; the stream's *stamp* (the rule set and field map of its last complete pass) can.
"""

from __future__ import annotations

import sqlalchemy as sa

from crmsync.model import Cursor
from crmsync.state.base import StoreBase
from crmsync.state.records import StreamStamp
from crmsync.state.schema import _cursors, _stream_stamps

_UPDATE_CURSOR = _cursors.update().where(_cursors.c.stream == sa.bindparam("b_stream"))


class Cursors(StoreBase):
    """Per-stream cursors, committed only once a page's writes are journaled."""

    def get_cursor(self, stream: str) -> Cursor:
        """Return the committed cursor of a stream (an empty one before its first run)."""
        with self._connect() as conn:
            row = conn.execute(
                _cursors.select().where(_cursors.c.stream == self._scoped(stream))).first()
        if row is None:
            return Cursor(stream)
        return Cursor(stream, row.value, frozenset(row.ids_at_value))

    def commit_cursor(self, cursor: Cursor) -> None:
        """Durably store a stream's cursor, in its own transaction."""
        # Statements built once, values as parameters: a sync commits a cursor after every
        # page, and a fresh ``.values(...)`` statement costs a cache-key walk each time.
        values = {"value": cursor.value, "ids_at_value": sorted(cursor.ids_at_value),
                  "updated_at": self._clock()}
        stream = self._scoped(cursor.stream)
        with self._begin() as conn:
            done = conn.execute(_UPDATE_CURSOR, {"b_stream": stream, **values})
            if done.rowcount == 0:
                conn.execute(_cursors.insert(), {"stream": stream, **values})

    def stream_stamp(self, stream: str) -> StreamStamp | None:
        """Return the rule set and field map that last decided every contact of ``stream``."""
        with self._connect() as conn:
            row = conn.execute(
                _stream_stamps.select().where(_stream_stamps.c.stream == self._scoped(stream))
            ).first()
        return StreamStamp(**{**row._asdict(), "stream": stream}) if row else None

    def set_stream_stamp(
        self, stream: str, *, ruleset_version: str, ruleset_hash: str, fieldmap_hash: str,
        run_id: str,
    ) -> None:
        """Record that ``run_id`` decided every contact of ``stream`` with these files."""
        values = {"ruleset_version": ruleset_version, "ruleset_hash": ruleset_hash,
                  "fieldmap_hash": fieldmap_hash, "run_id": run_id, "updated_at": self._clock()}
        stream = self._scoped(stream)
        with self._begin() as conn:
            done = conn.execute(
                _stream_stamps.update().where(_stream_stamps.c.stream == stream).values(**values)
            )
            if done.rowcount == 0:
                conn.execute(_stream_stamps.insert().values(stream=stream, **values))
