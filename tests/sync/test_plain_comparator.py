"""The plain comparator of ``benchmarks/plain_sync.py`` does the job crmsync does.

Its client CPU is the yardstick crmsync's is measured against, so it must stay the same job: a
second, independent implementation of a first HubSpot sync that decides every contact as
crmsync does and opens as many follow-up tasks. Both run here against the sandbox over HTTP.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def plain_sync():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import plain_sync

        yield plain_sync
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_the_plain_sync_decides_every_contact_as_crmsync_does(plain_sync) -> None:  # type: ignore[no-untyped-def]
    now = plain_sync.run_clock()
    _, crmsync_calls, mine = plain_sync.measure_crmsync(600, now)
    _, plain_calls, plain = plain_sync.measure_plain(600, now)

    assert len(mine) == len(plain) == 601  # 600 decisions and the count of open tasks
    assert {k: v for k, v in mine.items() if plain.get(k) != v} == {}
    assert mine["_tasks"] > 0
    # The same calls, give or take the pooling of the last pages and task lookups.
    assert abs(crmsync_calls - plain_calls) <= 0.1 * crmsync_calls + 2
