"""The state store's tables (SQLAlchemy Core), shared by SQLite and PostgreSQL.

Tables are created on open. Adding a table needs no migration (``create_all`` adds it to an
existing store); changing a column does: bump :data:`SCHEMA_VERSION` and migrate.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Dialect, Engine

#: The schema this code writes; bump it with a migration when a table changes.
#: 2: crmsync_runs.connection and .trigger (see state/migrate.py); 3: crmsync_shadow,
#: crmsync_schedule_pauses (the bump also keeps an older scheduler, which would fire paused
#: schedules, off the store) and crmsync_contacts.owner_id and .lead_source.
SCHEMA_VERSION = 3

#: The ``ruleset_version`` an upgrade stamps on every stream whose contacts must be decided
#: again once, whatever changed: the next run reads them whole (state/migrate.py).
REDECIDE_AFTER_UPGRADE = "(store upgraded)"

RUN_MODES = ("plan", "run", "full", "undo", "demo")
#: ``skipped``: the run found another run holding the CRM's lease and did nothing.
RUN_STATUSES = ("running", "ok", "partial", "failed", "aborted", "skipped")
JOURNAL_KINDS = ("fields", "field", "task_create", "task_close")
#: ``superseded``: left pending by a run that died; a later run re-planned the record.
JOURNAL_STATES = ("pending", "applied", "rejected", "superseded")
TASK_STATES = ("intent", "open", "closed", "failed")


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

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def to_text(value: datetime | None) -> str | None:
            # One call instead of three (decorator, this class, SQLite's DATETIME), writing
            # exactly SQLite DATETIME's default format: "2026-11-23 14:23:01.123456".
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError("naive datetime given to the state store; use timezone-aware UTC")
            if value.tzinfo is not UTC:
                value = value.astimezone(UTC)
            # "2026-11-23 14:23:01.123456+00:00" less its offset (``replace(tzinfo=None)``
            # costs several times more than the slice)
            return value.isoformat(" ", "microseconds")[:-6]

        return to_text

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        fallback = super().result_processor(dialect, coltype)
        if dialect.name != "sqlite":
            return fallback

        def from_text(value: str | None) -> datetime | None:
            if value is None:
                return None
            try:
                # Parsed with the offset rather than ``replace(tzinfo=UTC)`` after: 5x cheaper.
                return datetime.fromisoformat(value + "+00:00")
            except (TypeError, ValueError):
                return fallback(value) if fallback else value  # SQLAlchemy's own parser decides

        return from_text


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
    # Which [connections.NAME] the run synced, and who started it (schedule:NAME or user@host).
    sa.Column("connection", sa.String(40), nullable=False, server_default="default"),
    sa.Column("trigger", sa.String(200), quote=True),
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
    # Journal values are CRM field values: dates and datetimes are the only non-JSON ones
    # (orjson writes those itself, as ``isoformat()`` would; this serves the fallback).
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return sorted(value) if isinstance(value, set | frozenset) else list(value)
    raise TypeError(f"cannot journal a {type(value).__name__}")


def _dumps(value: Any) -> str:
    """JSON text of a journal value, a cursor's ids or a run's counts (compact, ISO dates)."""
    try:
        # orjson is 5-10x faster than json here, and the journal writes two values per write.
        return orjson.dumps(value, default=_json_default).decode()
    except TypeError:
        # What orjson refuses and json takes (integers past 64 bits, non-string keys).
        return json.dumps(value, default=_json_default, separators=(",", ":"))


def _loads(text: str | bytes | float) -> Any:
    """The value of JSON text written by :func:`_dumps`."""
    if isinstance(text, int | float):
        # A JSON column has NUMERIC affinity in SQLite, which stores the text "1" as 1.
        return text
    return orjson.loads(text)


_stream_stamps = sa.Table(
    "crmsync_stream_stamps", _meta,
    sa.Column("stream", sa.String(120), primary_key=True),
    sa.Column("ruleset_version", sa.String(80), nullable=False),
    sa.Column("ruleset_hash", sa.String(128), nullable=False),
    sa.Column("fieldmap_hash", sa.String(128), nullable=False),
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("updated_at", _UtcDateTime, nullable=False),
)

_contacts = sa.Table(
    "crmsync_contacts", _meta,
    sa.Column("stream", sa.String(120), primary_key=True),
    sa.Column("record_id", sa.String(80), primary_key=True),
    sa.Column("status", sa.String(40), nullable=False),
    sa.Column("miss_type", sa.String(40), nullable=False),
    sa.Column("score", sa.Float),
    sa.Column("status_since", _UtcDateTime),
    sa.Column("ruleset_hash", sa.String(128), nullable=False),
    sa.Column("modified_at", _UtcDateTime),
    sa.Column("first_run_id", sa.String(40), nullable=False),
    sa.Column("run_id", sa.String(40), nullable=False),
    sa.Column("updated_at", _UtcDateTime, nullable=False),
    # The record's owner (a CRM user id) and lead source (a picklist value): the report's
    # breakdowns by rep and by source. Ids and categories, not personal data.
    sa.Column("owner_id", sa.String(80)),
    sa.Column("lead_source", sa.String(120)),
    sa.Index("ix_crmsync_contacts_status", "stream", "status"),
)


def _utcnow() -> datetime:
    # The ledger stamps its own bookkeeping rows; callers pass the run's `now` where it matters.
    return datetime.now(UTC)  # noqa: TID251


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers (crmsync runs/report) work while a sync writes, and makes a commit one
    # append to the log instead of a rewrite of the database's pages.
    # synchronous=NORMAL in WAL mode syncs the log at checkpoints, not at every commit: a
    # killed *process* (SIGKILL, OOM, Ctrl-C) loses nothing it committed, because the commit
    # is in the OS's page cache, which outlives the process; only a power loss or OS crash
    # can lose the last few commits, and even then the database is never corrupted: it opens
    # as of an earlier commit, and the next run re-reads from the older cursor what it has no
    # record of; a task the CRM already holds is not duplicated, because both connectors key
    # task creates (HubSpot looks the key up first, Salesforce upserts by it). FULL would add
    # an fsync to every commit, most of a small commit's cost, for no guarantee the SIGKILL
    # tests (tests/sync/test_hard_edges.py) do not already hold.
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


