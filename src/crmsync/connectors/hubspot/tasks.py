"""crmsync's HubSpot tasks: create (associated with the contact), find by key, close.

Tasks go through ``batch/create`` with the contact association inline and the task key hidden
at the end of the body (``<!-- crmsync-key:KEY -->``). A create whose outcome is unknown (5xx,
timeout, dropped connection) is never re-sent blindly: the connector first looks for the keys it
sent and only re-creates the missing ones.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from datetime import time as dtime
from typing import Any

from crmsync.connectors.base import FoundTask, WriteResult, chunks
from crmsync.connectors.fieldmap import FieldMap
from crmsync.connectors.hubspot.client import HubSpotClient
from crmsync.connectors.hubspot.errors import _Rejected, _Unsure
from crmsync.connectors.hubspot.reading import ContactReader
from crmsync.connectors.hubspot.wire import (
    BATCH,
    IN_VALUES,
    KEY_LOOKUP,
    KEY_MARK,
    RETRYABLE,
    SEARCH_PAGE,
    SETTLE_S,
    TASK_TO_CONTACT,
    _iso,
    _next_after,
    _props,
    _results,
    task_key,
    task_key_field,
)
from crmsync.connectors.hubspot.writing import FieldWriter, batch_errors
from crmsync.model import TaskClose, TaskCreate

log = logging.getLogger("crmsync.connectors.hubspot")


class TaskWriter:
    """Creates, finds and closes crmsync's tasks."""

    def __init__(
        self, client: HubSpotClient, fieldmap: FieldMap, *, reader: ContactReader,
        writer: FieldWriter, owner_fallback: str | None,
    ) -> None:
        self._http = client
        self._raw = client.raw
        self.fieldmap = fieldmap
        self._reader = reader
        self._writer = writer
        self.owner_fallback = owner_fallback
        #: The task property holding crmsync's task key (created by ``setup``).
        self.key_field = task_key_field(fieldmap)

    def _task_input(self, create: TaskCreate) -> dict[str, Any]:
        tasks = self.fieldmap.tasks
        f = tasks.fields
        spec = create.spec
        due = datetime.combine(spec.due, dtime(12, 0), tzinfo=UTC)
        values: dict[str, str] = {
            f.get("subject", "hs_task_subject"): spec.subject,
            f.get("body", "hs_task_body"): f"{spec.body}\n{KEY_MARK.format(key=create.key)}",
            f.get("due", "hs_timestamp"): _iso(due),
            f.get("status", "hs_task_status"): tasks.open_status,
            f.get("priority", "hs_task_priority"): tasks.priority_values.get(spec.priority,
                                                                             spec.priority),
        }
        # The key twice: in its own property (searchable, what lookups use) and in the body,
        # where older crmsync versions look for it.
        values[self.key_field] = create.key
        if "type" in f:
            values[f["type"]] = "TODO"
        owner = create.owner_id or self.owner_fallback
        if owner:
            values[f.get("owner", "hubspot_owner_id")] = owner
        return {
            "properties": values,
            "associations": [{"to": {"id": create.contact_id}, "types": [
                {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": TASK_TO_CONTACT}]}],
        }

    def create_tasks(self, creates: Sequence[TaskCreate]) -> list[WriteResult]:
        """Create tasks with ``batch/create`` (100 a call), associated with their contacts.

        The CRM has the last word, whatever the local state store says: before creating, one
        search per 500 keys looks for OPEN tasks already carrying them (a lost or separate state
        store, another host), and a task found is reported with its id, as ``existed``, instead
        of being created again. After a failure that may have created them (5xx, timeout, dropped
        connection) the connector looks the keys up and re-creates only the missing ones.
        """
        results: list[WriteResult] = []
        unique = list({c.key: c for c in creates}.values())
        for group in chunks(unique, KEY_LOOKUP):
            existing = self.open_tasks_by_key([c.key for c in group])
            results.extend(WriteResult(c.contact_id, True, task_id=existing[c.key], key=c.key,
                                       existed=True)
                           for c in group if c.key in existing)
            missing = [c for c in group if c.key not in existing]
            for chunk in chunks(missing, BATCH):
                results.extend(self._create(chunk, self._http.policy.attempts))
        by_key = {r.key: r for r in results}
        return [by_key[c.key] for c in creates]

    def open_tasks_by_key(self, keys: Sequence[str]) -> dict[str, str]:
        """Return ``{key: task id}`` of OPEN tasks whose key property is one of ``keys``.

        One search per 500 keys: five filter groups (ORed), each ``key IN [100 keys]`` and
        status not closed. A search, not the contacts' task associations: it costs one call per
        five create batches whatever the contacts' history, where associations cost a v4 read
        plus a batch read per 100 of *all* their tasks (reps' own and closed ones included).
        Searches are also HubSpot's scarcest calls (5 a second), which is why the keys are
        packed. Search is eventually consistent (seconds); within a run the state store already
        guards against a second create.
        """
        f = self.fieldmap.tasks.fields
        status_field = f.get("status", "hs_task_status")
        not_closed = {"propertyName": status_field, "operator": "NEQ",
                      "value": self.fieldmap.tasks.closed_status}
        found: dict[str, str] = {}
        for chunk in chunks(list(dict.fromkeys(keys)), KEY_LOOKUP):
            wanted = set(chunk)
            groups = [{"filters": [{"propertyName": self.key_field, "operator": "IN",
                                    "values": list(values)}, not_closed]}
                      for values in chunks(chunk, IN_VALUES)]
            offset = 0
            while True:
                body = {"filterGroups": groups,
                        "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                        "properties": [self.key_field, status_field],
                        "limit": SEARCH_PAGE, "after": str(offset)}
                page = self._http.call("search tasks", "tasks.search",
                                       lambda api, b=body: api.do_search(
                                           public_object_search_request=b, **self._raw),
                                       search=True)
                results = _results(page)
                for task in results:
                    key = _props(task).get(self.key_field)
                    if key in wanted:
                        _keep_oldest(found, str(key), str(task["id"]))
                # More than a page only when duplicates exist (one open task per key).
                if not _next_after(page) or not results:
                    break
                offset += len(results)
        return found

    def _create(self, batch: list[TaskCreate], rounds: int) -> list[WriteResult]:
        if not batch:
            return []
        body = {"inputs": [self._task_input(c) for c in batch]}
        try:
            answer = self._http.call("batch create tasks", "tasks.batch",
                                lambda api: api.create(
                                    batch_input_simple_public_object_batch_input_for_create=body,
                                    **self._raw),
                                idempotent=False)
        except _Unsure as unsure:
            log.info("task create outcome unknown (%s); checking what exists", unsure.error)
            # A timed-out request may still be running on HubSpot's side: give it time to land,
            # or the lookup misses its tasks and the re-create duplicates them.
            self._http.wait(SETTLE_S)
            found = self.find_tasks([c.contact_id for c in batch], [c.key for c in batch])
            done = [WriteResult(c.contact_id, True, task_id=found[c.key], key=c.key)
                    for c in batch if c.key in found]
            missing = [c for c in batch if c.key not in found]
            if missing and rounds <= 1:
                raise unsure.error from unsure
            return done + self._create(missing, rounds - 1)
        except _Rejected as error:
            if len(batch) == 1:
                c = batch[0]
                return [WriteResult(c.contact_id, False, error.code or error.category
                                    or f"HTTP_{error.status}", str(error), key=c.key)]
            half = len(batch) // 2
            return self._create(batch[:half], rounds) + self._create(batch[half:], rounds)
        body_field = self.fieldmap.tasks.fields.get("body", "hs_task_body")
        made = {}
        for result in _results(answer):
            props = _props(result)
            key = props.get(self.key_field) or task_key(props.get(body_field))
            if key is not None:
                made[key] = str(result["id"])
        unmatched = [c.key for c in batch if c.key not in made]
        failed = batch_errors(answer, unmatched)
        out = []
        for c in batch:
            if c.key in made:
                out.append(WriteResult(c.contact_id, True, task_id=made[c.key], key=c.key))
            else:
                code, message = failed.get(c.key, ("MISSING_FROM_RESPONSE",
                                                   "HubSpot did not report this task"))
                out.append(WriteResult(c.contact_id, False, code, message,
                                       retryable=code in RETRYABLE, key=c.key))
        return out

    def find_tasks(self, contact_ids: Sequence[str], keys: Sequence[str]) -> dict[str, str]:
        """Return ``{key: task id}`` for open crmsync tasks of these contacts carrying ``keys``.

        One v4 association read per 1000 contacts, then one task batch read per 100 tasks.
        """
        wanted = set(keys)
        if not wanted:
            return {}
        found: dict[str, str] = {}
        for task in self.crmsync_tasks(contact_ids):
            if task.open and task.key in wanted:
                _keep_oldest(found, task.key, task.task_id)
        return found

    def crmsync_tasks(self, contact_ids: Sequence[str]) -> list[FoundTask]:
        """Every task of these contacts that carries a crmsync key, open or closed.

        One v4 association read per 1000 contacts, then one task batch read per 100 tasks
        (reps' own tasks among them are read and left out).
        """
        if not contact_ids:
            return []
        links = self._reader.associated("contacts", "tasks", list(dict.fromkeys(contact_ids)))
        contact_of = {t: contact for contact, ids in links.items() for t in ids}
        task_ids = list(contact_of)
        f = self.fieldmap.tasks.fields
        body_field = f.get("body", "hs_task_body")
        status_field = f.get("status", "hs_task_status")
        found: list[FoundTask] = []
        for chunk in chunks(task_ids, BATCH):
            body = {"inputs": [{"id": t} for t in chunk],
                    "properties": [self.key_field, body_field, status_field]}
            answer = self._http.call("batch read tasks", "tasks.batch",
                                lambda api, b=body: api.read(
                                    batch_read_input_simple_public_object_id=b, archived=False,
                                    **self._raw))
            for task in _results(answer):
                props = _props(task)
                # Tasks made by older versions carry the key in the body only.
                key = props.get(self.key_field) or task_key(props.get(body_field))
                if not key:
                    continue
                task_id = str(task["id"])
                found.append(FoundTask(
                    str(contact_of.get(task_id, "")), str(key), task_id,
                    props.get(status_field) != self.fieldmap.tasks.closed_status))
        return found

    def close_tasks(self, closes: Sequence[TaskClose]) -> list[WriteResult]:
        """Set the tasks' status to the field map's closed status (``batch/update``, 100 a call).

        A task that no longer exists (deleted in HubSpot: ``OBJECT_NOT_FOUND``) counts as closed.
        """
        status_field = self.fieldmap.tasks.fields.get("status", "hs_task_status")
        keys = {c.task_id: c.key for c in closes}
        inputs = [{"id": task_id, "properties": {status_field: self.fieldmap.tasks.closed_status}}
                  for task_id in keys]
        out: list[WriteResult] = []
        for chunk in chunks(inputs, BATCH):
            for result in self._writer.update("tasks", "tasks.batch", list(chunk)):
                if not result.ok and result.error_code == "OBJECT_NOT_FOUND":
                    # A rep deleted the task: there is nothing left to close, so the close is
                    # done. Left a rejection, it would be retried, and fail, on every later run.
                    log.info("task %s no longer exists; its close counts as done",
                             result.record_id)
                    result = WriteResult(result.record_id, True)
                out.append(WriteResult(result.record_id, result.ok, result.error_code,
                                       result.message, result.retryable,
                                       key=keys.get(result.record_id)))
        return out


def _keep_oldest(found: dict[str, str], key: str, task_id: str) -> None:
    """Two open tasks for one key (should not happen): report the oldest, stably."""
    current = found.get(key)
    if current is None or int(task_id) < int(current):
        found[key] = task_id
