"""Bulk API 2.0 query and ingest jobs, as ``sf.bulk2`` drives them (§2.10).

Jobs run synchronously when they are created (query) or closed (ingest); the ``bulk_polls``
knob keeps them ``InProgress`` for that many job-info polls so clients' waiting loops run.
"""

from __future__ import annotations

import base64
import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from crmsync.sandbox.salesforce.dml import RequestError, SaveError
from crmsync.sandbox.salesforce.ids import make_id, normalize_id
from crmsync.sandbox.salesforce.query import CompiledQuery
from crmsync.sandbox.salesforce.responses import fail, not_found
from crmsync.sandbox.salesforce.rest import _json_object
from crmsync.sandbox.salesforce.soql import SoqlError
from crmsync.sandbox.salesforce.store import Record
from crmsync.sandbox.salesforce.values import BadValueError, format_datetime, from_input
from crmsync.sandbox.server import Request, Response

if TYPE_CHECKING:
    from crmsync.sandbox.salesforce.emulator import SalesforceEmulator

_DELIMITERS = {
    "COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`",
}
_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
_INGEST_OPS = ("insert", "update", "upsert", "delete", "hardDelete")
_CSV = "text/csv"
_RESULT_KINDS = ("successfulresults", "failedresults", "unprocessedrecords")


@dataclass
class Job:
    """One Bulk 2.0 job and everything needed to answer about it."""

    id: str
    kind: str  # "query" or "ingest"
    operation: str
    object: str
    created: datetime
    version: str
    delimiter: str = "COMMA"
    line_ending: str = "LF"
    state: str = "Open"
    polls_left: int = 0
    external_id: str | None = None
    error_message: str | None = None
    compiled: CompiledQuery | None = None
    rows: list[Record] = field(default_factory=list)
    data: str | None = None
    header: list[str] = field(default_factory=list)
    succeeded: list[tuple[str, bool, list[str]]] = field(default_factory=list)
    failed: list[tuple[str, str, list[str]]] = field(default_factory=list)
    processed: int = 0

    def info(self, api_user: str) -> dict[str, Any]:
        """The JobInfo body."""
        out: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": api_user,
            "createdDate": format_datetime(self.created),
            "systemModstamp": format_datetime(self.created),
            "state": self.state,
        }
        if self.kind == "ingest" and self.external_id:
            out["externalIdFieldName"] = self.external_id
        out.update({
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.version),
            "jobType": "V2Query" if self.kind == "query" else "V2Ingest",
            "lineEnding": self.line_ending,
            "columnDelimiter": self.delimiter,
        })
        if self.kind == "ingest":
            out["contentUrl"] = f"services/data/v{self.version}/jobs/ingest/{self.id}/batches"
        out.update({
            "numberRecordsProcessed": self.processed,
            "retries": 0,
            "totalProcessingTime": 0,
        })
        if self.kind == "ingest":
            out.update({"numberRecordsFailed": len(self.failed), "apiActiveProcessingTime": 0,
                        "apexProcessingTime": 0})
        else:
            out["isPkChunkingSupported"] = False
        if self.error_message:
            out["errorMessage"] = self.error_message
        return out


class Bulk2:
    """``/jobs/query`` and ``/jobs/ingest`` for one emulator."""

    def __init__(self, emulator: SalesforceEmulator) -> None:
        self.em = emulator
        self.jobs: dict[str, Job] = {}
        self._sequence = 0

    def query_jobs_today(self) -> int:
        """Query jobs created (for ``/limits``)."""
        return sum(1 for job in self.jobs.values() if job.kind == "query")

    def handle(self, request: Request, segs: list[str], version: str) -> Response:
        """Route ``/jobs/{query|ingest}[/{id}[/...]]``."""
        kind, rest, method = segs[0], segs[1:], request.method
        if kind not in ("query", "ingest"):
            raise not_found()
        if not rest:
            if method == "POST":
                if kind == "query":
                    return self._create_query(request, version)
                return self._create_ingest(request, version)
            if method == "GET":
                jobs = [j.info(self.em.api_user_id) for j in self.jobs.values() if j.kind == kind]
                return Response(200, {"done": True, "records": jobs, "nextRecordsUrl": None})
            raise not_found()
        job = self.jobs.get(normalize_id(rest[0]) or "")
        if job is None or job.kind != kind:
            raise fail(404, "NOT_FOUND", "The requested resource does not exist")
        if len(rest) == 1:
            if method == "GET":
                self._poll(job)
                return Response(200, job.info(self.em.api_user_id))
            if method == "PATCH":
                return self._set_state(request, job)
            if method == "DELETE":
                del self.jobs[job.id]
                return Response(204)
            raise not_found()
        leaf = rest[1].lower()
        if kind == "query" and leaf == "results" and method == "GET":
            return self._results(request, job)
        if kind == "ingest" and leaf == "batches" and method == "PUT":
            return self._upload(request, job)
        if kind == "ingest" and method == "GET" and leaf in _RESULT_KINDS:
            return self._ingest_results(job, leaf)
        raise not_found()

    # -- query jobs --------------------------------------------------------------------------

    def _create_query(self, request: Request, version: str) -> Response:
        body = _json_object(request)
        operation = body.get("operation")
        if operation not in ("query", "queryAll"):
            raise fail(400, "INVALIDJOB", f"Invalid operation: {operation}")
        try:
            text = str(body.get("query") or "")
            compiled = CompiledQuery(text, self.em.store, self.em.now(), version)
        except SoqlError as error:
            raise fail(400, error.code, error.message) from None
        if compiled.is_aggregate:
            raise fail(400, "INVALIDJOB", "Aggregate queries are not supported by Bulk API 2.0")
        if compiled.children:
            raise fail(400, "INVALIDJOB",
                       "Nested queries are not supported by Bulk API 2.0")
        job = self._new_job("query", operation, compiled.obj.name, body, version)
        job.compiled = compiled
        job.rows = compiled.run(include_deleted=operation == "queryAll")
        job.state = "UploadComplete"
        info = job.info(self.em.api_user_id)
        job.processed = len(job.rows)
        return Response(200, info)

    def _results(self, request: Request, job: Job) -> Response:
        self._poll(job, count=False)
        if job.state != "JobComplete":
            raise fail(400, "JOB_NOT_COMPLETE", f"Job {job.id} is not complete (state {job.state})")
        assert job.compiled is not None
        try:
            size = int(request.param("maxRecords") or 50000)
            locator = request.param("locator")
            start = int(base64.b64decode(locator).decode()) if locator else 0
        except ValueError:
            raise fail(400, "INVALID_LOCATOR", "invalid locator") from None
        size = max(1, size)
        page = job.rows[start : start + size]
        end = start + len(page)
        lines = [_csv_line(job.compiled.csv_header(), job.delimiter)]
        lines += [_csv_line(job.compiled.csv_row(rec), job.delimiter) for rec in page]
        eol = _ENDINGS.get(job.line_ending, "\n")
        text = eol.join(lines) + eol
        locator = base64.b64encode(str(end).encode()).decode() if end < len(job.rows) else "null"
        return Response(200, text, content_type=_CSV, headers={
            "Sforce-NumberOfRecords": str(len(page)), "Sforce-Locator": locator,
        })

    # -- ingest jobs -------------------------------------------------------------------------

    def _create_ingest(self, request: Request, version: str) -> Response:
        body = _json_object(request)
        operation = body.get("operation")
        if operation not in _INGEST_OPS:
            raise fail(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        obj = self.em.store.object(str(body.get("object") or ""))
        if obj is None:
            raise fail(400, "INVALIDJOB", f"InvalidJob : Invalid object: {body.get('object')}")
        external = body.get("externalIdFieldName")
        if operation == "upsert":
            fdef = obj.field(str(external or ""))
            if fdef is None or not (fdef.external_id or fdef.type == "id"):
                raise fail(
                    400, "INVALIDJOB", "InvalidJob : External ID was blank or invalid for upsert"
                )
            external = fdef.name
        job = self._new_job("ingest", operation, obj.name, body, version)
        job.external_id = external if operation == "upsert" else None
        return Response(200, job.info(self.em.api_user_id))

    def _upload(self, request: Request, job: Job) -> Response:
        if job.state != "Open" or job.data is not None:
            raise fail(400, "INVALIDJOBSTATE", f"Job {job.id} is not open for uploads")
        job.data = request.body.decode("utf-8-sig")
        return Response(201)

    def _set_state(self, request: Request, job: Job) -> Response:
        state = _json_object(request).get("state")
        if state == "Aborted" and job.state not in ("JobComplete", "Failed", "Aborted"):
            job.state = "Aborted"
        elif state == "UploadComplete" and job.kind == "ingest" and job.state == "Open":
            job.state = "UploadComplete"
            self._process(request, job)
        else:
            raise fail(400, "INVALIDJOBSTATE", f"Cannot change state from {job.state} to {state}")
        return Response(200, job.info(self.em.api_user_id))

    def _process(self, request: Request, job: Job) -> None:
        em = self.em
        obj = em.store.schema[job.object.lower()]
        delimiter = _DELIMITERS.get(job.delimiter, ",")
        reader = csv.reader(io.StringIO(job.data or ""), delimiter=delimiter)
        rows = [r for r in reader if r]
        if not rows:
            job.state, job.error_message = "Failed", "InvalidBatch : Empty CSV"
            return
        job.header = rows[0]
        fields = []
        for name in job.header:
            fdef = obj.field(name)
            if fdef is None:
                job.state = "Failed"
                job.error_message = f"InvalidBatch : Field name not found : {name}"
                return
            fields.append(fdef)
        if job.operation in ("delete", "hardDelete") and [f.name for f in fields] != ["Id"]:
            job.state = "Failed"
            job.error_message = (
                "InvalidBatch : The 'delete/hardDelete' batch must contain only 'Id'"
            )
            return
        for cells in rows[1:]:
            record_id, created, errors = self.apply_row(request, job.operation, job.external_id,
                                                        obj, fields, cells)
            job.processed += 1
            if errors:
                first = errors[0]
                message = f"{first.status_code}:{first.message}:{';'.join(first.fields) or '--'}"
                job.failed.append((record_id or "", message, cells))
            else:
                job.succeeded.append((record_id or "", created, cells))
        job.polls_left = em.config.bulk_polls
        job.state = "JobComplete" if job.polls_left == 0 else "InProgress"

    def apply_row(
        self, request: Request, operation: str, external_id: str | None, obj: Any,
        fields: list[Any], cells: list[str],
    ) -> tuple[str | None, bool, list[SaveError]]:
        """Apply one CSV row of a Bulk write (2.0 ingest or 1.0 batch): ``""`` leaves a field
        unchanged, ``#N/A`` nulls it. Returns (record id, created, errors)."""
        em = self.em
        values: dict[str, Any] = {}
        try:
            for fdef, cell in zip(fields, cells, strict=False):
                if cell == "":
                    continue  # empty means "leave unchanged"
                # "#N/A" sets a field to null.
                value = None if cell == "#N/A" else from_input(fdef.type, cell, fdef.name)
                if fdef.type == "reference" and value is not None:
                    value = normalize_id(value) or value
                values[fdef.name] = value
        except BadValueError as error:
            return values.get("Id"), False, [SaveError("INVALID_FIELD", str(error))]
        raw_id = values.pop("Id", None)
        rejected = em.rejection(request, normalize_id(raw_id) if raw_id else None, set(values))
        if rejected is not None:
            return raw_id, False, [rejected]
        try:
            if operation == "insert":
                new_id, errors = em.writer.insert(obj, values)
                return new_id, True, errors
            if operation == "update":
                if raw_id is None:
                    missing = SaveError("MISSING_ARGUMENT", "Id not specified in an update call")
                    return None, False, [missing]
                errors = em.writer.update(obj, raw_id, values)
                return normalize_id(raw_id), False, errors
            if operation == "upsert":
                key = raw_id if external_id == "Id" else values.get(external_id or "")
                return em.writer.upsert(obj, external_id or "Id", key, values)
            if operation == "delete":
                deleted, errors = em.writer.delete(raw_id, obj)
                return deleted or raw_id, False, errors
            record_id = normalize_id(raw_id)
            if record_id is None or em.store.get(obj.name, record_id) is None:
                unknown = SaveError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
                return raw_id, False, [unknown]
            em.store.remove(obj.name, record_id)
            return record_id, False, []
        except RequestError as error:
            return raw_id, False, [SaveError(error.error_code, error.message)]

    def _ingest_results(self, job: Job, leaf: str) -> Response:
        delim = job.delimiter
        eol = _ENDINGS.get(job.line_ending, "\n")
        if leaf == "successfulresults":
            lines = [_csv_line(["sf__Id", "sf__Created", *job.header], delim)]
            lines += [
                _csv_line([i, "true" if c else "false", *cells], delim)
                for i, c, cells in job.succeeded
            ]
        elif leaf == "failedresults":
            lines = [_csv_line(["sf__Id", "sf__Error", *job.header], delim)]
            lines += [_csv_line([i, e, *cells], delim) for i, e, cells in job.failed]
        else:
            lines = [_csv_line(job.header, delim)] if job.header else []
            if job.state == "Aborted" and job.data:
                reader = csv.reader(io.StringIO(job.data), delimiter=_DELIMITERS.get(delim, ","))
                lines = [_csv_line(r, delim) for r in reader if r]
        return Response(200, eol.join(lines) + (eol if lines else ""), content_type=_CSV)

    # -- shared ------------------------------------------------------------------------------

    def _new_job(
        self, kind: str, operation: str, obj_name: str, body: dict[str, Any], version: str
    ) -> Job:
        delimiter = str(body.get("columnDelimiter") or "COMMA")
        ending = str(body.get("lineEnding") or "LF")
        if delimiter not in _DELIMITERS or ending not in _ENDINGS:
            raise fail(400, "INVALIDJOB", "InvalidJob : invalid columnDelimiter or lineEnding")
        self._sequence += 1
        job = Job(
            id=make_id("750", self._sequence), kind=kind, operation=operation, object=obj_name,
            created=self.em.now(), version=version, delimiter=delimiter, line_ending=ending,
            polls_left=self.em.config.bulk_polls if kind == "query" else 0,
        )
        self.jobs[job.id] = job
        return job

    def _poll(self, job: Job, count: bool = True) -> None:
        if job.state not in ("UploadComplete", "InProgress"):
            return
        if job.kind == "ingest" and job.state == "UploadComplete":
            return
        if job.polls_left > 0:
            if count:
                job.polls_left -= 1
            job.state = "InProgress"
            return
        job.state = "JobComplete"


def _csv_line(cells: list[str], delimiter: str) -> str:
    sep = _DELIMITERS.get(delimiter, ",")
    return sep.join("" if c == "" else '"' + c.replace('"', '""') + '"' for c in cells)
