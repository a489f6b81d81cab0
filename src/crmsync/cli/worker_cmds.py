"""``crmsync worker``: a Celery worker that executes the shards of sharded runs."""

from __future__ import annotations

import os
from pathlib import Path

import click

from crmsync.cli.common import logging_options


@click.command("worker")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Settings file (default: ./crmsync.toml): [workers] and every connection.")
@click.option("--concurrency", type=click.IntRange(1), default=None,
              help="Shards run at once by this worker (default: [workers] concurrency).")
@click.option("--queue", default=None, help="Queue to take shards from (default: [workers] queue).")
@logging_options
def worker(config_path: Path | None, concurrency: int | None, queue: str | None) -> None:
    """Execute shards of sharded runs (`crmsync run --via workers`) until stopped.

    Shards are acknowledged only once done: a worker stopped or killed mid-shard leaves it to
    another worker, which runs it again without writing anything twice. Credentials and rules
    come from this worker's own settings; a worker whose rules differ from the run's refuses
    its shards.
    """
    from crmsync.config import load_settings
    from crmsync.wiring import load_parts
    from crmsync.workers import require_broker
    from crmsync.workers.app import make_app

    settings = load_settings(config_path, require_crm=False)
    workers = settings.workers
    name = queue or workers.queue

    def build_parts(connection: str):  # type: ignore[no-untyped-def]
        return load_parts(load_settings(config_path, connection=connection))

    app = make_app(require_broker(workers.broker_url), queue=name, build_parts=build_parts)
    # Threads: a shard's work is waiting for the CRM; a killed worker takes its threads with
    # it, and the broker hands its unacknowledged shards to another worker.
    app.worker_main([
        "worker", "--pool=threads", f"--concurrency={concurrency or workers.concurrency}",
        "-Q", name, "-n", f"crmsync-{os.getpid()}@%h", "--loglevel=INFO",
        "--without-gossip", "--without-mingle",
    ])
