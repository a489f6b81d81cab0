"""The :class:`StateStore`: every part of the state, behind one object opened from a URL."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from crmsync.state.cursors import Cursors
from crmsync.state.errors import StateError, shown_url, store_error
from crmsync.state.leases import Leases
from crmsync.state.ledger import Ledger
from crmsync.state.migrate import upgrade
from crmsync.state.pages import Pages
from crmsync.state.schema import (
    SCHEMA_VERSION,
    _dumps,
    _ensure_schema_version,
    _loads,
    _meta,
    _sqlite_pragmas,
    _utcnow,
)
from crmsync.state.shadow import ShadowLedger
from crmsync.state.shards import Shards
from crmsync.state.slots import SchedulePauses, ScheduleSlots

#: PostgreSQL advisory lock key serialising schema creation and upgrades (any constant works;
#: this one spells "crmsync" on a phone keypad).
_SCHEMA_LOCK_KEY = 2767962


@contextmanager
def _schema_lock(engine: sa.Engine) -> Iterator[None]:
    """Let one process at a time create or upgrade the schema of a shared PostgreSQL store.

    Workers starting together on a fresh store would otherwise race in ``CREATE TABLE`` (a
    duplicate ``pg_type`` entry) or insert the schema version twice. SQLite serialises its
    writers by itself.
    """
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": _SCHEMA_LOCK_KEY})
            conn.commit()


#: What to install for each database driver a state URL may name.
_DRIVER_HINTS = {"postgresql": "pip install 'crmsync[postgres]'"}


class StateStore(Ledger, Cursors, Pages, Leases, ScheduleSlots, SchedulePauses, Shards,
                 ShadowLedger):
    """Durable state of crmsync runs; one instance per process, safe to share between threads.

    Every method is one short transaction; methods that take lists write them with one
    ``executemany`` so a batch of 100-200 records costs one round trip and one commit. Every
    database failure surfaces as a :class:`~crmsync.state.errors.StateError` with its exit code.
    """

    @classmethod
    def open(
        cls, url: str, *, clock: Callable[[], datetime] = _utcnow, connection: str = "default",
    ) -> StateStore:
        """Open (creating when needed) the store at a SQLAlchemy URL.

        Args:
            url: ``sqlite:///path/state.db`` (parent folders are created), ``sqlite://`` for an
                in-memory store, or ``postgresql+psycopg://user@host/db``.
            clock: Source of bookkeeping timestamps (tests inject a fixed one).
            connection: The connection whose state it reads and writes (see :meth:`scoped`).

        Raises:
            StateError: The URL is invalid, the driver missing, the database unreachable or
                not a crmsync store, or its schema newer than this crmsync.
        """
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise StateError("state URL is not a valid SQLAlchemy URL") from None
        shown = shown_url(url)
        kwargs: dict[str, Any] = {"json_serializer": _dumps, "json_deserializer": _loads}
        file: Path | None = None
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            if parsed.database in (None, "", ":memory:"):
                # One shared connection, or every checkout would see an empty database.
                kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
            else:
                file = Path(parsed.database).expanduser()
                file.parent.mkdir(parents=True, exist_ok=True)
                kwargs["connect_args"] = {"timeout": 30}
        try:
            engine = sa.create_engine(parsed, **kwargs)
        except ImportError as exc:
            hint = _DRIVER_HINTS.get(backend)
            raise StateError(
                f"cannot use state store {shown}: its database driver is not installed"
                + (f"; {hint}" if hint else f" ({exc.name or type(exc).__name__})")
            ) from None
        except ArgumentError as exc:
            raise StateError(f"cannot use state store {shown}: {type(exc).__name__}") from None
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        try:
            with _schema_lock(engine):
                _meta.create_all(engine)
                version = _ensure_schema_version(engine)
                if version < SCHEMA_VERSION:
                    version = upgrade(engine, version)
        except sa.exc.DBAPIError as exc:
            engine.dispose()
            error = store_error(exc, shown)
            if type(error).__name__ == "StoreUnavailable":
                # Nothing had started: an unreachable store at open is a setup problem to show
                # plainly, yet still one a scheduler may retry (exit 4).
                error = type(error)(f"cannot open state store {shown}: "
                                    f"{str(exc.orig or exc).strip().splitlines()[0]}")
            raise error from None
        if version > SCHEMA_VERSION:
            engine.dispose()
            raise StateError(
                f"state store {shown} has schema version {version}; this crmsync "
                f"understands up to {SCHEMA_VERSION}: upgrade crmsync"
            )
        return cls(engine, clock=clock, shown=shown, file=file, connection=connection)

    def scoped(self, connection: str) -> StateStore:
        """Return a view of the same database for another connection (connections shared).

        Closing either closes both: the view shares this store's engine.
        """
        view = copy.copy(self)
        view._connection = connection
        return view

    @property
    def shown_url(self) -> str:
        """The store's URL as messages show it (password and credential parameters hidden)."""
        return self._shown

    def close(self) -> None:
        """Release every connection."""
        self._engine.dispose()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
