"""A fresh PostgreSQL schema per test, for every test that needs a real PostgreSQL store.

Not a test module: imported by the tests that share a PostgreSQL server (``test`` database by
default, ``CRMSYNC_TEST_POSTGRES_URL`` to change it). Fails, rather than skips, under
``CI=true`` when the server is unreachable.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_URL = os.environ.get(
    "CRMSYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def postgres_url(prefix: str = "crmsync_test") -> Iterator[str]:
    """Yield a URL whose connections see only a fresh schema, dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        reason = f"PostgreSQL unreachable at {sa.make_url(PG_URL).render_as_string()}: {exc.orig}"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason + " (set CRMSYNC_TEST_POSTGRES_URL; fails instead of skipping in CI)")
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def state_url_for(backend: str, tmp_path: Path, prefix: str = "crmsync_test") -> Iterator[str]:
    """Yield a state-store URL on ``backend``: ``sqlite`` (a file in ``tmp_path``) or
    ``postgresql`` (a fresh schema, dropped afterwards)."""
    if backend == "sqlite":
        yield f"sqlite:///{(tmp_path / 'state.db').as_posix()}"
    else:
        yield from postgres_url(prefix)
