"""Writing: crmsync's output fields through sObject Collections (or one Bulk API 2.0 job).

Collections take 200 records a call with ``allOrNone: false`` and answer per-record results in
input order; records that failed only on a row lock are re-sent. The CRM's own messages can quote
record data, so results keep only the error code and the field names.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any

from crmsync.connectors.base import RecordUpdate, WriteResult, chunks
from crmsync.connectors.fieldmap import FieldMap
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
            return WriteResult(record_id, True, task_id=task_id or saved.get("id"), key=key)
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

        Updates are idempotent, so a batch is safely re-sent after a transient failure.
        """
        results: list[WriteResult | None] = [None] * len(updates)
        # Collections allow at most 10 runs of one type per call: group by object first.
        by_type: dict[str, list[int]] = {}
        for index, update in enumerate(updates):
            by_type.setdefault(update.object_type, []).append(index)
        for obj, indexes in by_type.items():
            if self.bulk_threshold is not None and len(indexes) >= self.bulk_threshold:
                bulk = self._bulk_update(obj, [updates[i] for i in indexes])
                for i, result in zip(indexes, bulk, strict=True):
                    results[i] = result
                continue
            for batch in chunks(indexes, COLLECTION_BATCH):
                records = [self._update_record(updates[i]) for i in batch]
                saved = self._collection(f"update {obj}", records)
                for i, result in zip(batch, saved, strict=True):
                    results[i] = self._result(updates[i].record_id, result)
        return [r for r in results if r is not None]

    def _bulk_update(self, obj: str, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        """Update records with one Bulk API 2.0 ingest job; one result per update, in order.

        Re-running the job after a transient failure is safe: updates are idempotent.
        """
        rows = [self._bulk_row(update) for update in updates]
        jobs = self.client.call(f"bulk update {obj}",
                          lambda sf: getattr(sf.bulk2, obj).update(records=rows, wait=0))
        failed: dict[str, str] = {}
        for job in jobs:
            job_id = job["job_id"]
            if job["numberRecordsFailed"]:
                text = self.client.call(f"bulk results {obj}",
                                  lambda sf, j=job_id: getattr(sf.bulk2, obj).get_failed_records(j))
                for row in csv.DictReader(io.StringIO(text)):
                    # sf__Error is "CODE:message:fields"; the message may quote record data.
                    code = (row.get("sf__Error") or "UNKNOWN_ERROR").split(":", 1)[0]
                    failed[row.get("Id") or row.get("sf__Id") or ""] = code
            if job["numberRecordsProcessed"] < job["numberRecordsTotal"]:
                text = self.client.call(f"bulk results {obj}", lambda sf, j=job_id: getattr(
                    sf.bulk2, obj).get_unprocessed_records(j))
                for row in csv.DictReader(io.StringIO(text)):
                    failed[row.get("Id") or ""] = "UNPROCESSED_RECORD"
        out = []
        for update in updates:
            code = failed.get(update.record_id)
            out.append(WriteResult(update.record_id, True) if code is None else WriteResult(
                update.record_id, False, error_code=code,
                retryable=code in RETRYABLE_CODES or code == "UNPROCESSED_RECORD"))
        return out

    def _bulk_row(self, update: RecordUpdate) -> dict[str, str]:
        row = {"Id": update.record_id}
        for name, value in self._update_record(update).items():
            if name in ("attributes", "id"):
                continue
            # In Bulk CSV an empty cell leaves a field unchanged; #N/A clears it.
            if value is None:
                row[name] = "#N/A"
            elif isinstance(value, bool):
                row[name] = "true" if value else "false"
            else:
                row[name] = str(value)
        return row

    def _update_record(self, update: RecordUpdate) -> dict[str, Any]:
        record: dict[str, Any] = {"attributes": {"type": update.object_type},
                                  "id": update.record_id}
        for output, value in update.values.items():
            target = self.fieldmap.outputs.get(output)
            if target is None:
                raise ConfigError(f"output {output!r} has no field in {self.fieldmap.path}")
            record[target.field] = target.encode(value)
        return record
