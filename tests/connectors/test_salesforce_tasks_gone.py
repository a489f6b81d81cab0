"""Closing a crmsync task that a rep deleted in Salesforce counts as done (#13.11).

The task is created through the connector, deleted through the real simple-salesforce client
(as a rep's delete reaches the org), then closed through the connector against the sandbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from simple_salesforce import Salesforce

from crmsync.connectors.salesforce import SalesforceConnector
from crmsync.connectors.transport import salesforce_session
from crmsync.model import TaskClose, TaskCreate, TaskSpec

CONTACT = "salesforce:Contact"

pytestmark = pytest.mark.filterwarnings(
    "ignore:The 'initial' parameter is deprecated:DeprecationWarning")


@pytest.fixture
def rep(salesforce_server: Any) -> Iterator[Salesforce]:
    """A simple-salesforce client standing in for a rep working in the org."""
    session, instance_url = salesforce_session(salesforce_server.base_url)
    sf = Salesforce(instance_url=instance_url, session_id=salesforce_server.token,
                    session=session, version="59.0")
    yield sf
    session.close()


def _open_task(connector: SalesforceConnector, contact: Any, key: str) -> str:
    spec = TaskSpec(purpose="follow_up", subject="Call back", body="Rule R7 fired",
                    due=date(2026, 11, 30), priority="high")
    (created,) = connector.create_tasks([TaskCreate(contact.id, "Contact", key, spec)])
    assert created.ok and created.task_id
    return str(created.task_id)


def test_closing_a_task_the_rep_deleted_is_done_not_a_rejection(
    salesforce_connector: SalesforceConnector, rep: Salesforce,
) -> None:
    contacts = next(iter(salesforce_connector.read(CONTACT, None))).contacts
    deleted = _open_task(salesforce_connector, contacts[0], "k-deleted")
    kept = _open_task(salesforce_connector, contacts[1], "k-kept")
    rep.Task.delete(deleted)  # in the recycle bin now: updates answer ENTITY_IS_DELETED
    # Past the recycle bin (purged): an id of the right type the org no longer knows.
    purged = "00T5g0000099999AAA"
    results = salesforce_connector.close_tasks([
        TaskClose(contacts[0].id, "Contact", "k-deleted", deleted),
        TaskClose(contacts[1].id, "Contact", "k-kept", kept),
        TaskClose(contacts[2].id, "Contact", "k-purged", purged),
    ])
    assert [(r.ok, r.key, r.task_id, r.error_code) for r in results] == [
        (True, "k-deleted", deleted, None), (True, "k-kept", kept, None),
        (True, "k-purged", purged, None)]
    assert rep.Task.get(kept)["IsClosed"] is True


def test_closing_a_task_with_a_malformed_id_is_still_a_rejection(
    salesforce_connector: SalesforceConnector,
) -> None:
    # A malformed id is not what Salesforce answers for a deleted task: it means the stored id
    # is wrong, which must stay visible rather than be counted as done.
    contact = next(iter(salesforce_connector.read(CONTACT, None))).contacts[0]
    (result,) = salesforce_connector.close_tasks(
        [TaskClose(contact.id, "Contact", "k-bad", contact.id)])  # a Contact id, not a Task's
    assert (result.ok, result.error_code, result.retryable) == (False, "MALFORMED_ID", False)
