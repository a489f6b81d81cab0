"""End-to-end sync against both sandbox CRMs through the real SDKs: DESIGN.md §5 promises."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from crmsync.errors import ExitCode
from crmsync.model import STATUSES
from crmsync.sandbox.launch import build_sandbox

from .conftest import ANCHOR, Crm


@pytest.fixture(params=["hubspot", "salesforce"])
def crm_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_first_full_run_decides_every_contact_and_creates_tasks(crm: Crm) -> None:
    crm.setup()
    summary = crm.run(full=True)
    assert summary.exit_code == ExitCode.OK, summary.error
    contacts = crm.contacts()
    statuses = Counter(c.get(crm.shape["status"]) for c in contacts)
    assert set(statuses) <= set(STATUSES)
    assert sum(statuses.values()) == len(contacts) == summary.counts["evaluated"]
    # The seeded mix covers the whole funnel.
    assert {"lead", "opportunity", "disqualified"} <= set(statuses)
    assert all(c.get(crm.shape["reason"]) for c in contacts)
    assert summary.counts["tasks_created"] > 0
    assert len(crm.tasks()) == summary.counts["tasks_created"]


def test_repeated_run_writes_nothing(crm: Crm) -> None:
    crm.setup()
    crm.run(full=True)
    crm.server.reset()
    again = crm.run()
    assert again.exit_code == ExitCode.OK, again.error
    assert crm.server.call_counts()["writes"] == 0
    assert again.counts.get("updated", 0) == 0
    crm.server.reset()
    full_again = crm.run(full=True)
    assert full_again.counts.get("updated", 0) == 0
    assert crm.server.call_counts()["writes"] == 0


def test_incremental_run_touches_only_what_changed(crm: Crm) -> None:
    # No overlap window: everything here happens within seconds, and the default five-minute
    # overlap would (rightly) re-read it all.
    quick = timedelta(0)
    crm.setup()
    crm.run(full=True)
    echo = crm.run(overlap=quick)
    # crmsync's own writes moved the records' modification times, so the next run reads them
    # once more — and writes nothing.
    assert echo.counts.get("updated", 0) == 0
    # SOQL datetime literals have whole seconds, so a read re-reads the cursor's own second;
    # let it pass so "the edited ones" is exact.
    time.sleep(1.1)
    cold = [c for c in crm.contacts() if c.get(crm.shape["status"]) == "lead"][:3]
    for contact in cold:
        crm.edit(contact["id"], crm.shape["edit_hot"])
    crm.server.reset()
    summary = crm.run(overlap=quick)
    assert summary.exit_code == ExitCode.OK, summary.error
    assert 3 <= summary.counts["evaluated"] <= 3 + 2  # the edited ones, plus cursor-tie re-reads
    score = crm.shape["score"]
    after = {c["id"]: c for c in crm.contacts()}
    # A trial signup and nine pricing-page views are buying signals: every score goes up.
    assert all(float(after[c["id"]][score]) > float(c[score]) for c in cold)
    assert crm.server.call_counts()["writes"] <= 2


def test_plan_is_a_dry_run(crm: Crm) -> None:
    crm.setup()
    crm.server.reset()
    summary = crm.run(dry_run=True, full=True)
    assert summary.counts["updated"] == summary.counts["evaluated"] > 0
    assert crm.server.call_counts()["writes"] == 0
    assert all(not c.get(crm.shape["status"]) for c in crm.contacts())


def test_rep_override_wins(crm: Crm) -> None:
    crm.setup()
    crm.run(full=True)
    target = next(c for c in crm.contacts() if c.get(crm.shape["status"]) == "lead")
    crm.edit(target["id"], {crm.shape["override"]: "disqualified"})
    crm.run()
    after = {c["id"]: c for c in crm.contacts()}
    assert after[target["id"]].get(crm.shape["status"]) == "disqualified"


def test_incremental_run_over_many_pages_misses_nobody(tmp_path: Path, crm_name: str) -> None:
    """Writing page by page moves records to the end of a modification-ordered read; a read
    that paged by offset would skip as many unread ones (found in review, HubSpot search)."""
    server = build_sandbox(crm_name, contacts=2000, seed=3, anchor=ANCHOR)
    with server:
        crm = Crm(crm_name, server, tmp_path)
        crm.quiet_rate_limits()
        if crm_name == "salesforce":
            crm.admin("POST", "config", {"page_size": 200})
        crm.setup()
        assert crm.run(full=True).exit_code == ExitCode.OK
        time.sleep(1.1)  # let the edits below land after the cursor's second
        reason = crm.shape["reason"]
        crm.edit_all({reason: "stale"})
        summary = crm.run(overlap=timedelta(0))
        assert summary.exit_code == ExitCode.OK, summary.error
        assert [c["id"] for c in crm.contacts() if c.get(reason) == "stale"] == []


def _follow_up_needed_twice(
    crm: Crm,
) -> tuple[str, object, Callable[[], dict[object, object]]]:
    """A contact whose follow-up was created, closed (no longer needed) and is needed again.

    Returns the contact's id, its first task's key and a reader of its crmsync tasks' statuses
    by key.
    """
    crm.setup()
    crm.run(full=True)
    miss = crm.shape["status"].replace("status", "miss_type").replace("Status", "Miss_Type")
    contact = next(c for c in crm.contacts()
                   if c.get(crm.shape["status"]) == "lead" and c.get(miss) == "none")
    override = crm.shape["override"]

    def statuses() -> dict[object, object]:
        return {key: status for ids, key, status in crm.task_identities()
                if contact["id"] in (ids if isinstance(ids, tuple) else (ids,))}

    crm.edit(contact["id"], {override: "opportunity"})
    crm.run()
    [first_key] = statuses()
    assert statuses()[first_key] != crm.closed_task_status
    for status in ("lead", "opportunity"):  # no longer needed: closed; then needed again
        crm.edit(contact["id"], {override: status})
        crm.run()
    return contact["id"], first_key, statuses


def test_a_follow_up_needed_again_is_a_new_task_not_the_closed_one_reopened(crm: Crm) -> None:
    _, first_key, statuses = _follow_up_needed_twice(crm)
    assert statuses()[first_key] == crm.closed_task_status  # stays done
    still_open = [key for key, status in statuses().items() if status != crm.closed_task_status]
    assert len(still_open) == 1 and still_open[0] != first_key


def test_a_lost_store_learns_the_crms_tasks_and_creates_none_twice(crm: Crm) -> None:
    contact_id, _, statuses = _follow_up_needed_twice(crm)
    for _ in range(3):  # until the echo of its own writes moves nothing more
        if not crm.run(full=True).counts["updated"]:
            break
    before = statuses()
    assert list(before.values()).count(crm.closed_task_status) >= 1  # a purpose's generation ≥ 1
    tasks = len(crm.tasks())
    for path in crm.config.parent.glob("state.db*"):
        path.unlink()
    again = crm.run()
    assert again.exit_code == ExitCode.OK, again.error
    assert (statuses(), len(crm.tasks())) == (before, tasks)  # nothing created, none reopened
    assert again.counts["tasks_created"] == 0
    assert again.counts["tasks_found"] > 0
    # The store knows the purpose's history again: needed a third time, it is a third task.
    override = crm.shape["override"]
    for status in ("lead", "opportunity"):
        crm.edit(contact_id, {override: status})
        crm.run()
    after = statuses()
    assert {k: after[k] for k in before} == {k: crm.closed_task_status for k in before}
    assert len(after) == len(before) + 1
