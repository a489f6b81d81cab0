"""A console over a real state store filled by real sandbox runs (no mocks)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from crmsync.console import Console, create_app
from crmsync.sandbox.launch import build_sandbox
from sync.conftest import ANCHOR, Crm

#: A schedule the Schedules page lists (`every` far apart: no slot fires during a test).
SCHEDULE = '[schedules.nightly]\nconnection = "default"\nevery = "1d"\n'


@dataclass
class History:
    """A sandbox CRM with a recorded history: a dry run, a run the CRM partly refused, and the
    run after it that wrote the refused records."""

    crm: Crm
    plan_id: str
    partial_id: str
    ok_id: str
    ok_transitions: dict[str, int]
    #: Each contact's status before the clean run (what undoing it restores).
    before_ok: dict[str, object]


def make_history(crm: Crm) -> History:
    """Set up the CRM's fields and record a dry run, a partial run and a clean run."""
    crm.config.write_text(crm.config.read_text("utf-8") + SCHEDULE, "utf-8")
    crm.setup()
    plan_id = crm.run(dry_run=True).run_id
    crm.server.install_faults({"rules": [{
        "method": "*", "path": "/", "times": None, "kind": "reject_record",
        "field": crm.shape["status"], "error_code": "FIELD_CUSTOM_VALIDATION_EXCEPTION"}]})
    partial = crm.run()
    assert partial.status == "partial" and partial.counts["rejected"] > 0
    crm.server.install_faults({"rules": []})
    before = {c["id"]: c.get(crm.shape["status"]) for c in crm.contacts()}
    ok = crm.run()
    assert ok.status == "ok" and ok.transitions
    return History(crm, plan_id, partial.run_id, ok.run_id, dict(ok.transitions), before)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    """One HubSpot sandbox history shared by the read-only page tests of a module."""
    server = build_sandbox("hubspot", contacts=150, seed=7, anchor=ANCHOR)
    with server:
        crm = Crm("hubspot", server, tmp_path_factory.mktemp("console"))
        crm.quiet_rate_limits()
        yield make_history(crm)


@contextmanager
def _fresh(crm_type: str, workdir: Path) -> Iterator[History]:
    server = build_sandbox(crm_type, contacts=60, seed=11, anchor=ANCHOR)
    with server:
        crm = Crm(crm_type, server, workdir)
        crm.quiet_rate_limits()
        yield make_history(crm)


@pytest.fixture(params=["hubspot", "salesforce"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[History]:
    """A history of its own in each CRM, for tests that write (undo, pause, run now)."""
    with _fresh(request.param, tmp_path) as history:
        yield history


@pytest.fixture
def fresh_hubspot(tmp_path: Path) -> Iterator[History]:
    """A HubSpot history of its own (the browser's undo test reads it back with its SDK)."""
    with _fresh("hubspot", tmp_path) as history:
        yield history


@pytest.fixture
def client(history: History) -> Iterator[TestClient]:
    """A TestClient on a console over ``history``'s settings file (no login: loopback)."""
    console = Console(history.crm.config)
    with TestClient(create_app(console), base_url="http://127.0.0.1") as test_client:
        yield test_client
