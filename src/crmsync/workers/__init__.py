"""Scale-out: sharded runs executed by Celery workers, one rate limit per CRM in Redis.

A run is streams split into shards of pages (:mod:`crmsync.sync.shard`). ``crmsync run`` runs
each stream as one shard in its own process; ``crmsync run --via workers`` has a coordinator
(:class:`~crmsync.workers.coordinator.WorkersRun`) split each stream into key ranges, record
them in the state store's shard ledger and send one Celery task per shard; ``crmsync worker``
processes execute them against the same PostgreSQL state store. Tasks are acknowledged late
and idempotent: a worker killed mid-shard leaves the message unacknowledged, the broker hands
it to another worker, and the shard is run again without writing anything twice (writes are
planned against the CRM's current values, task creates are found by key).

All workers of one CRM connection share one :class:`~crmsync.workers.pacer.RedisPacer`, so
together they stay within the CRM's rate limits and keep a reserve of its daily allowance.

Modules: ``app`` (the Celery application and its one task), ``coordinator`` (the sharded
run), ``pacer`` (the shared rate limiter), ``execute`` (what a worker does with a shard).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from crmsync.errors import ConfigError

if TYPE_CHECKING:
    from crmsync.sync import SyncOptions
    from crmsync.wiring import Parts
    from crmsync.workers.coordinator import WorkersRun


def require_broker(broker_url: str) -> str:
    """Return ``[workers] broker_url``, or say what to set when it is empty."""
    if not broker_url:
        raise ConfigError(
            "[workers] broker_url is not set: name the Celery broker the workers listen on, "
            "e.g. amqp://guest:guest@127.0.0.1:5672// (RabbitMQ) or redis://127.0.0.1:6379/0 "
            "(or CRMSYNC_WORKERS__BROKER_URL)")
    return broker_url


def sharded_run(parts: Parts, options: SyncOptions,
                on_progress: Callable[[str, int], None] | None = None,
                now: datetime | None = None) -> WorkersRun:
    """Return the coordinator of a run whose shards the workers execute (``run --via workers``)."""
    from crmsync.sync import file_hash
    from crmsync.workers.app import make_app
    from crmsync.workers.coordinator import WorkersRun

    workers = parts.settings.workers
    app = make_app(require_broker(workers.broker_url), queue=workers.queue)
    return WorkersRun(parts.connector, parts.ruleset, parts.store, options=options,
                      on_progress=on_progress, fieldmap_hash=file_hash(parts.fieldmap.path),
                      now=now, app=app, queue=workers.queue, shards_per_stream=workers.shards,
                      connection=parts.settings.connection,
                      start_timeout_s=workers.start_timeout_s, shadow=parts.shadow)
