"""A run collects garbage less often, and gives the process its settings back (sync.collector)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from crmsync.sync.collector import RUN_GEN0_THRESHOLD, tuned_for_run

from .conftest import Crm


@pytest.fixture(autouse=True)
def default_collector() -> Iterator[None]:
    saved = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*saved)


def test_a_run_raises_the_young_threshold_and_freezes_what_was_loaded_then_restores_both() -> None:
    with tuned_for_run():
        assert gc.get_threshold() == (RUN_GEN0_THRESHOLD, 10, 10)
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_settings_come_back_when_the_run_fails() -> None:
    with pytest.raises(RuntimeError), tuned_for_run():
        raise RuntimeError("the run failed")
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_overlapping_runs_restore_only_when_the_last_one_ends() -> None:
    first_inside, release = threading.Event(), threading.Event()
    seen: list[tuple[int, int, int]] = []

    def first() -> None:
        with tuned_for_run():
            first_inside.set()
            release.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    assert first_inside.wait(10)
    with tuned_for_run():
        pass
    seen.append(gc.get_threshold())  # the first run is still going
    release.set()
    thread.join(10)
    assert seen == [(RUN_GEN0_THRESHOLD, 10, 10)]
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0


def test_collection_switched_off_by_the_process_stays_off() -> None:
    gc.set_threshold(0, 10, 10)
    with tuned_for_run():
        assert gc.get_threshold()[0] == 0
    assert gc.get_threshold() == (0, 10, 10)


def test_a_sync_run_leaves_the_collector_as_it_found_it(crm: Crm) -> None:
    crm.setup()
    summary = crm.run()
    assert summary.status == "ok" and summary.counts["read"] > 0
    assert gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0
