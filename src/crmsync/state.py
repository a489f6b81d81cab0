"""The state store: run ledger, cursors, write journal, task registry and rejected records.

One SQLAlchemy Core schema serves SQLite (the default, a file in WAL mode) and PostgreSQL (the
shared store of sharded workers). Tables are created on open; a ``schema_version`` row makes
future migrations possible and refuses a store written by a newer crmsync.

Crash safety rests on ordering, not on the CRM: every write is journaled ``pending`` before the
CRM call and settled ``applied``/``rejected`` after, and every task create is recorded as an
``intent`` before the call, so a run killed at any point leaves evidence the next run settles.
All timestamps are timezone-aware UTC; naive datetimes are refused.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError
from sqlalchemy.pool import StaticPool

from crmsync.errors import CrmsyncError, ExitCode, RunInProgress
from crmsync.model import Cursor, TaskClose, TaskCreate

#: The schema this code writes; bump it with a migration when a table changes.
SCHEMA_VERSION = 1

RUN_MODES = ("plan", "run", "full", "undo", "demo")
RUN_STATUSES = ("running", "ok", "partial", "failed", "aborted")
JOURNAL_KINDS = ("fields", "field", "task_create", "task_close")
TASK_STATES = ("intent", "open", "closed", "failed")


class StateError(CrmsyncError):
    """The state store cannot be opened or read safely; crmsync refuses to guess."""

    exit_code = ExitCode.BAD_CONFIG


# -- rows returned ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run in the ledger."""

    id: str
    crm: str
    mode: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    exit_code: int | None
    counts: Mapping[str, Any]
    ruleset_version: str
    ruleset_hash: str
    error: str | None


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One journaled write: a record's field values, a task create or a task close.

    For ``fields`` entries ``before``/``after`` map output names to values (what undo restores);
    for ``field`` entries they are the single field's values and ``name`` is the output.
    Datetimes inside values come back as ISO 8601 strings.
    """

    id: int
    run_id: str
    seq: int
    stream: str
    object_type: str
    record_id: str
    kind: str
    name: str | None
    before: Any
    after: Any
    state: str
    error_code: str | None
    error_message: str | None
    task_key: str | None
    task_id: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A crmsync task in the registry; ``key`` is deterministic in (record, purpose)."""

    key: str
    record_id: str
    stream: str
    purpose: str
    state: str
    task_id: str | None
    run_id: str
    updated_at: datetime

    @property
    def is_open(self) -> bool:
        """True while the task is open in the CRM, or might be (a create not yet settled)."""
        return self.state in ("intent", "open")


@dataclass(frozen=True, slots=True)
class PendingWrite:
    """A write about to be sent to the CRM, as given to :meth:`StateStore.journal_pending`."""

    stream: str
    object_type: str
    record_id: str
    kind: str
    name: str | None
    before: Any
    after: Any
    task_key: str | None = None
    task_id: str | None = None


# -- schema -------------------------------------------------------------------------------------


class _UtcDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out, on every backend (SQLite keeps no zone: store naive UTC)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the state store; use timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_meta = sa.MetaData()

_schema_version = sa.Table(
    "crmsync_schema_version", _meta, sa.Column("version", sa.Integer, primary_key=True)
)

_runs = sa.Table(
    "crmsync_runs", _meta,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("crm", sa.String(40), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("started_at", _UtcDateTime, nullable=False),
    sa.Column("finished_at", _UtcDateTime),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("exit_code", sa.Integer),
    sa.Column("counts", sa.JSON, nullable=False),
    sa.Column("ruleset_version", sa.String(80), nullable=False),
    sa.Column("ruleset_hash", sa.String(128), nullable=False),
    sa.Column("error", sa.Text),
)

_cursors = sa.Table(
    "crmsync_cursors", _meta,
    sa.Column("stream", sa.String(120), primary_key=True),
    sa.Column("value", _UtcDateTime),
    sa.Column("ids_at_value", sa.JSON, nullable=False),
    sa.Column("updated_at", _UtcDateTime, nullable=False),
)

_journal = sa.Table(
    "crmsync_journal", _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(40), sa.ForeignKey("crmsync_runs.id"), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("stream", sa.String(120), nullable=False),
    sa.Column("object_type", sa.String(80), nullable=False),
    sa.Column("record_id", sa.String(80), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("name", sa.String(120)),
    sa.Column("before", sa.JSON),
    sa.Column("after", sa.JSON),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("error_code", sa.String(120)),
    sa.Column("error_message", sa.Text),
    sa.Column("task_key", sa.String(120)),
    sa.Column("task_id", sa.String(80)),
    sa.Column("created_at", _UtcDateTime, nullable=False),
    sa.Column("updated_at", _UtcDateTime, nullable=False),
    sa.UniqueConstraint("run_id", "seq", name="uq_crmsync_journal_run_seq"),
    sa.Index("ix_crmsync_journal_stream_state", "stream", "state"),
    sa.Index("ix_crmsync_journal_task_key", "task_key"),
)

_tasks = sa.Table(
    "crmsync_tasks", _meta,
    sa.Column("key", sa.String(120), primary_key=True),
    sa.Column("record_id", sa.String(80), nullable=False, index=True),
    sa.Column("stream", sa.String(120), nullable=False),
    sa.Column("purpose", sa.String(120), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("task_id", sa.String(80)),
    sa.Column("run_id", sa.String(40), sa.ForeignKey("crmsync_runs.id"), nullable=False),
    sa.Column("journal_id", sa.Integer, sa.ForeignKey("crmsync_journal.id")),
    sa.Column("updated_at", _UtcDateTime, nullable=False),
    sa.Index("ix_crmsync_tasks_stream_state", "stream", "state"),
)

_rejections = sa.Table(
    "crmsync_rejections", _meta,
    sa.Column("stream", sa.String(120), primary_key=True),
    sa.Column("record_id", sa.String(80), primary_key=True),
    sa.Column("run_id", sa.String(40), sa.ForeignKey("crmsync_runs.id"), nullable=False),
    sa.Column("error_code", sa.String(120), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("resolved", sa.Boolean, nullable=False),
    sa.Column("updated_at", _UtcDateTime, nullable=False),
)


_leases = sa.Table(
    "crmsync_leases", _meta,
    sa.Column("name", sa.String(120), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("expires_at", _UtcDateTime, nullable=False),
)


def _json_default(value: Any) -> Any:
    # Journal values are CRM field values: dates and datetimes are the only non-JSON ones.
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"cannot journal a {type(value).__name__}")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def _utcnow() -> datetime:
    # The ledger stamps its own bookkeeping rows; callers pass the run's `now` where it matters.
    return datetime.now(UTC)  # noqa: TID251


# -- the store ----------------------------------------------------------------------------------


class StateStore:
    """Durable state of crmsync runs; one instance per process, safe to share between threads.

    Every method is one short transaction; methods that take lists write them with one
    ``executemany`` so a batch of 100-200 records costs one round trip and one commit.
    """

    def __init__(self, engine: Engine, *, clock: Callable[[], datetime] = _utcnow) -> None:
        """Wrap an engine whose tables already exist; use :meth:`open` instead."""
        self._engine = engine
        self._clock = clock

    # -- lifecycle --------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, *, clock: Callable[[], datetime] = _utcnow) -> StateStore:
        """Open (creating when needed) the store at a SQLAlchemy URL.

        Args:
            url: ``sqlite:///path/state.db`` (parent folders are created), ``sqlite://`` for an
                in-memory store, or ``postgresql+psycopg://user@host/db``.
            clock: Source of bookkeeping timestamps (tests inject a fixed one).

        Raises:
            StateError: The URL is invalid, the database unreachable, or its schema newer.
        """
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise StateError("state URL is not a valid SQLAlchemy URL") from None
        shown = parsed.render_as_string(hide_password=True)
        kwargs: dict[str, Any] = {"json_serializer": _dumps}
        if parsed.get_backend_name() == "sqlite":
            if parsed.database in (None, "", ":memory:"):
                # One shared connection, or every checkout would see an empty database.
                kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
            else:
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
                kwargs["connect_args"] = {"timeout": 30}
        try:
            engine = sa.create_engine(parsed, **kwargs)
        except (ArgumentError, ImportError) as exc:
            raise StateError(f"cannot use state store {shown}: {type(exc).__name__}") from exc
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        try:
            _meta.create_all(engine)
            version = _ensure_schema_version(engine)
        except OperationalError as exc:
            engine.dispose()
            raise StateError(f"cannot open state store {shown}: {exc.orig!s}") from exc
        if version > SCHEMA_VERSION:
            engine.dispose()
            raise StateError(
                f"state store {shown} has schema version {version}; this crmsync "
                f"understands up to {SCHEMA_VERSION}: upgrade crmsync"
            )
        return cls(engine, clock=clock)

    def close(self) -> None:
        """Release every connection."""
        self._engine.dispose()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- run ledger -------------------------------------------------------------------------

    def start_run(
        self,
        crm: str,
        mode: str,
        *,
        ruleset_version: str = "",
        ruleset_hash: str = "",
        started_at: datetime | None = None,
    ) -> str:
        """Record a new run as ``running`` and return its id (``r20261123T142301-ab12``)."""
        if mode not in RUN_MODES:
            raise ValueError(f"unknown run mode {mode!r}")
        started = (started_at or self._clock()).astimezone(UTC)
        for _ in range(8):
            run_id = f"r{started:%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"
            try:
                with self._engine.begin() as conn:
                    conn.execute(_runs.insert().values(
                        id=run_id, crm=crm, mode=mode, started_at=started, status="running",
                        counts={}, ruleset_version=ruleset_version, ruleset_hash=ruleset_hash,
                    ))
                return run_id
            except IntegrityError:
                continue  # two runs started in the same second drew the same suffix
        raise StateError("could not allocate a unique run id")

    def finish_run(
        self,
        run_id: str,
        status: str,
        exit_code: int,
        counts: Mapping[str, Any],
        error: str | None = None,
        *,
        finished_at: datetime | None = None,
    ) -> None:
        """Close a run with its outcome. ``error`` must hold no token or contact data."""
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        with self._engine.begin() as conn:
            done = conn.execute(
                _runs.update().where(_runs.c.id == run_id).values(
                    status=status, exit_code=int(exit_code), counts=dict(counts), error=error,
                    finished_at=finished_at or self._clock(),
                )
            )
            if done.rowcount != 1:
                raise KeyError(run_id)

    def runs(self, limit: int = 20) -> list[RunRecord]:
        """Return the latest runs, newest first."""
        query = _runs.select().order_by(_runs.c.started_at.desc(), _runs.c.id.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [RunRecord(**row._asdict()) for row in conn.execute(query)]

    def get_run(self, run_id: str) -> RunRecord | None:
        """Return one run, or ``None`` when no run has that id."""
        with self._engine.connect() as conn:
            row = conn.execute(_runs.select().where(_runs.c.id == run_id)).first()
        return RunRecord(**row._asdict()) if row else None

    # -- cursors ----------------------------------------------------------------------------

    def get_cursor(self, stream: str) -> Cursor:
        """Return the committed cursor of a stream (an empty one before its first run)."""
        with self._engine.connect() as conn:
            row = conn.execute(_cursors.select().where(_cursors.c.stream == stream)).first()
        if row is None:
            return Cursor(stream)
        return Cursor(stream, row.value, frozenset(row.ids_at_value))

    def commit_cursor(self, cursor: Cursor) -> None:
        """Durably store a stream's cursor, in its own transaction."""
        values = {"value": cursor.value, "ids_at_value": sorted(cursor.ids_at_value),
                  "updated_at": self._clock()}
        with self._engine.begin() as conn:
            done = conn.execute(
                _cursors.update().where(_cursors.c.stream == cursor.stream).values(**values)
            )
            if done.rowcount == 0:
                conn.execute(_cursors.insert().values(stream=cursor.stream, **values))

    # -- write journal ----------------------------------------------------------------------

    def journal_pending(self, run_id: str, entries: Sequence[PendingWrite]) -> list[int]:
        """Journal writes as ``pending`` before sending them; return their ids, in order."""
        if not entries:
            return []
        with self._engine.begin() as conn:
            return _insert_pending(conn, run_id, entries, self._clock())

    def journal_fields(
        self,
        run_id: str,
        stream: str,
        writes: Sequence[tuple[str, str, Mapping[str, Any], Mapping[str, Any]]],
    ) -> list[int]:
        """Journal field writes, one entry per record: ``(record_id, object_type, before, after)``.

        ``before``/``after`` map output names to values; undo writes ``before`` back.
        """
        return self.journal_pending(run_id, [
            PendingWrite(stream, object_type, record_id, "fields", ",".join(sorted(after)),
                         {k: before.get(k) for k in after}, dict(after))
            for record_id, object_type, before, after in writes
        ])

    def journal_applied(self, ids: Iterable[int], *, task_ids: Mapping[int, str] | None = None) -> None:
        """Mark journal entries applied; ``task_ids`` gives created task ids by entry id."""
        ids = list(ids)
        if not ids:
            return
        now = self._clock()
        with self._engine.begin() as conn:
            conn.execute(
                _journal.update().where(_journal.c.id.in_(ids))
                .values(state="applied", updated_at=now)
            )
            for entry_id, task_id in (task_ids or {}).items():
                conn.execute(
                    _journal.update().where(_journal.c.id == entry_id).values(task_id=task_id)
                )

    def journal_rejected(self, entry_id: int, code: str, message: str) -> None:
        """Mark one journal entry rejected with the CRM's error (code and message, no data)."""
        with self._engine.begin() as conn:
            conn.execute(
                _journal.update().where(_journal.c.id == entry_id).values(
                    state="rejected", error_code=code, error_message=message,
                    updated_at=self._clock(),
                )
            )

    def journal_for_run(self, run_id: str) -> list[JournalEntry]:
        """Return every journal entry of a run in write order (what undo reverses)."""
        return self._journal_rows(_journal.c.run_id == run_id)

    def pending_entries(self, stream: str) -> list[JournalEntry]:
        """Return entries of a stream left ``pending`` by a run that stopped mid-write."""
        return self._journal_rows(_journal.c.stream == stream, _journal.c.state == "pending")

    def _journal_rows(self, *where: sa.ColumnElement[bool]) -> list[JournalEntry]:
        query = _journal.select().where(*where).order_by(_journal.c.run_id, _journal.c.seq)
        with self._engine.connect() as conn:
            return [JournalEntry(**row._asdict()) for row in conn.execute(query)]

    # -- task registry ----------------------------------------------------------------------

    def task_lookup(self, record_id: str, key: str) -> TaskRecord | None:
        """Return the registry row of a task key for a record, or ``None``."""
        with self._engine.connect() as conn:
            row = conn.execute(
                _tasks.select().where(_tasks.c.key == key, _tasks.c.record_id == record_id)
            ).first()
        return _task(row) if row else None

    def open_tasks(self, record_ids: Iterable[str]) -> list[TaskRecord]:
        """Return the open (or possibly open) tasks of some records."""
        ids = list(record_ids)
        if not ids:
            return []
        with self._engine.connect() as conn:
            rows = conn.execute(
                _tasks.select().where(_tasks.c.record_id.in_(ids),
                                      _tasks.c.state.in_(("intent", "open")))
            ).all()
        return [_task(row) for row in rows]

    def closed_task_counts(self, record_ids: Iterable[str]) -> dict[tuple[str, str], int]:
        """Return ``{(record id, purpose): tasks closed so far}`` (the next task's generation)."""
        ids = list(record_ids)
        if not ids:
            return {}
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(_tasks.c.record_id, _tasks.c.purpose, sa.func.count())
                .where(_tasks.c.record_id.in_(ids), _tasks.c.state == "closed")
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
        keys = [c.key for c in creates]
        now = self._clock()
        # One transaction: an intent never exists without its journal entry, nor the reverse.
        with self._engine.begin() as conn:
            existing = {
                row.key: row.state
                for row in conn.execute(
                    sa.select(_tasks.c.key, _tasks.c.state).where(_tasks.c.key.in_(keys))
                )
            }
            fresh = [c for c in creates if existing.get(c.key) not in ("intent", "open")]
            journal_ids = _insert_pending(conn, run_id, [
                PendingWrite(stream, c.object_type, c.contact_id, "task_create", c.spec.purpose,
                             None, {"subject": c.spec.subject, "due": c.spec.due,
                                    "priority": c.spec.priority}, task_key=c.key)
                for c in fresh
            ], now)
            inserts = []
            for create, journal_id in zip(fresh, journal_ids, strict=True):
                values = {"record_id": create.contact_id, "stream": stream,
                          "purpose": create.spec.purpose, "state": "intent", "task_id": None,
                          "run_id": run_id, "journal_id": journal_id, "updated_at": now}
                if create.key in existing:  # closed or failed before: rare, one by one
                    conn.execute(_tasks.update().where(_tasks.c.key == create.key).values(**values))
                else:
                    inserts.append({"key": create.key, **values})
            if inserts:
                conn.execute(_tasks.insert(), inserts)
            rows = conn.execute(_tasks.select().where(_tasks.c.key.in_(keys))).all()
        by_key = {row.key: _task(row) for row in rows}
        return [by_key[k] for k in keys]

    def task_created(self, key: str, task_id: str) -> None:
        """Record the CRM's id of a created task: the task is now open; its journal applied."""
        self.tasks_created({key: task_id})

    def tasks_created(self, task_ids: Mapping[str, str]) -> None:
        """Record created tasks (``{key: CRM task id}``) in one transaction; see task_created."""
        if not task_ids:
            return
        now = self._clock()
        with self._engine.begin() as conn:
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
        now = self._clock()
        with self._engine.begin() as conn:
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
        now = self._clock()
        with self._engine.begin() as conn:
            conn.execute(_tasks.update().where(_tasks.c.key == key)
                         .values(state="closed", updated_at=now))
            conn.execute(_journal.update().where(
                _journal.c.task_key == key, _journal.c.kind == "task_close",
                _journal.c.state == "pending",
            ).values(state="applied", updated_at=now))

    def pending_task_intents(self, stream: str) -> list[TaskRecord]:
        """Return task creates a stopped run left unsettled (the CRM may or may not have them)."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                _tasks.select().where(_tasks.c.stream == stream, _tasks.c.state == "intent")
                .order_by(_tasks.c.key)
            ).all()
        return [_task(row) for row in rows]

    # -- run lease --------------------------------------------------------------------------

    def acquire_lease(self, name: str, run_id: str, ttl: timedelta) -> None:
        """Take (or extend) the lease ``name`` for ``run_id``; one writer per CRM at a time.

        A lease is free when it has expired, or when its holder was a process on this machine
        that no longer exists (a killed run need not block the next one for ``ttl``).

        Raises:
            RunInProgress: Another live run holds it.
        """
        holder = f"{run_id}@{socket.gethostname()}:{os.getpid()}"
        now = self._clock()
        with self._engine.begin() as conn:
            row = conn.execute(_leases.select().where(_leases.c.name == name)).first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(_leases.insert().values(
                            name=name, holder=holder, expires_at=now + ttl))
                    return
                except IntegrityError:
                    row = conn.execute(_leases.select().where(_leases.c.name == name)).first()
            assert row is not None
            mine = row.holder.split("@", 1)[0] == run_id
            if not mine and row.expires_at > now and not _holder_is_dead(row.holder):
                raise RunInProgress(
                    f"another run ({row.holder.split('@', 1)[0]}) is syncing this CRM; its lease "
                    f"runs until {row.expires_at:%Y-%m-%d %H:%M:%S}Z unless it ends first"
                )
            done = conn.execute(
                _leases.update().where(_leases.c.name == name, _leases.c.holder == row.holder)
                .values(holder=holder, expires_at=now + ttl)
            )
            if done.rowcount != 1:
                raise RunInProgress("another run took the lease at the same moment; try again")

    def release_lease(self, name: str, run_id: str) -> None:
        """Give the lease back (only if ``run_id`` holds it)."""
        with self._engine.begin() as conn:
            conn.execute(_leases.delete().where(
                _leases.c.name == name, _leases.c.holder.like(f"{run_id}@%")))

    # -- rejected records -------------------------------------------------------------------

    def record_rejection(
        self, stream: str, record_id: str, run_id: str, code: str, message: str
    ) -> None:
        """Remember a record the CRM rejected, so the next run retries it."""
        now = self._clock()
        key = (_rejections.c.stream == stream) & (_rejections.c.record_id == record_id)
        with self._engine.begin() as conn:
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
        with self._engine.begin() as conn:
            conn.execute(_rejections.update().where(
                _rejections.c.stream == stream, _rejections.c.record_id.in_(ids),
                _rejections.c.resolved.is_(False),
            ).values(resolved=True, updated_at=self._clock()))

    def rejected_ids(self, stream: str) -> list[str]:
        """Return the ids of a stream's unresolved rejected records, sorted."""
        with self._engine.connect() as conn:
            return list(conn.execute(
                sa.select(_rejections.c.record_id).where(
                    _rejections.c.stream == stream, _rejections.c.resolved.is_(False)
                ).order_by(_rejections.c.record_id)
            ).scalars())


def _insert_pending(
    conn: sa.Connection, run_id: str, entries: Sequence[PendingWrite], now: datetime
) -> list[int]:
    """Insert pending journal rows with one executemany; return their ids in order."""
    if not entries:
        return []
    # Per-run sequence numbers; (run_id, seq) is unique, so a racing writer fails loudly.
    seq = conn.execute(
        sa.select(sa.func.coalesce(sa.func.max(_journal.c.seq), 0))
        .where(_journal.c.run_id == run_id)
    ).scalar_one()
    rows = []
    for offset, entry in enumerate(entries, start=1):
        if entry.kind not in JOURNAL_KINDS:
            raise ValueError(f"unknown journal kind {entry.kind!r}")
        rows.append({
            "run_id": run_id, "seq": seq + offset, "stream": entry.stream,
            "object_type": entry.object_type, "record_id": entry.record_id,
            "kind": entry.kind, "name": entry.name, "before": entry.before,
            "after": entry.after, "state": "pending", "task_key": entry.task_key,
            "task_id": entry.task_id, "created_at": now, "updated_at": now,
        })
    conn.execute(_journal.insert(), rows)
    ids = conn.execute(
        sa.select(_journal.c.id)
        .where(_journal.c.run_id == run_id, _journal.c.seq > seq,
               _journal.c.seq <= seq + len(rows))
        .order_by(_journal.c.seq)
    ).scalars().all()
    return list(ids)


def _holder_is_dead(holder: str) -> bool:
    """Whether a lease holder (``run@host:pid``) was a process on this host that has ended."""
    _, _, where = holder.partition("@")
    host, _, pid = where.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _task(row: sa.Row[Any]) -> TaskRecord:
    return TaskRecord(key=row.key, record_id=row.record_id, stream=row.stream,
                      purpose=row.purpose, state=row.state, task_id=row.task_id,
                      run_id=row.run_id, updated_at=row.updated_at)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers (crmsync runs/report) work while a sync writes; NORMAL sync is durable
    # across process crashes in WAL mode, which is the failure crash safety is about.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _ensure_schema_version(engine: Engine) -> int:
    with engine.begin() as conn:
        version = conn.execute(sa.select(sa.func.max(_schema_version.c.version))).scalar()
        if version is None:
            conn.execute(_schema_version.insert().values(version=SCHEMA_VERSION))
            version = SCHEMA_VERSION
    return int(version)


__all__ = [
    "JournalEntry",
    "PendingWrite",
    "RunRecord",
    "SCHEMA_VERSION",
    "StateError",
    "StateStore",
    "TaskRecord",
]
