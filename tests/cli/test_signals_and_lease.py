"""Operating crmsync from a scheduler: SIGTERM, overlapping runs, undo against a live run.

Everything runs the real ``crmsync`` process (or the CLI in-process for the lease checks)
against the sandbox through the real SDKs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from crmsync.cli import main
from crmsync.errors import ExitCode
from crmsync.sandbox.launch import build_sandbox
from crmsync.state import StateStore
from sync.conftest import ANCHOR, Crm


def _store(crm: Crm) -> StateStore:
    return StateStore.open(f"sqlite:///{(crm.workdir / 'state.db').as_posix()}")


@pytest.mark.parametrize("crm_name", ["hubspot", "salesforce"])
def test_sigterm_mid_run_is_an_abort_exit_143_and_the_next_run_proceeds(
    crm_name: str, tmp_path: Path
) -> None:
    server = build_sandbox(crm_name, contacts=400, seed=7, anchor=ANCHOR)
    with server:
        crm = Crm(crm_name, server, tmp_path)
        crm.quiet_rate_limits()
        crm.setup()
        server.reset()
        # Slow every call so the signal lands while the run is busy, not after it.
        server.install_faults({"latency_ms": 60})
        process = subprocess.Popen(
            [sys.executable, "-m", "crmsync", "run", "--full", "--config", str(crm.config)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
        )
        deadline = time.monotonic() + 60
        while server.call_counts()["total"] < 4:
            assert process.poll() is None, "the run ended before the signal"
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.005)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 143, err
        assert "Traceback" not in err
        assert err.strip().splitlines()[-1] == "crmsync: stopped by SIGTERM"

        store = _store(crm)
        try:
            [stopped] = store.runs(limit=1)
            assert (stopped.status, stopped.exit_code) == ("aborted", 143)
            assert "SIGTERM" in (stopped.error or "")
        finally:
            store.close()
        # The lease went with it: the next run is not "skipped", and it finishes the job.
        server.install_faults({"latency_ms": 0})
        summary = crm.run()
        assert summary.status == "ok", summary.error


def _hold_lease(crm: Crm, crm_name: str) -> str:
    """Start a run in the ledger and take the CRM's lease for it (a run in progress)."""
    store = _store(crm)
    try:
        run_id = store.start_run(crm_name, "run")
        assert store.acquire_lease(f"sync:{crm_name}", run_id, timedelta(minutes=5)) is None
        return run_id
    finally:
        store.close()


def _release(crm: Crm, crm_name: str, run_id: str) -> None:
    store = _store(crm)
    try:
        store.release_lease(f"sync:{crm_name}", run_id)
    finally:
        store.close()


def test_a_second_run_while_one_holds_the_lease_is_one_line_and_exit_5(crm: Crm) -> None:
    crm.setup()
    crm.server.reset()
    holder = _hold_lease(crm, crm.crm)
    result = CliRunner().invoke(main, ["run", "--config", str(crm.config)])
    assert result.exit_code == ExitCode.BUSY == 5
    assert result.stdout == "", "no table, no summary"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"crmsync: error: another run ({holder}, started ")
    assert lines[0].endswith("is syncing this CRM; nothing done")
    assert crm.server.call_counts()["writes"] == 0

    as_json = CliRunner().invoke(main, ["run", "--config", str(crm.config), "--output", "json"])
    payload = json.loads(as_json.stdout)
    assert (payload["error"], payload["exit_code"]) == ("busy", 5)
    assert holder in payload["message"]


def test_undo_takes_the_run_lease_and_says_so_when_it_cannot(crm: Crm) -> None:
    crm.setup()
    done = crm.run()
    assert done.counts["field_writes"] > 0
    holder = _hold_lease(crm, crm.crm)
    crm.server.reset()
    result = CliRunner().invoke(main, ["undo", done.run_id, "--config", str(crm.config)])
    assert result.exit_code == ExitCode.BUSY
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and holder in lines[0] and "nothing done" in lines[0], lines
    assert crm.server.call_counts()["writes"] == 0, "undo wrote alongside a run"

    # Once the run is gone, undo goes ahead (and releases the lease: a run can follow).
    _release(crm, crm.crm, holder)
    result = CliRunner().invoke(main, ["undo", done.run_id, "--config", str(crm.config),
                                       "--output", "json"])
    assert result.exit_code == ExitCode.OK, result.output
    assert json.loads(result.stdout)["restored"] > 0
    assert crm.run().status == "ok"
