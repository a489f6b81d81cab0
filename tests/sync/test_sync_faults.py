"""Faults and crashes: after re-running, the CRM ends as an undisturbed run leaves it.

Each test makes two identical seeded sandboxes: one synced without trouble (the reference),
one synced through a scripted fault or a SIGKILL, then run again until done. The crmsync-owned
fields and the set of tasks must match, with no duplicate task per contact and purpose. The
in-process runs of both share one ``now``: seeded stamps have second-level jitter, so a "within
N days" boundary may pass between two runs on a live clock and decide a contact differently.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crmsync.errors import ExitCode
from crmsync.sandbox.launch import build_sandbox
from crmsync.state import StateStore

from .conftest import ANCHOR, CRM_SHAPE, Crm, crm_state, task_identity

CONTACTS = 120


@pytest.fixture(params=["hubspot", "salesforce"])
def crm_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def run_now() -> datetime:
    """The rules' clock of every in-process run of one test (reference and disturbed)."""
    return datetime.now(UTC)  # noqa: TID251 - read once, then fixed for the whole comparison


def _reference(crm_name: str, tmp_path: Path, now: datetime) -> dict[str, Any]:
    server = build_sandbox(crm_name, contacts=CONTACTS, seed=7, anchor=ANCHOR)
    with server:
        workdir = tmp_path / "reference"
        workdir.mkdir()
        ref = Crm(crm_name, server, workdir, now=now)
        ref.quiet_rate_limits()
        ref.setup()
        server.reset()
        summary = ref.run(full=True)
        assert summary.exit_code == ExitCode.OK, summary.error
        return {**crm_state(ref), "calls": server.call_counts()["total"]}


def _assert_no_duplicate_tasks(crm: Crm) -> None:
    keys = Counter(task_identity(crm, t) for t in crm.tasks())
    assert [k for k, n in keys.items() if n > 1] == []


#: Where each CRM's task creates go (a lost answer there must not duplicate tasks).
TASK_CREATE_PATH = {"hubspot": "/crm/v3/objects/tasks/batch/create",
                    "salesforce": "/services/data/v59.0/composite/sobjects/Task"}


def faults_for(crm: str) -> dict[str, tuple[list[dict[str, Any]], set[ExitCode]]]:
    """Each scripted fault, and how the first (disturbed) run must end because of it."""
    status_field = CRM_SHAPE[crm]["status"]
    return {
        "rate_limited": ([{"method": "*", "path": "/", "after": 3, "times": 3,
                           "kind": "rate_limit", "retry_after": 0}], {ExitCode.OK}),
        "server_errors": ([{"method": "*", "path": "/", "after": 2, "times": 2, "status": 503}],
                          {ExitCode.OK}),
        "session_expired": ([{"method": "*", "path": "/", "after": 4, "times": 1,
                              "kind": "session_expired"}], {ExitCode.AUTH_OR_QUOTA}),
        "daily_limit": ([{"method": "*", "path": "/", "after": 5, "times": 1,
                          "kind": "daily_limit"}], {ExitCode.AUTH_OR_QUOTA}),
        "dropped_connection": ([{"method": "*", "path": "/", "after": 3, "times": 1,
                                 "kind": "disconnect"}], {ExitCode.OK}),
        "dropped_task_create": ([{"method": "*", "path": TASK_CREATE_PATH[crm], "times": 1,
                                  "kind": "disconnect"}], {ExitCode.OK}),
        # Lock contention may clear while the run is still going (retried then or next run).
        "locked_rows": ([{"method": "*", "path": "/", "times": 3, "kind": "reject_record",
                          "field": status_field, "error_code": "UNABLE_TO_LOCK_ROW"}],
                        {ExitCode.OK, ExitCode.PARTIAL}),
        # A validation rule refusing a record: the run is partial, the next run retries it.
        "rejected_records": ([{"method": "*", "path": "/", "times": 3, "kind": "reject_record",
                               "field": status_field,
                               "error_code": "FIELD_CUSTOM_VALIDATION_EXCEPTION"}],
                             {ExitCode.PARTIAL}),
    }


FAULT_NAMES = sorted(faults_for("hubspot"))


@pytest.mark.parametrize("fault", FAULT_NAMES)
def test_scripted_fault_then_rerun_equals_undisturbed_run(
    crm_name: str, fault: str, tmp_path: Path, run_now: datetime
) -> None:
    expected = _reference(crm_name, tmp_path, run_now)
    expected.pop("calls")
    server = build_sandbox(crm_name, contacts=CONTACTS, seed=7, anchor=ANCHOR)
    with server:
        crm = Crm(crm_name, server, tmp_path, now=run_now)
        crm.quiet_rate_limits()
        crm.setup()
        rules, expected_exit = faults_for(crm_name)[fault]
        server.install_faults({"rules": rules})
        first = crm.run(full=True)
        assert all(rule.fired for rule in server.faults.plan.rules), "the fault never happened"
        assert first.exit_code in expected_exit, first.error
        server.reset()
        for _ in range(3):
            summary = crm.run()
            if summary.exit_code == ExitCode.OK:
                break
        assert summary.exit_code == ExitCode.OK, summary.error
        assert crm_state(crm) == expected
        _assert_no_duplicate_tasks(crm)
        # Nothing is left to retry forever once the CRM state is right.
        with StateStore.open(f"sqlite:///{tmp_path / 'state.db'}") as store:
            streams = crm.streams
            assert [store.rejected_ids(s) for s in streams] == [[] for _ in streams]


@pytest.mark.parametrize("kill_at", [0.0, 0.3, 0.6, 0.9])
def test_sigkill_mid_run_then_rerun_equals_undisturbed_run(
    crm_name: str, kill_at: float, tmp_path: Path, run_now: datetime
) -> None:
    expected = _reference(crm_name, tmp_path, run_now)
    # Kill after this many API calls of the (equally long) undisturbed run.
    kill_after_calls = int(expected.pop("calls") * kill_at) + 1
    server = build_sandbox(crm_name, contacts=CONTACTS, seed=7, anchor=ANCHOR)
    with server:
        # The killed run is a `crmsync run` process on the wall clock (the command has no
        # --now); the full re-run below re-decides every contact at ``run_now``.
        crm = Crm(crm_name, server, tmp_path, now=run_now)
        crm.quiet_rate_limits()
        crm.setup()
        server.reset()
        # Slow every call down so the kill lands while the run is busy, not after it.
        server.install_faults({"latency_ms": 80})
        process = subprocess.Popen(
            [sys.executable, "-m", "crmsync", "run", "--full", "--config", str(crm.config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**os.environ, "CRMSYNC_LOG": "WARNING"},
        )
        deadline = time.monotonic() + 60
        while server.call_counts()["total"] < kill_after_calls:
            assert process.poll() is None, "the run ended before the kill point"
            assert time.monotonic() < deadline, "the run never reached the kill point"
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        server.reset()
        summary = crm.run(full=True)
        assert summary.exit_code == ExitCode.OK, summary.error
        assert crm_state(crm) == expected
        _assert_no_duplicate_tasks(crm)
