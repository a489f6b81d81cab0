"""The run ledger: one row per run, with its outcome and summary counts."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError

from crmsync.state.base import StoreBase
from crmsync.state.errors import StateError
from crmsync.state.records import RunRecord
from crmsync.state.schema import RUN_MODES, RUN_STATUSES, _runs


class Ledger(StoreBase):
    """Runs: started, finished, listed."""

    def start_run(
        self,
        crm: str,
        mode: str,
        *,
        ruleset_version: str = "",
        ruleset_hash: str = "",
        started_at: datetime | None = None,
        trigger: str | None = None,
    ) -> str:
        """Record a new run as ``running`` and return its id (``r20261123T142301-ab12``).

        The run belongs to this store's connection; ``trigger`` says who started it
        (``schedule:NAME`` or ``user@host``).
        """
        if mode not in RUN_MODES:
            raise ValueError(f"unknown run mode {mode!r}")
        started = (started_at or self._clock()).astimezone(UTC)
        for _ in range(8):
            run_id = f"r{started:%Y%m%dT%H%M%S}-{secrets.token_hex(2)}"
            try:
                with self._begin() as conn:
                    conn.execute(_runs.insert().values(
                        id=run_id, crm=crm, mode=mode, started_at=started, status="running",
                        counts={}, ruleset_version=ruleset_version, ruleset_hash=ruleset_hash,
                        connection=self.connection, trigger=trigger,
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
        with self._begin() as conn:
            done = conn.execute(
                _runs.update().where(_runs.c.id == run_id).values(
                    status=status, exit_code=int(exit_code), counts=dict(counts), error=error,
                    finished_at=finished_at or self._clock(),
                )
            )
            if done.rowcount != 1:
                raise KeyError(run_id)

    def runs(
        self, limit: int = 20, *, connection: str | None | Literal["own"] = "own",
        trigger: str | None = None,
    ) -> list[RunRecord]:
        """Return the latest runs, newest first.

        Args:
            limit: At most this many.
            connection: ``"own"`` (this store's connection), a connection name, or ``None``
                for every connection's runs.
            trigger: Only runs started by this trigger (``schedule:NAME``).
        """
        query = _runs.select().order_by(_runs.c.started_at.desc(), _runs.c.id.desc()).limit(limit)
        if connection is not None:
            query = query.where(_runs.c.connection == (
                self.connection if connection == "own" else connection))
        if trigger is not None:
            query = query.where(_runs.c.trigger == trigger)
        with self._connect() as conn:
            return [RunRecord(**row._asdict()) for row in conn.execute(query)]

    def undos_of(self, run_id: str) -> list[RunRecord]:
        """Return the undo runs that finished putting back ``run_id``'s writes, oldest first."""
        query = (_runs.select()
                 .where(_runs.c.mode == "undo", _runs.c.status.in_(("ok", "partial")),
                        _runs.c.connection == self.connection)
                 .order_by(_runs.c.started_at, _runs.c.id))
        with self._connect() as conn:
            undos = [RunRecord(**row._asdict()) for row in conn.execute(query)]
        return [u for u in undos if (u.counts or {}).get("run_id") == run_id]

    def get_run(self, run_id: str) -> RunRecord | None:
        """Return one run, or ``None`` when no run has that id."""
        with self._connect() as conn:
            row = conn.execute(_runs.select().where(_runs.c.id == run_id)).first()
        return RunRecord(**row._asdict()) if row else None

    def abort_run(self, run_id: str, error: str, *, finished_at: datetime | None = None) -> bool:
        """Mark a run that died while ``running`` as ``aborted``; False if it had finished."""
        with self._begin() as conn:
            done = conn.execute(
                _runs.update().where(_runs.c.id == run_id, _runs.c.status == "running").values(
                    status="aborted", exit_code=4, error=error,
                    finished_at=finished_at or self._clock(),
                )
            )
        return done.rowcount == 1
