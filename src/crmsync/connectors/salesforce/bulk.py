"""Bulk API 2.0 ingest: large updates of one object as one asynchronous job (§2.10).

One job costs about five calls however many records it carries (create, upload the CSV, close,
poll until done, read the failed records when there are any), where sObject Collections cost one
call per 200 records. Each step is its own call through
:meth:`~crmsync.connectors.salesforce.client.SalesforceClient.call`, so every step is paced,
counted, retried and, after an expired session, repeated once with a fresh login (simple-
salesforce's own ``sf.bulk2`` copies the session id once, never refreshes it, sleeps with the
real clock and retries nothing, so it is not used). JSON steps go through ``sf.restful``; the CSV
upload and the CSV results through simple-salesforce's ``call_salesforce``.

Per-record outcomes come from the job's counters and its ``failedResults`` (and, when some
records were not processed, ``unprocessedrecords``); ``successfulResults`` is read only when
the counters do not add up. Failures keep Salesforce's error code and the field names, never the
row's values (the CSV echoes them back).
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from simple_salesforce import Salesforce
from simple_salesforce.util import call_salesforce

from crmsync.connectors.salesforce.client import SalesforceClient
from crmsync.errors import CrmRequestError, CrmsyncError, TransientError

log = logging.getLogger("crmsync.connectors.salesforce")

#: CSV bytes per upload: Salesforce takes up to 100 MB (after base64 encoding, 150 MB).
MAX_UPLOAD_BYTES = 90_000_000
#: First wait before polling a closed job, and the largest wait between polls.
POLL_FIRST_S = 0.5
POLL_MAX_S = 10.0
#: Give up waiting for a job after this long (it keeps running; its updates are idempotent, so
#: the next run simply sends them again).
POLL_BUDGET_S = 3600.0
#: Cell meaning "set this field to null" (an empty cell leaves the field unchanged).
NULL_CELL = "#N/A"
_CSV_TYPE = "text/csv; charset=UTF-8"
_FIELD_NAMES = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(?:[;,][A-Za-z][A-Za-z0-9_]*)*$")
_DONE = frozenset({"JobComplete", "Failed", "Aborted"})


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    """One record's outcome in a Bulk 2.0 job.

    Attributes:
        ok: Whether the update took effect.
        error_code: Salesforce's code (``UNABLE_TO_LOCK_ROW``...) when it did not.
        message: The field names the error named, if any (never values).
    """

    ok: bool
    error_code: str | None = None
    message: str | None = None


def csv_cell(value: Any) -> str:
    """Return ``value`` as a Bulk 2.0 CSV cell (``None`` and ``""`` clear the field)."""
    if value is None or value == "":
        return NULL_CELL
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class BulkIngest:
    """Runs Bulk 2.0 ingest jobs through one :class:`SalesforceClient`."""

    def __init__(self, client: SalesforceClient) -> None:
        self.client = client

    def update(self, obj: str, rows: Mapping[str, Mapping[str, Any]]) -> dict[str, BulkOutcome]:
        """Update ``{record id: {field: value}}`` of ``obj``; return an outcome per record id.

        One job per :data:`MAX_UPLOAD_BYTES` of CSV (one job for any realistic sync).
        """
        out: dict[str, BulkOutcome] = {}
        for header, lines, ids in self._uploads(rows):
            out.update(self._job(obj, header, lines, ids))
        return out

    def _uploads(
        self, rows: Mapping[str, Mapping[str, Any]]
    ) -> Iterator[tuple[str, list[str], list[str]]]:
        fields = sorted({name for values in rows.values() for name in values})
        header = _csv_line(["Id", *fields])
        lines: list[str] = []
        ids: list[str] = []
        size = len(header.encode("utf-8"))
        for record_id, values in rows.items():
            # A field this record does not update stays empty: "leave unchanged".
            line = _csv_line([record_id, *(csv_cell(values[f]) if f in values else ""
                                           for f in fields)])
            if lines and size + len(line) > MAX_UPLOAD_BYTES:
                yield header, lines, ids
                lines, ids, size = [], [], len(header.encode("utf-8"))
            lines.append(line)
            ids.append(record_id)
            size += len(line.encode("utf-8"))
        if lines:
            yield header, lines, ids

    def _job(
        self, obj: str, header: str, lines: list[str], ids: list[str]
    ) -> dict[str, BulkOutcome]:
        client = self.client
        timeout = client.timeout
        job = client.call(f"bulk create {obj} job", lambda sf: sf.restful(
            "jobs/ingest", method="POST", timeout=timeout,
            json={"object": obj, "operation": "update", "contentType": "CSV",
                  "columnDelimiter": "COMMA", "lineEnding": "LF"}))
        job_id = str((job or {}).get("id") or "")
        if not job_id or (job or {}).get("state") != "Open":
            raise CrmRequestError(f"Salesforce bulk create {obj} job: no open job returned")
        closed = False
        try:
            payload = (header + "".join(lines)).encode("utf-8")
            client.call(f"bulk upload {obj}", lambda sf: _upload(sf, job_id, payload, timeout))
            info = client.call(f"bulk close {obj} job", lambda sf: sf.restful(
                f"jobs/ingest/{job_id}", method="PATCH", json={"state": "UploadComplete"},
                timeout=timeout)) or {}
            closed = True
            info = self._wait(obj, job_id, info)
        except CrmsyncError:
            if not closed:
                self._abort(obj, job_id)
            raise
        return self._outcomes(obj, job_id, info, ids)

    def _wait(self, obj: str, job_id: str, info: Mapping[str, Any]) -> Mapping[str, Any]:
        """Poll the job until it is done, waiting longer between polls (up to 10 s)."""
        client = self.client
        wait, waited = POLL_FIRST_S, 0.0
        while info.get("state") not in _DONE:
            if waited >= POLL_BUDGET_S:
                raise TransientError(f"Salesforce bulk update {obj}: job {job_id} still "
                                     f"{info.get('state')} after {waited:.0f} s; its records are "
                                     "sent again next run")
            client.sleep(wait)
            waited += wait
            wait = min(POLL_MAX_S, wait * 2)
            info = client.call(f"bulk poll {obj} job", lambda sf: sf.restful(
                f"jobs/ingest/{job_id}", method="GET", timeout=client.timeout)) or {}
        if info.get("state") != "JobComplete":
            # Job-level messages name the problem (a field, the CSV), not record values.
            reason = str(info.get("errorMessage") or "no reason given")[:200]
            raise CrmRequestError(f"Salesforce bulk update {obj}: job {job_id} "
                                  f"{info.get('state')}: {reason}")
        return info

    def _outcomes(
        self, obj: str, job_id: str, info: Mapping[str, Any], ids: list[str]
    ) -> dict[str, BulkOutcome]:
        processed = int(info.get("numberRecordsProcessed") or 0)
        failed_count = int(info.get("numberRecordsFailed") or 0)
        outcomes: dict[str, BulkOutcome] = {}
        if failed_count:
            for row in self._results(obj, job_id, "failedResults"):
                record_id = row.get("Id") or row.get("sf__Id") or ""
                outcomes[record_id] = _failure(row.get("sf__Error") or "")
        if processed < len(ids):
            for row in self._results(obj, job_id, "unprocessedrecords"):
                record_id = row.get("Id") or ""
                outcomes.setdefault(record_id, BulkOutcome(False, "UNPROCESSED_RECORD"))
        rest = [i for i in ids if i not in outcomes]
        if len(rest) == processed - failed_count:
            outcomes.update((i, BulkOutcome(True)) for i in rest)
        else:
            # The counters and the lists disagree: ask for the successes themselves.
            succeeded = {row.get("Id") or row.get("sf__Id") or ""
                         for row in self._results(obj, job_id, "successfulResults")}
            for record_id in rest:
                outcomes[record_id] = (BulkOutcome(True) if record_id in succeeded else
                                       BulkOutcome(False, "MISSING_FROM_RESPONSE"))
        return {i: outcomes[i] for i in ids}

    def _results(self, obj: str, job_id: str, kind: str) -> list[dict[str, str]]:
        text = self.client.call(f"bulk {kind} {obj}", lambda sf: _csv_results(
            sf, job_id, kind, self.client.timeout))
        return list(csv.DictReader(io.StringIO(text)))

    def _abort(self, obj: str, job_id: str) -> None:
        """Abort a job that was never closed (best effort: an open job does nothing)."""
        try:
            self.client.call(f"bulk abort {obj} job", lambda sf: sf.restful(
                f"jobs/ingest/{job_id}", method="PATCH", json={"state": "Aborted"},
                timeout=self.client.timeout))
        except CrmsyncError as error:
            log.info("could not abort bulk job %s (%s); it expires unprocessed", job_id, error)


def _upload(sf: Salesforce, job_id: str, payload: bytes, timeout: Any) -> None:
    headers = {**sf.headers, "Content-Type": _CSV_TYPE, "Accept": "application/json"}
    result = call_salesforce(url=f"{sf.bulk2_url}ingest/{job_id}/batches", method="PUT",
                             session=sf.session, headers=headers, data=payload, timeout=timeout)
    if result.status_code != 201:
        raise CrmRequestError(f"Salesforce bulk upload: HTTP {result.status_code}, expected 201")


def _csv_results(sf: Salesforce, job_id: str, kind: str, timeout: Any) -> str:
    headers = {**sf.headers, "Accept": _CSV_TYPE}
    result = call_salesforce(url=f"{sf.bulk2_url}ingest/{job_id}/{kind}/", method="GET",
                             session=sf.session, headers=headers, timeout=timeout)
    return result.content.decode("utf-8-sig")


def _csv_line(cells: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


def _failure(error: str) -> BulkOutcome:
    """Turn ``sf__Error`` (``CODE:message:fields``) into code and field names, no message."""
    code = error.split(":", 1)[0].strip() or "UNKNOWN_ERROR"
    tail = error.rsplit(":", 1)[-1].strip() if error.count(":") >= 2 else ""
    fields = tail if _FIELD_NAMES.match(tail) else ""
    return BulkOutcome(False, code, f"fields: {', '.join(re.split(r'[;,]', fields))}"
                       if fields else None)
