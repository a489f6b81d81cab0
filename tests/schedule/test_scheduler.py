"""Schedulers sharing one state store start each slot exactly once, with real sync runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crmsync.config import ScheduleSettings, Settings, load_settings, select_connection
from crmsync.sandbox.server import SandboxServer
from crmsync.schedule import RunStarted, Scheduler, local_starter
from crmsync.state import StateStore
from crmsync.wiring import load_parts

from .conftest import RULES, FakeClock

START = datetime(2026, 12, 1, 10, 0, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def _config(tmp_path: Path, state_url: str, server: SandboxServer) -> Settings:
    config = tmp_path / "crmsync.toml"
    config.write_text(f"""
[state]
url = "{state_url}"

[connections.hub]
type = "hubspot"
base_url = "{server.base_url}"
rules = "{RULES}"

[schedules.minutely]
connection = "hub"
every = "1m"

[schedules.paused]
connection = "hub"
every = "1m"
enabled = false
""", "utf-8")
    settings = load_settings(config, {"CRMSYNC_CONNECTIONS__HUB__TOKEN": server.token},
                             require_crm=False)
    parts = load_parts(select_connection(settings, "hub"))
    try:
        parts.connector.setup()
    finally:
        parts.close()
    return settings


class Recorder:
    """The real local "start a run" hook, noting every (schedule, slot) it is asked to start."""

    def __init__(self, settings: Settings) -> None:
        self.real = local_starter(settings)
        self.calls: list[tuple[str, datetime]] = []
        self.lock = threading.Lock()

    def __call__(self, schedule: ScheduleSettings, slot: datetime) -> RunStarted:
        with self.lock:
            self.calls.append((schedule.name, slot))
        return self.real(schedule, slot)


@pytest.fixture
def settings(tmp_path: Path, state_url: str, hubspot: SandboxServer) -> Settings:
    return _config(tmp_path, state_url, hubspot)


@pytest.fixture
def stores(settings: Settings) -> Iterator[list[StateStore]]:
    """Two stores on one database: what two scheduler processes would open."""
    opened = [StateStore.open(settings.state.url), StateStore.open(settings.state.url)]
    try:
        yield opened
    finally:
        for store in opened:
            store.close()


def test_two_schedulers_over_ten_minutes_fire_each_slot_once_across_a_restart(
    settings: Settings, stores: list[StateStore]
) -> None:
    clock = FakeClock(START)
    starter = Recorder(settings)
    first, second = (Scheduler(settings.schedules, store, starter, now=clock,
                               holder=f"scheduler-{i}") for i, store in enumerate(stores))
    fired = []
    while clock() <= START + 10 * MINUTE:
        if clock() == START + 5 * MINUTE:
            # The first scheduler restarts mid-way: a new process, a new store connection.
            stores[0].close()
            stores[0] = StateStore.open(settings.state.url)
            first = Scheduler(settings.schedules, stores[0], starter, now=clock,
                              holder="scheduler-0-restarted")
        # Who looks first alternates by minute: each wins some slots and loses the rest.
        order = (first, second) if clock().minute % 2 else (second, first)
        for scheduler in order:
            fired.extend(scheduler.tick())
        clock.advance(15)

    # The 10:00 slot came before either scheduler started: it is not fired; 10:01..10:10 are.
    expected = [("minutely", START.replace(second=0) + n * MINUTE) for n in range(1, 11)]
    assert sorted(starter.calls) == expected
    assert sorted((f.schedule, f.slot) for f in fired) == expected
    assert {f.status for f in fired} == {"ok"}
    # All three scheduler processes started slots (the claim, not luck, kept them apart).
    holders = {s.holder for s in stores[1].slots("minutely")}
    assert holders == {"scheduler-0", "scheduler-0-restarted", "scheduler-1"}
    # The ledger names the schedule as the trigger of each run, and the claims name the runs.
    runs = stores[1].runs(limit=50, connection=None, trigger="schedule:minutely")
    assert len(runs) == 10 and {r.connection for r in runs} == {"hub"}
    claimed = stores[1].slots("minutely")
    assert sorted(s.run_id for s in claimed) == sorted(r.id for r in runs)
    assert {s.status for s in claimed} == {"ok"}
    # A disabled schedule never fires.
    assert stores[1].slots("paused") == [] and not [c for c in starter.calls if c[0] == "paused"]


def test_claims_race_between_threads_and_one_wins_each_slot(
    settings: Settings, stores: list[StateStore]
) -> None:
    slots = [START + n * MINUTE for n in range(40)]
    won: dict[int, list[datetime]] = {0: [], 1: []}
    barrier = threading.Barrier(2)

    def claim(index: int) -> None:
        barrier.wait()
        for slot in slots:
            if stores[index].claim_slot("race", slot, f"thread-{index}"):
                won[index].append(slot)

    threads = [threading.Thread(target=claim, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(won[0] + won[1]) == slots


def test_after_downtime_only_the_latest_missed_slot_fires_once(
    settings: Settings, stores: list[StateStore]
) -> None:
    clock = FakeClock(START)
    starter = Recorder(settings)
    before = Scheduler(settings.schedules, stores[0], starter, now=clock)
    clock.advance(45)  # 10:01:15
    assert [(f.slot, f.status) for f in before.tick()] == [(START.replace(second=0) + MINUTE,
                                                            "ok")]
    clock.advance(4 * 60)  # down from 10:01:15 to 10:05:15: 10:02..10:05 came due meanwhile
    after = Scheduler(settings.schedules, stores[1], starter, now=clock)
    assert [f.slot for f in after.tick()] == [START.replace(second=0) + 5 * MINUTE]
    assert after.tick() == []  # once
    assert [slot for _, slot in starter.calls] == [START.replace(second=0) + MINUTE,
                                                   START.replace(second=0) + 5 * MINUTE]


def test_a_new_schedule_waits_for_its_next_slot_unless_asked_to_start_with_the_latest(
    settings: Settings, stores: list[StateStore]
) -> None:
    clock = FakeClock(START)
    starter = Recorder(settings)
    assert Scheduler(settings.schedules, stores[0], starter, now=clock).tick() == []
    assert starter.calls == []
    once = Scheduler(settings.schedules, stores[1], starter, now=clock, start_with_latest=True)
    assert [f.slot for f in once.tick()] == [START.replace(second=0)]


def test_a_slot_that_finds_the_lease_held_is_recorded_skipped(
    settings: Settings, stores: list[StateStore]
) -> None:
    # Another live run of the same connection holds its lease (this process: alive).
    hub = stores[0].scoped("hub")
    hub.acquire_lease("sync:hubspot", "r-busy", timedelta(minutes=15))
    clock = FakeClock(START)
    scheduler = Scheduler(settings.schedules, stores[1], Recorder(settings), now=clock)
    clock.advance(60)
    [fired] = scheduler.tick()
    assert fired.status == "skipped"
    run = stores[1].runs(limit=1, connection="hub", trigger="schedule:minutely")[0]
    assert (run.id, run.status, run.exit_code) == (fired.run_id, "skipped", 5)
    assert stores[1].last_slot("minutely").status == "skipped"
    # A busy connection does not stop the scheduler: once the lease is free, the next slot runs.
    hub.release_lease("sync:hubspot", "r-busy")
    clock.advance(60)
    assert [f.status for f in scheduler.tick()] == ["ok"]


def test_the_loop_sleeps_until_each_slot_and_survives_a_failing_run(
    settings: Settings, stores: list[StateStore]
) -> None:
    clock = FakeClock(START)
    real = Recorder(settings)
    failures = iter([True, False])

    def flaky(schedule: ScheduleSettings, slot: datetime) -> RunStarted:
        if next(failures):
            raise RuntimeError("boom")
        return real(schedule, slot)

    woke: list[datetime] = []

    def sleep(seconds: float) -> None:
        clock.advance(seconds)
        woke.append(clock())

    minute = START.replace(second=0)
    scheduler = Scheduler(settings.schedules, stores[0], flaky, now=clock, sleep=sleep)
    scheduler.run(stop=lambda: clock() >= minute + 3 * MINUTE)
    assert woke == [minute + n * MINUTE for n in (1, 2, 3)]  # woken exactly at each slot
    statuses = {s.slot_at: s.status for s in stores[0].slots("minutely")}
    # The failed start is recorded and the next slot runs; the loop stopped at 10:03.
    assert statuses == {minute + MINUTE: "error", minute + 2 * MINUTE: "ok"}
