"""What every part of the state store shares: the engine, the clock, and failure translation."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import IntegrityError

from crmsync.state.bulk import Bulk
from crmsync.state.errors import StoreLost, store_error
from crmsync.state.schema import _utcnow


class StoreBase:
    """The engine, the bookkeeping clock, and transactions that fail as :class:`StateError`.

    Args:
        engine: An engine whose tables exist.
        clock: Source of bookkeeping timestamps (tests inject a fixed one).
        shown: The store's URL as messages may show it (no password).
        file: The SQLite file, when the store is one: checked before every write, because
            SQLite keeps writing to a deleted file without a word, and everything written
            after the deletion would be lost.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = _utcnow,
        shown: str = "",
        file: Path | None = None,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._shown = shown or engine.url.render_as_string(hide_password=True)
        self._file = file
        self._file_id = _identity(file) if file is not None else None
        self._bulks: dict[str, Bulk] = {}
        self._queries: dict[str, sa.Executable] = {}

    def _bulk(self, name: str, build: Callable[[Dialect], Bulk]) -> Bulk:
        """Return the :class:`Bulk` statement ``name``, built for this engine on first use."""
        bulk = self._bulks.get(name)
        if bulk is None:
            # Two threads may both build it: identical, and the last one wins; no lock needed.
            bulk = self._bulks[name] = build(self._engine.dialect)
        return bulk

    def _query(self, name: str, build: Callable[[Dialect], sa.Executable]) -> sa.Executable:
        """Return the statement ``name``, built for this engine's dialect on first use."""
        query = self._queries.get(name)
        if query is None:
            query = self._queries[name] = build(self._engine.dialect)
        return query

    @contextmanager
    def _begin(self) -> Iterator[sa.Connection]:
        """One write transaction; database failures become :class:`StateError`."""
        self.check_file()
        try:
            with self._engine.begin() as conn:
                yield conn
        except IntegrityError:
            raise  # callers race on purpose (run ids, leases) and handle it
        except sa.exc.DBAPIError as exc:  # the database failed, not our statement
            raise store_error(exc, self._shown) from None

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        """One read-only connection; database failures become :class:`StateError`."""
        try:
            with self._engine.connect() as conn:
                yield conn
        except sa.exc.DBAPIError as exc:  # the database failed, not our statement
            raise store_error(exc, self._shown) from None

    def check_file(self) -> None:
        """Raise :class:`StoreLost` if the SQLite file was deleted or replaced since open."""
        if self._file is None:
            return
        if _identity(self._file) != self._file_id:
            raise StoreLost(
                f"state store {self._shown} was deleted or replaced while this run had it open; "
                "stopped so that nothing more is written where no later run can see it. Run "
                "again: a new store starts afresh (tasks already in the CRM are found, not "
                "duplicated)"
            )


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino)
