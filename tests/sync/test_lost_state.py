"""A lost or separate state store must not duplicate tasks: the CRM has the last word (#13.2).

A new machine, a wiped folder, or two hosts with their own stores: the next run plans every
open task again, and the connector must find each one in the CRM instead of creating it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crmsync.errors import ExitCode

from .conftest import Crm, task_signature


def test_a_wiped_state_store_creates_no_duplicate_tasks(crm: Crm) -> None:
    crm.setup()
    # Every run decides at one rules clock, so any new task would be a duplicate, not a "within
    # N days" boundary that passed between them. The clock is an hour ahead: a run reads what
    # changed before its start, and the first run's own writes must count as before the
    # second's.
    now = datetime.now(UTC) + timedelta(hours=1)  # noqa: TID251 - read once, then fixed
    first = crm.run(full=True, now=now)
    assert first.exit_code == ExitCode.OK, first.error
    before = task_signature(crm)
    open_before = [t for t in before if t[2] != crm.closed_task_status]
    assert open_before  # the seeded org needs follow-ups

    (crm.workdir / "state.db").unlink()  # a new StateStore: nothing recorded locally
    crm.server.reset()
    second = crm.run(now=now)
    assert second.exit_code == ExitCode.OK, second.error
    assert task_signature(crm) == before  # zero new tasks, the same open ones
    if crm.crm == "hubspot":
        by_endpoint = crm.server.call_counts()["by_endpoint"]
        assert "POST /crm/v3/objects/tasks/batch/create" not in by_endpoint
    # The run knows the tasks again, by their CRM ids: a third run plans nothing.
    crm.server.reset()
    third = crm.run(full=True, now=now)
    assert third.counts.get("planned_task_creates", 0) == 0
    assert task_signature(crm) == before
