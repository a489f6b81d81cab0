"""Fixtures for sharded runs: real Celery workers (``crmsync worker`` processes) over RabbitMQ,
PostgreSQL as the shared state store, Redis for the shared rate limit, sandbox CRMs.

Each service must be up: under ``CI=true`` a missing one fails the test, elsewhere it skips
with the reason. Every test gets its own PostgreSQL schema, broker queue and Redis namespace.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pgschema import postgres_url

ROOT = Path(__file__).resolve().parents[2]
ANCHOR = datetime(2026, 11, 23, tzinfo=UTC)
BROKER_URL = os.environ.get("CRMSYNC_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
REDIS_URL = os.environ.get("CRMSYNC_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _unavailable(what: str, problem: BaseException) -> None:
    reason = f"{what} unreachable: {type(problem).__name__}: {problem}"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason + " (fails instead of skipping when CI=true)")


@pytest.fixture
def broker_url() -> str:
    """The RabbitMQ broker (a killed worker's shards come back at once: its connection closes)."""
    from kombu import Connection

    try:
        with Connection(BROKER_URL, connect_timeout=5) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as problem:  # noqa: BLE001 - any failure means "not there"
        _unavailable(f"RabbitMQ at {BROKER_URL}", problem)
    return BROKER_URL


@pytest.fixture
def redis_url() -> str:
    """Redis, for the rate limit every worker shares."""
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5).ping()
    except Exception as problem:  # noqa: BLE001
        _unavailable(f"Redis at {REDIS_URL}", problem)
    return REDIS_URL


@pytest.fixture
def state_url() -> Iterator[str]:
    """A fresh PostgreSQL schema: the store coordinator and workers share."""
    yield from postgres_url()


def write_config(path: Path, *, crm: str, base_url: str, token: str, state_url: str,
                 broker_url: str, queue: str, shards: int = 8, redis_url: str = "",
                 concurrency: int = 1, shadow: Path | None = None) -> Path:
    """Write a crmsync.toml for a sandbox, a shared store and the workers (``shadow``: a
    candidate rule file for ``[rules] shadow``)."""
    redis_line = f'redis_url = "{redis_url}"\n' if redis_url else ""
    shadow_line = f'shadow = "{shadow.as_posix()}"\n' if shadow else ""
    path.write_text(
        f'[crm]\ntype = "{crm}"\nbase_url = "{base_url}"\ntoken = "{token}"\n'
        f'[rules]\npath = "{(ROOT / "rules/default.json").as_posix()}"\n{shadow_line}'
        f'[state]\nurl = "{state_url}"\n'
        f'[workers]\nbroker_url = "{broker_url}"\nqueue = "{queue}"\nshards = {shards}\n'
        f"concurrency = {concurrency}\nstart_timeout_s = 60\n{redis_line}",
        "utf-8",
    )
    return path


class Workers:
    """``crmsync worker`` processes on one queue; stopped (and their queue deleted) at the end."""

    def __init__(self, config: Path, queue: str, log_dir: Path) -> None:
        self.config = config
        self.queue = queue
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, count: int) -> list[subprocess.Popen[bytes]]:
        started = []
        for _ in range(count):
            with (self.log_dir / f"worker-{len(self.processes)}.log").open("wb") as log:
                # The child keeps its own copy of the file descriptor.
                process = subprocess.Popen(
                    [sys.executable, "-m", "crmsync", "worker", "--config", str(self.config)],
                    stdout=log, stderr=subprocess.STDOUT,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )
            self.processes.append(process)
            started.append(process)
        return started

    def logs(self) -> str:
        return "\n".join(p.read_text("utf-8", "replace")
                         for p in sorted(self.log_dir.glob("worker-*.log")))

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture
def queue() -> str:
    """A queue of this test's own (RabbitMQ deletes nothing by itself: the fixture does)."""
    name = f"crmsync-test-{uuid.uuid4().hex[:10]}"
    yield name
    from kombu import Connection

    try:
        with Connection(BROKER_URL, connect_timeout=5) as conn:
            conn.default_channel.queue_delete(name)
    except Exception:  # noqa: BLE001 - cleanup only
        pass


@pytest.fixture
def workers_for(tmp_path: Path, queue: str) -> Iterator[Any]:
    """Start workers for a config: ``workers_for(config).start(2)``."""
    made: list[Workers] = []

    def make(config: Path) -> Workers:
        log_dir = tmp_path / "worker-logs"
        log_dir.mkdir(exist_ok=True)
        pool = Workers(config, queue, log_dir)
        made.append(pool)
        return pool

    yield make
    for pool in made:
        pool.stop()
