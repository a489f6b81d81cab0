"""Tasks a lost state store forgot, learned from the CRM before a page is planned.

A task's key carries its generation: how many tasks of that purpose the contact had closed
before (``crmsync.plan.task_key``). That count lives in the state store. A store that was lost
(or a new one pointed at a CRM crmsync already worked on) knows no task of any contact, so it
would plan generation 0 for every purpose: a task already open under a later generation would
get a second one, and on Salesforce the upsert by key would reopen the closed generation-0
task. So, before a page is planned, the tasks of the contacts crmsync decided before but the
store has no record of are read from the CRM, matched to their purpose and generation by key,
and recorded as they are (open or closed); planning then sees what the CRM holds.

This costs nothing on a store that knows its contacts: a contact with a stored decision is
never looked up, and neither is one the CRM holds no crmsync status for (never decided).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence

from crmsync.connectors.base import Connector, FoundTask
from crmsync.model import Contact
from crmsync.plan import task_key
from crmsync.state import ContactState, StateStore

#: Generations tried beyond the number of a contact's crmsync tasks the CRM holds (a rep may
#: have deleted some, leaving gaps in the count).
SPARE_GENERATIONS = 3


def forgotten(contacts: Sequence[Contact], states: Mapping[str, ContactState]) -> list[Contact]:
    """The contacts the CRM holds a crmsync status for and the store has no decision of."""
    return [c for c in contacts if c.id not in states and c.outputs.get("status")]


def adopt_forgotten_tasks(
    connector: Connector, store: StateStore, run_id: str, stream: str,
    contacts: Sequence[Contact], purposes: Collection[str],
) -> tuple[int, int]:
    """Record the crmsync tasks the CRM holds for ``contacts``; return (recorded, open).

    ``purposes``: those of the rule set's tasks (a key made for another purpose, by an older
    rule file, matches none and is left alone, as the store would have left it).
    """
    if not contacts or not purposes:
        return 0, 0
    found_by_contact: dict[str, list[FoundTask]] = defaultdict(list)
    for task in connector.crmsync_tasks([c.id for c in contacts]):
        found_by_contact[task.contact_id].append(task)
    rows = []
    for contact_id, found in found_by_contact.items():
        generations = len(found) + SPARE_GENERATIONS
        purpose_of = {task_key(contact_id, purpose, generation): purpose
                      for purpose in purposes for generation in range(generations)}
        rows.extend((contact_id, purpose_of[task.key], task.key, task.task_id, task.open)
                    for task in found if task.key in purpose_of)
    store.adopt_tasks(run_id, stream, rows)
    return len(rows), sum(1 for row in rows if row[4])
