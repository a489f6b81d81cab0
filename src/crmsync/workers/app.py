"""The Celery application: one task, ``crmsync.run_shard``, acknowledged late.

``acks_late`` with ``reject_on_worker_lost``: a message is acknowledged only once its shard
has run, so a worker killed mid-shard leaves it with the broker, which hands it to another
worker (RabbitMQ at once, when the dead worker's connection closes; Redis after the
``visibility_timeout``). ``worker_prefetch_multiplier = 1`` keeps a busy worker from holding
shards an idle one could run. Messages are JSON (no pickle from the network).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:
    from celery import Celery
except ImportError:  # pragma: no cover - depends on the install
    from crmsync.errors import ConfigError

    raise ConfigError("sharded runs and `crmsync worker` need Celery: "
                      "pip install 'crmsync[workers]'") from None

from crmsync.wiring import Parts
from crmsync.workers.execute import execute_shard

#: The one task's name (the coordinator sends it by name; it never imports the worker).
TASK_NAME = "crmsync.run_shard"


def make_app(broker_url: str, *, queue: str = "crmsync",
             build_parts: Callable[[str], Parts] | None = None,
             visibility_timeout_s: int = 3600) -> Celery:
    """Return the Celery app for ``broker_url`` (``amqp://…`` or ``redis://…``).

    Args:
        broker_url: The broker both coordinators and workers use.
        queue: The queue shards travel on (one per deployment; tests use their own).
        build_parts: For workers: assembles a connection's parts from the worker's settings.
            A coordinator, which only sends, passes nothing.
        visibility_timeout_s: Redis broker only: how long an unacknowledged shard waits before
            the broker hands it to another worker.
    """
    app = Celery("crmsync", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        result_backend=None,
        task_default_queue=queue,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": visibility_timeout_s},
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )

    @app.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True)
    def run_shard(payload: dict[str, Any]) -> str:
        if build_parts is None:
            raise RuntimeError("this Celery app sends shards; it cannot run them")
        return execute_shard(payload, build_parts)

    return app
