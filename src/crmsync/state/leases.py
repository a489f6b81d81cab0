"""The run lease: one writer per CRM at a time, across processes and hosts."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from crmsync.errors import RunInProgress
from crmsync.state.base import StoreBase
from crmsync.state.schema import _leases, _runs

_RENEW = (_leases.update()
          .where(_leases.c.name == sa.bindparam("b_name"),
                 _leases.c.holder == sa.bindparam("b_holder"))
          .values(expires_at=sa.bindparam("expires")))


class Leases(StoreBase):
    """Named leases with an expiry, renewed by heartbeat."""

    def acquire_lease(self, name: str, run_id: str, ttl: timedelta) -> str | None:
        """Take (or extend) the lease ``name`` for ``run_id``; one writer per CRM at a time.

        A lease is free when it has expired, or when its holder was a process on this machine
        that no longer exists (a killed run need not block the next one for ``ttl``).

        Returns:
            The id of the run whose lease was taken over (it died or its lease expired, so
            the caller should close its ledger row and settle what it left), else ``None``.

        Raises:
            RunInProgress: Another live run holds it.
        """
        name = self._scoped(name)  # one writer per connection, not per CRM type
        holder = f"{run_id}@{socket.gethostname()}:{os.getpid()}"
        now = self._clock()
        with self._begin() as conn:
            # The heartbeat after every page: this very process holds it, one statement.
            renewed = conn.execute(_RENEW, {"b_name": name, "b_holder": holder,
                                            "expires": now + ttl})
            if renewed.rowcount == 1:
                return None
            row = conn.execute(_leases.select().where(_leases.c.name == name)).first()
            if row is None:
                try:
                    with conn.begin_nested():
                        conn.execute(_leases.insert().values(
                            name=name, holder=holder, expires_at=now + ttl))
                    return None
                except IntegrityError:
                    row = conn.execute(_leases.select().where(_leases.c.name == name)).first()
            assert row is not None
            holder_run = row.holder.split("@", 1)[0]
            mine = holder_run == run_id
            if not mine and row.expires_at > now and not _holder_is_dead(row.holder):
                started = conn.execute(
                    sa.select(_runs.c.started_at).where(_runs.c.id == holder_run)
                ).scalar_one_or_none()
                since = f", started {started:%Y-%m-%d %H:%M:%S}Z" if started else ""
                raise RunInProgress(
                    f"another run ({holder_run}{since}) is syncing this CRM; nothing done"
                )
            done = conn.execute(
                _leases.update().where(_leases.c.name == name, _leases.c.holder == row.holder)
                .values(holder=holder, expires_at=now + ttl)
            )
            if done.rowcount != 1:
                raise RunInProgress("another run took this CRM's lease at the same moment; "
                                    "nothing done")
        return None if mine else holder_run

    def release_lease(self, name: str, run_id: str) -> None:
        """Give the lease back (only if ``run_id`` holds it)."""
        with self._begin() as conn:
            conn.execute(_leases.delete().where(
                _leases.c.name == self._scoped(name), _leases.c.holder.like(f"{run_id}@%")))


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
