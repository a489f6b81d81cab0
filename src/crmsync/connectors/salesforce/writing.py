"""Writing: crmsync's output fields through sObject Collections, or one Bulk API 2.0 job.

Collections take 200 records a call with ``allOrNone: false`` and answer per-record results in
input order; records that failed only on a row lock are re-sent. Large volumes go through one
Bulk 2.0 ingest job per object (:mod:`.bulk`). The CRM's own messages can quote record data, so
results keep only the error code and the field names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crmsync.connectors.base import RecordUpdate, WriteResult, chunks
from crmsync.connectors.fieldmap import FieldMap
from crmsync.connectors.salesforce.bulk import BulkIngest
from crmsync.connectors.salesforce.client import SalesforceClient
from crmsync.connectors.salesforce.translate import _error_code
from crmsync.errors import ConfigError, CrmRequestError

#: Records per sObject Collections call.
COLLECTION_BATCH = 200
#: Per-record error codes that may succeed when the same write is sent again later.
RETRYABLE_CODES = frozenset(
    {"UNABLE_TO_LOCK_ROW", "ALL_OR_NONE_OPERATION_ROLLED_BACK", "REQUEST_RUNNING_TOO_LONG",
     "SERVER_UNAVAILABLE", "TXN_SECURITY_METERING_ERROR"}
)
#: Per-record errors re-sent within the same call (momentary lock contention).
_LOCK_CODES = frozenset({"UNABLE_TO_LOCK_ROW"})
#: How many times records that failed on a row lock are re-sent before being reported.
LOCK_RETRIES = 2
#: Bulk outcomes worth sending again: the job did not get to the record, or lost track of it.
_BULK_RETRYABLE = frozenset({"UNPROCESSED_RECORD", "MISSING_FROM_RESPONSE"})


class WritingMixin:
    """The field-writing side of :class:`~crmsync.connectors.salesforce.SalesforceConnector`."""

    fieldmap: FieldMap
    client: SalesforceClient
    bulk_threshold: int | None

    def _collection(
        self, op: str, records: list[dict[str, Any]], path: str = "composite/sobjects"
    ) -> list[Mapping[str, Any]]:
        """PATCH one Collections batch; re-send records that only failed on a row lock.

        Lock contention (``UNABLE_TO_LOCK_ROW``: another process is writing the same record or
        its parent Account) clears within seconds, so those records are sent again, alone, up
        to :data:`LOCK_RETRIES` times before being reported as retryable failures. Every write
        here is an update or an upsert by key, so re-sending is safe.
        """
        results = self._patch_collection(op, records, path)
        for attempt in range(LOCK_RETRIES):
            locked = [i for i, saved in enumerate(results) if _error_code(saved) in _LOCK_CODES]
            if not locked:
                break
            self.client.sleep(self.client.policy.initial_wait_s * 2**attempt)
            again = self._patch_collection(op, [records[i] for i in locked], path)
            for i, saved in zip(locked, again, strict=True):
                results[i] = saved
        return results

    def _patch_collection(
        self, op: str, records: list[dict[str, Any]], path: str
    ) -> list[Mapping[str, Any]]:
        body = {"allOrNone": False, "records": records}
        results = self.client.call(op, lambda sf: sf.restful(path, method="PATCH", json=body,
                                                      timeout=self.client.timeout))
        if not isinstance(results, list) or len(results) != len(records):
            raise CrmRequestError(f"Salesforce {op}: unexpected SaveResult list")
        return results

    @staticmethod
    def _result(
        record_id: str, saved: Mapping[str, Any], *, key: str | None = None,
        task_id: str | None = None,
    ) -> WriteResult:
        if saved.get("success"):
            # An upsert by key answers created=false when it found the task already there.
            return WriteResult(record_id, True, task_id=task_id or saved.get("id"), key=key,
                               existed=saved.get("created") is False)
        errors = saved.get("errors") or [{}]
        first = errors[0] if isinstance(errors[0], Mapping) else {}
        code = str(first.get("statusCode") or "UNKNOWN_ERROR")
        fields = [str(f) for f in first.get("fields") or []]
        # The CRM's own message can quote record data ("data value too large: <value>"):
        # keep only the code and the field names.
        message = f"fields: {', '.join(fields)}" if fields else None
        return WriteResult(record_id, False, error_code=code, message=message,
                           retryable=code in RETRYABLE_CODES, task_id=task_id, key=key)

    def write_fields(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        """Write output fields with sObject Collections, 200 records a call; input order kept.

        Updates are idempotent, so a batch is safely re-sent after a transient failure. With a
        ``bulk_threshold``, an object with at least that many updates goes through
        :meth:`write_fields_bulk` instead.
        """
        results: list[WriteResult | None] = [None] * len(updates)
        # Collections allow at most 10 runs of one type per call: group by object first.
        by_type: dict[str, list[int]] = {}
        for index, update in enumerate(updates):
            by_type.setdefault(update.object_type, []).append(index)
        for obj, indexes in by_type.items():
            if self.bulk_threshold is not None and len(indexes) >= self.bulk_threshold:
                bulk = self.write_fields_bulk([updates[i] for i in indexes])
                for i, result in zip(indexes, bulk, strict=True):
                    results[i] = result
                continue
            for batch in chunks(indexes, COLLECTION_BATCH):
                records = [self._update_record(updates[i]) for i in batch]
                saved = self._collection(f"update {obj}", records)
                for i, result in zip(batch, saved, strict=True):
                    results[i] = self._result(updates[i].record_id, result)
        return [r for r in results if r is not None]

    def write_fields_bulk(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        """Write output fields through one Bulk API 2.0 ingest job per object; input order kept.

        About five calls per object however many records (create, upload, close, poll, failed
        results when some failed), against one per 200 with Collections. Several updates of one
        record are merged (later values win) and share its result. Re-running after a transient
        failure is safe: updates are idempotent.

        Raises:
            CrmRequestError: The job failed as a whole (a bad column, say) or was aborted.
            TransientError: The job outlasted the polling budget (it may still finish).
        """
        by_type: dict[str, dict[str, dict[str, Any]]] = {}
        for update in updates:
            fields = by_type.setdefault(update.object_type, {}).setdefault(update.record_id, {})
            self._encode_into(fields, update)
        outcomes = {obj: BulkIngest(self.client).update(obj, rows)
                    for obj, rows in by_type.items()}
        out = []
        for update in updates:
            outcome = outcomes[update.object_type][update.record_id]
            code = outcome.error_code
            out.append(WriteResult(update.record_id, True) if outcome.ok else WriteResult(
                update.record_id, False, error_code=code, message=outcome.message,
                retryable=code in RETRYABLE_CODES or code in _BULK_RETRYABLE))
        return out

    def _update_record(self, update: RecordUpdate) -> dict[str, Any]:
        """The sObject Collections record of an update: its type, id and encoded fields."""
        record: dict[str, Any] = {"attributes": {"type": update.object_type},
                                  "id": update.record_id}
        self._encode_into(record, update)
        return record

    def _encode_into(self, fields: dict[str, Any], update: RecordUpdate) -> None:
        """Put an update's values into ``fields`` under their CRM field names, encoded."""
        outputs = self.fieldmap.outputs
        for output, value in update.values.items():
            target = outputs.get(output)
            if target is None:
                raise ConfigError(f"output {output!r} has no field in {self.fieldmap.path}")
            fields[target.field] = target.encode(value)
