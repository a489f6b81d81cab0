"""The counts a run reports agree with what the CRM holds.

Each test reads the CRM itself (over the sandbox's admin API): a count that drifts from it is
a count a user cannot trust. (A plan against the run after it: ``test_trust_loop.py``.)
"""

from __future__ import annotations

from crmsync.errors import ExitCode

from .conftest import Crm


def test_updated_counts_the_writes_the_crm_took_not_the_ones_it_refused(crm: Crm) -> None:
    crm.setup()
    crm.server.install_faults({"rules": [
        {"method": "*", "path": "/", "times": 3, "kind": "reject_record",
         "field": crm.shape["status"], "error_code": "FIELD_CUSTOM_VALIDATION_EXCEPTION"}]})
    summary = crm.run(full=True)
    assert summary.exit_code == ExitCode.PARTIAL, summary.error
    written = sum(1 for c in crm.contacts() if c.get(crm.shape["status"]))
    assert summary.counts["rejected"] == 3
    assert summary.counts["updated"] == written == summary.counts["evaluated"] - 3
    assert summary.changes["status"] == written  # a first run sets every contact's status


def test_tasks_found_already_in_the_crm_are_not_counted_as_created(crm: Crm) -> None:
    crm.setup()
    first = crm.run(full=True)
    assert first.counts["tasks_created"] > 0
    # The store is lost: the next run finds the tasks already open instead of creating them.
    for path in crm.config.parent.glob("state.db*"):
        path.unlink()
    before = len(crm.tasks())
    again = crm.run(full=True)
    assert again.exit_code == ExitCode.OK, again.error
    assert len(crm.tasks()) == before
    assert again.counts["tasks_created"] == 0, again.counts
