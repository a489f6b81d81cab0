"""The shard ledger of a sharded run: which slices of which streams are queued, running, done.

A run executed by workers (``crmsync run --via workers``) is split into shards, each a slice of
one stream that is read and written independently. The coordinator records every shard before
sending it; a worker claims its shard before working and records its summary when done. A
shard delivered twice (a worker died before acknowledging it, or the broker redelivered it)
finds itself ``done`` and does nothing; one whose worker died mid-way is ``running`` with an
old attempt and is simply run again (every write it would repeat is planned against the CRM's
current values, and task creates are found by key, so nothing is written twice).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from crmsync.state.base import StoreBase
from crmsync.state.schema import _leases, _meta, _UtcDateTime

SHARD_STATES = ("queued", "running", "done", "failed")

_shards = sa.Table(
    "crmsync_shards", _meta,
    sa.Column("run_id", sa.String(40), primary_key=True),
    sa.Column("shard", sa.Integer, primary_key=True),
    sa.Column("stream", sa.String(120), nullable=False),
    sa.Column("lo", sa.String(80)),
    sa.Column("hi", sa.String(80)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("worker", sa.String(200)),
    sa.Column("summary", sa.JSON),
    sa.Column("error", sa.Text),
    sa.Column("updated_at", _UtcDateTime, nullable=False),
)


@dataclass(frozen=True, slots=True)
class ShardRecord:
    """One shard of a run, as the shard ledger holds it."""

    run_id: str
    shard: int
    stream: str
    lo: str | None
    hi: str | None
    status: str
    attempts: int
    worker: str | None
    summary: dict[str, Any] | None
    error: str | None
    updated_at: datetime


def worker_name() -> str:
    """``host:pid`` of this process: which worker ran a shard."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Shards(StoreBase):
    """Shards of sharded runs, and the lease check that fences a stale shard out."""

    def add_shards(self, run_id: str, shards: Sequence[Mapping[str, Any]]) -> None:
        """Record a run's shards as ``queued`` (each: ``shard``, ``stream``, ``lo``, ``hi``)."""
        if not shards:
            return
        now = self._clock()
        with self._begin() as conn:
            conn.execute(_shards.insert(), [
                {"run_id": run_id, "shard": s["shard"], "stream": s["stream"], "lo": s.get("lo"),
                 "hi": s.get("hi"), "status": "queued", "attempts": 0, "updated_at": now}
                for s in shards
            ])

    def claim_shard(self, run_id: str, shard: int) -> ShardRecord | None:
        """Mark a shard ``running`` by this process and return it; ``None`` if already done.

        A shard that is ``running`` already (its worker died, or this is a redelivery while
        that worker still works) is claimed again: running it twice writes nothing twice.
        """
        with self._begin() as conn:
            row = conn.execute(_shards.select().where(
                _shards.c.run_id == run_id, _shards.c.shard == shard)).first()
            if row is None or row.status == "done":
                return None
            conn.execute(_shards.update().where(
                _shards.c.run_id == run_id, _shards.c.shard == shard).values(
                status="running", attempts=row.attempts + 1, worker=worker_name(),
                updated_at=self._clock()))
            row = conn.execute(_shards.select().where(
                _shards.c.run_id == run_id, _shards.c.shard == shard)).first()
        return ShardRecord(**row._asdict()) if row is not None else None

    def finish_shard(self, run_id: str, shard: int, *, status: str,
                     summary: Mapping[str, Any] | None, error: str | None = None) -> None:
        """Record a shard's outcome (``done`` or ``failed``) and its summary."""
        if status not in SHARD_STATES:
            raise ValueError(f"unknown shard status {status!r}")
        with self._begin() as conn:
            conn.execute(_shards.update().where(
                _shards.c.run_id == run_id, _shards.c.shard == shard).values(
                status=status, summary=dict(summary) if summary is not None else None,
                error=error, updated_at=self._clock()))

    def shards(self, run_id: str) -> list[ShardRecord]:
        """Return a run's shards in order."""
        with self._connect() as conn:
            rows = conn.execute(_shards.select().where(_shards.c.run_id == run_id)
                                .order_by(_shards.c.shard)).all()
        return [ShardRecord(**row._asdict()) for row in rows]

    def shard_heartbeat(self, run_id: str, shard: int, lease: str) -> str | None:
        """Note that a shard is alive; return the id of the run holding the lease ``lease``.

        Called before every page of a shard: the coordinator treats a shard silent for too
        long as lost, and a shard whose run no longer holds the lease stops.
        """
        with self._begin() as conn:
            conn.execute(_shards.update().where(
                _shards.c.run_id == run_id, _shards.c.shard == shard).values(
                updated_at=self._clock()))
            holder = conn.execute(sa.select(_leases.c.holder).where(
                _leases.c.name == self._scoped(lease))).scalar_one_or_none()
        return holder.split("@", 1)[0] if holder else None
