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

#: The connection whose keys are stored as they are (stores written before connections).
DEFAULT_SCOPE = "default"
#: Between a connection's name and a key; connection names and stream names never hold one.
SCOPE_SEP = "/"


class StoreBase:
    """The engine, the bookkeeping clock, and transactions that fail as :class:`StateError`.

    Args:
        engine: An engine whose tables exist.
        clock: Source of bookkeeping timestamps (tests inject a fixed one).
        shown: The store's URL as messages may show it (no password).
        file: The SQLite file, when the store is one: checked before every write, because
            SQLite keeps writing to a deleted file without a word, and everything written
            after the deletion would be lost.
        connection: The connection this store object reads and writes for. Several
            connections share one database: every key that names a stream, a task or a lease
            is stored as ``"{connection}/{key}"`` (the ``default`` connection's keys are stored
            bare, so stores written before connections existed need no migration), and every
            query is limited to the connection's keys. Returned records carry the bare keys.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], datetime] = _utcnow,
        shown: str = "",
        file: Path | None = None,
        connection: str = DEFAULT_SCOPE,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._shown = shown or engine.url.render_as_string(hide_password=True)
        self._file = file
        self._file_id = _identity(file) if file is not None else None
        self._connection = connection
        # Statements built once per dialect; shared with scoped() views (copies of this
        # object), so a statement that depends on the connection names it in its cache key.
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

    @property
    def connection(self) -> str:
        """The connection whose state this object reads and writes."""
        return self._connection

    def _scoped(self, key: str) -> str:
        """Return how ``key`` (a stream, task key or lease name) is stored for this connection."""
        return key if self._connection == DEFAULT_SCOPE else f"{self._connection}{SCOPE_SEP}{key}"

    def _unscoped(self, key: str) -> str:
        """Return the bare key of a stored one (the inverse of :meth:`_scoped`)."""
        prefix = f"{self._connection}{SCOPE_SEP}"
        if self._connection != DEFAULT_SCOPE and key.startswith(prefix):
            return key[len(prefix):]
        return key

    def _in_scope(self, column: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
        """A filter keeping the rows whose ``column`` (a stored key) is this connection's."""
        if self._connection == DEFAULT_SCOPE:
            return sa.not_(column.contains(SCOPE_SEP, autoescape=True))
        return column.startswith(f"{self._connection}{SCOPE_SEP}", autoescape=True)

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
