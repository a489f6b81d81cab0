"""Tasks: find open crmsync tasks by key, upsert new ones by external id, close obsolete ones.

Tasks are upserted by crmsync's external-id key field, which makes a retried create harmless.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crmsync.connectors.base import FoundTask, WriteResult, chunks
from crmsync.connectors.fieldmap import FieldMap
from crmsync.connectors.salesforce.client import SalesforceClient
from crmsync.connectors.salesforce.writing import COLLECTION_BATCH, WritingMixin
from crmsync.errors import ConfigError
from crmsync.model import TaskClose, TaskCreate

#: Per-record codes of a close meaning the task no longer exists (deleted, then purged).
_GONE_CODES = frozenset({"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY", "NOT_FOUND"})


class TasksMixin(WritingMixin):
    """The task side of :class:`~crmsync.connectors.salesforce.SalesforceConnector`.

    Tasks go through the same Collections helpers (lock re-sends, per-record results) as fields.
    """

    fieldmap: FieldMap
    client: SalesforceClient

    def find_tasks(self, contact_ids: Sequence[str], keys: Sequence[str]) -> dict[str, str]:
        """Return ``{key: task id}`` of open tasks carrying any of ``keys`` (by external id)."""
        key_field = self._task_key_field()
        if not keys:
            return {}
        found: dict[str, str] = {}
        select = f"SELECT Id, {key_field}, IsClosed FROM {self.fieldmap.tasks.object}"
        for page in self.client.query_in("query Task", select, key_field, keys):
            for row in page:
                if not row.get("IsClosed") and row.get(key_field):
                    found[str(row[key_field])] = str(row["Id"])
        return found

    def crmsync_tasks(self, contact_ids: Sequence[str]) -> list[FoundTask]:
        """Every task of these contacts (``WhoId``) that carries a crmsync key, open or closed."""
        if not contact_ids:
            return []
        key_field = self._task_key_field()
        who = self.fieldmap.tasks.fields.get("contact", "WhoId")
        select = f"SELECT Id, {who}, {key_field}, IsClosed FROM {self.fieldmap.tasks.object}"
        return [FoundTask(str(row[who]), str(row[key_field]), str(row["Id"]),
                          not row.get("IsClosed"))
                for page in self.client.query_in("query Task", select, who, contact_ids,
                                                 f" AND {key_field} != null")
                for row in page if row.get(key_field)]

    def _task_key_field(self) -> str:
        key_field = self.fieldmap.tasks.key_field
        if not key_field:
            raise ConfigError(f"{self.fieldmap.path}: tasks.key_field is required for "
                              "Salesforce (idempotent task upserts)")
        return key_field

    def create_tasks(self, creates: Sequence[TaskCreate]) -> list[WriteResult]:
        """Upsert tasks by crmsync's key field, 200 a call; one result per task, input order.

        An upsert by key cannot duplicate, so a batch is safely re-sent after a timeout or 5xx.
        """
        tasks = self.fieldmap.tasks
        key_field = self._task_key_field()
        path = f"composite/sobjects/{tasks.object}/{key_field}"
        out: list[WriteResult] = []
        for batch in chunks(list(creates), COLLECTION_BATCH):
            records = [self._task_record(create, key_field) for create in batch]
            saved = self._collection(f"upsert {tasks.object}", records, path)
            out.extend(self._result(c.contact_id, s, key=c.key) for c, s in
                       zip(batch, saved, strict=True))
        return out

    def _task_record(self, create: TaskCreate, key_field: str) -> dict[str, Any]:
        tasks = self.fieldmap.tasks
        f = tasks.fields
        spec = create.spec
        values: dict[str, Any] = {
            f.get("contact", "WhoId"): create.contact_id,
            f.get("subject", "Subject"): spec.subject[:255],
            f.get("body", "Description"): spec.body[:32_000],
            f.get("due", "ActivityDate"): spec.due.isoformat(),
            f.get("status", "Status"): tasks.open_status,
            f.get("priority", "Priority"): tasks.priority_values.get(spec.priority, spec.priority),
            key_field: create.key,
        }
        if create.owner_id:
            values[f.get("owner", "OwnerId")] = create.owner_id
        # No WhatId ever: Salesforce refuses one on a task whose WhoId is a Lead.
        return {"attributes": {"type": tasks.object}, **values}

    def close_tasks(self, closes: Sequence[TaskClose]) -> list[WriteResult]:
        """Set tasks' status to the closed status with Collections; one result per task.

        A task that no longer exists (a rep deleted it) counts as closed: there is nothing left
        to close, and a rejection would leave every later run ``partial`` over it.
        """
        tasks = self.fieldmap.tasks
        status_field = tasks.fields.get("status", "Status")
        out: list[WriteResult] = []
        for batch in chunks(list(closes), COLLECTION_BATCH):
            records = [{"attributes": {"type": tasks.object}, "id": c.task_id,
                        status_field: tasks.closed_status} for c in batch]
            saved = self._collection(f"update {tasks.object}", records)
            out.extend(
                WriteResult(c.task_id, True, key=c.key, task_id=c.task_id) if _task_gone(s)
                else self._result(c.task_id, s, key=c.key, task_id=c.task_id)
                for c, s in zip(batch, saved, strict=True))
        return out


def _task_gone(saved: Mapping[str, Any]) -> bool:
    """Return whether a failed close's SaveResult says the task itself no longer exists.

    Salesforce answers ``ENTITY_IS_DELETED`` while the task is in the recycle bin and
    ``INVALID_CROSS_REFERENCE_KEY`` once it is purged; the latter also names a bad lookup field,
    but a close sends none, so it counts only when no field other than ``Id`` is named.
    ``MALFORMED_ID`` is not a deleted task (the stored id is wrong) and stays a rejection.
    """
    if saved.get("success"):
        return False
    errors = saved.get("errors") or [{}]
    first = errors[0] if isinstance(errors[0], Mapping) else {}
    fields = {str(f) for f in first.get("fields") or []}
    return str(first.get("statusCode") or "") in _GONE_CODES and fields <= {"Id"}
