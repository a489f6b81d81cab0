"""The scheduler loop: claim each due slot once, start its run, record how it ended.

Exactly-once per slot rests on the state store, not on this process: a slot is started only by
the caller whose INSERT of (schedule, slot) succeeded (:meth:`StateStore.claim_slot`), so two
schedulers sharing a store, or a scheduler restarted mid-way, never start one slot twice.

Missed slots: after a restart (the schedule has fired before), only the *latest* slot that came
due while the scheduler was down is fired, once; older ones are skipped (a sync run catches up on
everything since its cursor anyway). A schedule that has never fired starts with the first slot
at or after the scheduler's start, so installing a nightly schedule at noon does not run it at
once. A slot whose run died mid-way is not fired again: its run's lease is taken over by the next
slot's run, which finishes the work.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from crmsync.config import ScheduleSettings
from crmsync.errors import CrmsyncError
from crmsync.schedule.runner import RunStarted, StartRun
from crmsync.schedule.timing import latest_slot, next_slot
from crmsync.state import StateError, StateStore

log = logging.getLogger("crmsync.schedule")


@dataclass(frozen=True, slots=True)
class Fired:
    """A slot this scheduler claimed and started: which run, and how it ended."""

    schedule: str
    slot: datetime
    run_id: str | None
    status: str


class Scheduler:
    """Start each enabled schedule's due slots, once across every scheduler sharing ``store``.

    Args:
        schedules: The configured schedules, by name (disabled ones never fire).
        store: The state store holding slot claims (the shared ``[state] url``).
        start_run: Starts one run for ``(schedule, slot)`` and returns how it ended: a run in
            this process (:func:`crmsync.schedule.local_starter`) or one sent to workers.
        now: The clock (aware UTC); tests pass a fake one.
        sleep: Waits between ticks; tests pass one that moves the fake clock.
        holder: Who claims slots, as recorded (default ``scheduler@host:pid``).
        max_sleep: Longest wait between ticks in seconds (configuration is read once; the
            clock is re-read every tick, so a suspended machine catches up on wake).
        start_with_latest: Let a schedule that never fired fire its latest slot at once, even
            one before this start (``crmsync scheduler --once`` from cron needs it).
    """

    def __init__(
        self,
        schedules: Mapping[str, ScheduleSettings],
        store: StateStore,
        start_run: StartRun,
        *,
        now: Callable[[], datetime],
        sleep: Callable[[float], None] = time.sleep,
        holder: str | None = None,
        max_sleep: float = 60.0,
        start_with_latest: bool = False,
    ) -> None:
        self.schedules = dict(schedules)
        self.store = store
        self._start_run = start_run
        self._now = now
        self._sleep = sleep
        self.holder = holder or f"scheduler@{socket.gethostname()}:{os.getpid()}"
        self.max_sleep = max_sleep
        self.started_at = now()
        self.start_with_latest = start_with_latest
        self._seen: dict[str, datetime] = {}  # the latest slot this process already tried

    @property
    def enabled(self) -> list[ScheduleSettings]:
        """The schedules that fire, by name."""
        return [s for _, s in sorted(self.schedules.items()) if s.enabled]

    def tick(self) -> list[Fired]:
        """Fire every enabled schedule whose latest slot is due and unclaimed; return them."""
        fired = []
        paused = self.store.paused_schedules()
        for schedule in self.enabled:
            if schedule.name in paused:
                continue  # paused by an admin: its slots pass unclaimed until resumed
            slot = latest_slot(schedule, self._now())
            if self._seen.get(schedule.name) == slot:
                continue
            if (not self.start_with_latest and slot < self.started_at
                    and self.store.last_slot(schedule.name) is None):
                continue  # never fired before: start with the slots after this start
            claimed = self.store.claim_slot(schedule.name, slot, self.holder)
            # Remembered only once the store answered: after an outage the claim is retried.
            self._seen[schedule.name] = slot
            if not claimed:
                continue  # another scheduler (or this one before a restart) has it
            fired.append(self._fire(schedule, slot))
        return fired

    def _fire(self, schedule: ScheduleSettings, slot: datetime) -> Fired:
        log.info("schedule %s: starting the %sZ slot", schedule.name, f"{slot:%Y-%m-%d %H:%M}")
        try:
            started = self._start_run(schedule, slot)
        except StateError:
            raise
        except CrmsyncError as error:  # bad config or rules: say so, keep the other schedules
            log.error("schedule %s: run not started: %s", schedule.name, error)
            started = RunStarted(None, "error", int(error.exit_code))
        except Exception as error:  # a bug must not stop every schedule; the type only (PII)
            log.error("schedule %s: run not started: %s", schedule.name, type(error).__name__)
            started = RunStarted(None, "error", 1)
        self.store.settle_slot(schedule.name, slot, status=started.status,
                               run_id=started.run_id)
        log.info("schedule %s: run %s %s", schedule.name, started.run_id or "-", started.status)
        return Fired(schedule.name, slot, started.run_id, started.status)

    def seconds_to_next(self) -> float:
        """Seconds until the soonest next slot of an enabled schedule (at most ``max_sleep``)."""
        now = self._now()
        waits = [(next_slot(s, now) - now).total_seconds() for s in self.enabled]
        return max(0.0, min([self.max_sleep, *waits]))

    def run(
        self, stop: Callable[[], bool] = lambda: False,
        on_fired: Callable[[Fired], None] | None = None,
    ) -> None:
        """Tick until ``stop()`` says so; a state store outage is logged and waited out."""
        while not stop():
            try:
                for fired in self.tick():
                    if on_fired is not None:
                        on_fired(fired)
            except StateError as error:
                log.error("scheduler: state store failed, retrying: %s", error)
                self._sleep(min(self.max_sleep, 30.0))
                continue
            if stop():
                return
            self._sleep(self.seconds_to_next())
