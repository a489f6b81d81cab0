"""Fixtures for end-to-end sync tests: a seeded sandbox CRM and settings pointing at it."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crmsync.config import load_settings
from crmsync.sandbox.launch import build_sandbox
from crmsync.sandbox.server import SandboxServer
from crmsync.sync import RunSummary, SyncOptions, SyncRun
from crmsync.wiring import load_parts

ANCHOR = datetime(2026, 11, 23, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]

#: How each CRM names the objects and fields the assertions look at.
CRM_SHAPE: dict[str, dict[str, Any]] = {
    "hubspot": {
        "contacts": ["contacts"],
        "task_object": "tasks",
        "status": "crmsync_status",
        "score": "crmsync_score",
        "reason": "crmsync_reason",
        "override": "crmsync_status_override",
        "edit_hot": {"trial_signup": "true", "pricing_page_views": "9"},
    },
    "salesforce": {
        "contacts": ["Lead", "Contact"],
        "task_object": "Task",
        "status": "Crmsync_Status__c",
        "score": "Crmsync_Score__c",
        "reason": "Crmsync_Reason__c",
        "override": "Crmsync_Status_Override__c",
        "edit_hot": {"Trial_Signup__c": True, "Pricing_Page_Views__c": 9},
    },
}


class Crm:
    """A running sandbox plus what the tests need to inspect and drive it."""

    def __init__(
        self, crm: str, server: SandboxServer, workdir: Path, *, now: datetime | None = None
    ) -> None:
        self.crm = crm
        #: The rules' clock for every run (None: the wall clock). Tests that compare runs fix
        #: it, so a "within N days" boundary passing between two runs cannot tell them apart.
        self.now = now
        self.server = server
        self.shape = CRM_SHAPE[crm]
        self.workdir = workdir
        self.config = workdir / "crmsync.toml"
        self.config.write_text(
            f'[crm]\ntype = "{crm}"\nbase_url = "{server.base_url}"\ntoken = "{server.token}"\n'
            f'[rules]\npath = "{(ROOT / "rules/default.json").as_posix()}"\n'
            f'[state]\nurl = "sqlite:///{(workdir / "state.db").as_posix()}"\n',
            "utf-8",
        )

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.server.base_url}/_sandbox/{path}", data=data, method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def records(self, object_type: str) -> list[dict[str, Any]]:
        """All records of one object type, each flattened to ``{"id":..., field: value}``."""
        raw = self.admin("GET", f"records/{object_type}")
        rows = raw.get("results") or raw.get("records") or [] if isinstance(raw, dict) else raw
        out = []
        for row in rows:
            flat = dict(row.get("properties", {})) if "properties" in row else dict(row)
            flat["id"] = row.get("id") or row.get("Id")
            if "associations" in row:
                flat["associations"] = row["associations"]
            out.append(flat)
        return out

    @property
    def streams(self) -> list[str]:
        """The sync's streams in this CRM (as the state store names them)."""
        if self.crm == "hubspot":
            return ["hubspot:contacts"]
        return ["salesforce:Lead", "salesforce:Contact"]

    def contacts(self) -> list[dict[str, Any]]:
        return [r for obj in self.shape["contacts"] for r in self.records(obj)]

    def tasks(self) -> list[dict[str, Any]]:
        """crmsync's tasks only (the seeded CRM also holds reps' own activity history)."""
        return [t for t in self.records(self.shape["task_object"]) if task_identity(self, t)[1]]

    def task_identities(self) -> list[tuple[Any, ...]]:
        return [task_identity(self, t) for t in self.tasks()]

    @property
    def closed_task_status(self) -> str:
        return "COMPLETED" if self.crm == "hubspot" else "Completed"

    def edit(self, record_id: str, changes: dict[str, Any]) -> None:
        """A rep's edit in the CRM UI: changes fields and moves the modification time."""
        for obj in self.shape["contacts"]:
            ids = {r["id"] for r in self.records(obj)}
            if record_id in ids:
                body = {"properties": changes} if self.crm == "hubspot" else changes
                self.admin("PATCH", f"records/{obj}/{record_id}", body)
                return
        raise KeyError(record_id)

    def edit_all(self, changes: dict[str, Any]) -> None:
        """The same rep edit on every contact (one admin call each, no re-listing)."""
        body = {"properties": changes} if self.crm == "hubspot" else changes
        for obj in self.shape["contacts"]:
            for record in self.records(obj):
                self.admin("PATCH", f"records/{obj}/{record['id']}", body)

    def quiet_rate_limits(self) -> None:
        """Lift the emulated quotas, for tests about something else than pacing."""
        if self.crm == "hubspot":
            self.admin("POST", "config", {"rate_limits": {"enabled": False}})

    def run(self, *, now: datetime | None = None, **options: Any) -> RunSummary:
        """One in-process sync run with the settings file (at ``now``, else ``self.now``)."""
        parts = load_parts(load_settings(self.config, env={}))
        try:
            return SyncRun(parts.connector, parts.ruleset, parts.store, now=now or self.now,
                           options=SyncOptions(**options)).execute()
        finally:
            parts.close()

    def setup(self) -> None:
        parts = load_parts(load_settings(self.config, env={}))
        try:
            parts.connector.setup()
        finally:
            parts.close()


@pytest.fixture(params=["hubspot", "salesforce"])
def crm(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Crm]:
    server = build_sandbox(request.param, contacts=150, seed=7, anchor=ANCHOR)
    with server:
        crm = Crm(request.param, server, tmp_path)
        crm.quiet_rate_limits()
        yield crm


def crm_state(crm: Crm) -> dict[str, Any]:
    """The CRM state a sync is responsible for, with run-dependent timestamps left out."""
    status, reason = crm.shape["status"], crm.shape["reason"]
    contacts = {r["id"]: (r.get(status), r.get(reason)) for r in crm.contacts()}
    return {"contacts": contacts, "tasks": task_signature(crm)}


def task_identity(crm: Crm, task: dict[str, Any]) -> tuple[Any, ...]:
    """What makes two tasks "the same task": the contact it is for and its purpose key."""
    if crm.crm == "hubspot":
        contacts = tuple(sorted(a["id"] for a in task.get("associations", {}).get("contacts", [])))
        body = task.get("hs_task_body") or ""
        key = body.rpartition("crmsync-key:")[2].split()[0] if "crmsync-key:" in body else None
        return (contacts, key, task.get("hs_task_status"))
    return (task.get("WhoId"), task.get("Crmsync_Task_Key__c"), task.get("Status"))


def task_signature(crm: Crm) -> list[tuple[Any, ...]]:
    """The sorted identities of every task in the CRM."""
    return sorted(task_identity(crm, t) for t in crm.tasks())
