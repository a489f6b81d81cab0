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
