"""Bulk API 1.0 (``/services/async/{version}/job``), as jsforce and ``sf.bulk`` drive it.

Jobs carry a ``contentType`` of ``CSV``, ``XML`` or ``JSON``; job and batch information is
answered in JSON for JSON jobs and in the ``asyncapi/dataload`` XML namespace otherwise (a job
is created in the format its request body uses). The session comes in ``X-SFDC-Session``.
Batches run as soon as they are added (``Completed`` at once, ``Failed`` with a
``stateMessage`` when the data cannot be read):

* DML (insert, update, upsert, delete, hardDelete): one result per record, in order: CSV
  ``"Id","Success","Created","Error"``, JSON ``[{"id","success","created","errors"}]``, or XML
  ``<results><result>``; ``GET .../batch/{id}/request`` returns the data sent;
* query / queryAll: the batch body is the SOQL text; ``GET .../result`` lists one result id and
  ``GET .../result/{id}`` returns the rows (CSV with dotted parent headers, a JSON list of
  records, or XML ``<queryResult>``).
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from crmsync.sandbox.salesforce.ids import make_id, normalize_id
from crmsync.sandbox.salesforce.query import CompiledQuery
from crmsync.sandbox.salesforce.soql import SoqlError
from crmsync.sandbox.salesforce.store import Record
from crmsync.sandbox.salesforce.values import format_datetime, to_json
from crmsync.sandbox.server import HttpError, Request, Response

if TYPE_CHECKING:
    from crmsync.sandbox.salesforce.emulator import SalesforceEmulator

NS = "http://www.force.com/2009/06/asyncapi/dataload"
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_OPS = ("insert", "update", "upsert", "delete", "hardDelete", "query", "queryAll")
_CONTENT = ("CSV", "XML", "JSON")
_XML_TYPE = "application/xml;charset=UTF-8"


@dataclass
class Batch:
    """One batch of a Bulk 1.0 job."""

    id: str
    job_id: str
    created: datetime
    request: str
    state: str = "Completed"
    message: str | None = None
    results: list[tuple[str | None, bool, bool, str]] = field(default_factory=list)
    rows: list[Record] = field(default_factory=list)
    query: CompiledQuery | None = None
    failed: int = 0

    def info(self) -> dict[str, Any]:
        """The batchInfo fields, in the service's order."""
        out: dict[str, Any] = {"id": self.id, "jobId": self.job_id, "state": self.state}
        if self.message:
            out["stateMessage"] = self.message
        out.update({
            "createdDate": format_datetime(self.created),
            "systemModstamp": format_datetime(self.created),
            "numberRecordsProcessed": len(self.rows) if self.query else len(self.results),
            "numberRecordsFailed": self.failed,
            "totalProcessingTime": 0, "apiActiveProcessingTime": 0, "apexProcessingTime": 0,
        })
        return out


@dataclass
class Job:
    """One Bulk 1.0 job."""

    id: str
    operation: str
    object: str
    content_type: str
    created: datetime
    version: str
    json_answers: bool
    external_id: str | None = None
    state: str = "Open"
    batches: dict[str, Batch] = field(default_factory=dict)

    def info(self, api_user: str) -> dict[str, Any]:
        """The jobInfo fields, in the service's order."""
        batches = list(self.batches.values())
        out: dict[str, Any] = {
            "id": self.id, "operation": self.operation, "object": self.object,
            "createdById": api_user, "createdDate": format_datetime(self.created),
            "systemModstamp": format_datetime(self.created), "state": self.state,
        }
        if self.external_id:
            out["externalIdFieldName"] = self.external_id
        done = [b for b in batches if b.state == "Completed"]
        out.update({
            "concurrencyMode": "Parallel", "contentType": self.content_type,
            "numberBatchesQueued": 0, "numberBatchesInProgress": 0,
            "numberBatchesCompleted": len(done),
            "numberBatchesFailed": sum(b.state == "Failed" for b in batches),
            "numberBatchesTotal": len(batches),
            "numberRecordsProcessed": sum(b.info()["numberRecordsProcessed"] for b in done),
            "numberRetries": 0, "apiVersion": float(self.version),
            "numberRecordsFailed": sum(b.failed for b in batches),
            "totalProcessingTime": 0, "apiActiveProcessingTime": 0, "apexProcessingTime": 0,
        })
        return out


class BulkError(Exception):
    """A Bulk 1.0 ``<error>``: ``exceptionCode`` and message, HTTP 400 unless told."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class Bulk1:
    """``/services/async/{version}/job[...]`` for one emulator."""

    def __init__(self, emulator: SalesforceEmulator) -> None:
        self.em = emulator
        self.jobs: dict[str, Job] = {}
        self._sequence = 0

    def handle(self, request: Request, segs: list[str], version: str) -> Response:
        """Answer one Bulk 1.0 call (authorised by ``X-SFDC-Session``)."""
        json_wanted = "json" in request.headers.get("content-type", "")
        try:
            if request.headers.get("x-sfdc-session", "").strip() not in self.em.tokens:
                raise BulkError("InvalidSessionId", "Invalid session id")
            return self._route(request, segs, version)
        except BulkError as problem:
            job = self.jobs.get(normalize_id(segs[1]) or "") if len(segs) > 1 else None
            as_json = job.json_answers if job is not None else json_wanted
            body = {"exceptionCode": problem.code, "exceptionMessage": problem.message}
            return _answer(problem.status, "error", body, as_json)

    def _route(self, request: Request, segs: list[str], version: str) -> Response:
        method = request.method
        if segs == ["job"] and method == "POST":
            return self._create(request, version)
        if len(segs) < 2 or segs[0] != "job":
            raise BulkError("InvalidUrl", "unknown resource", 404)
        job = self.jobs.get(normalize_id(segs[1]) or "")
        if job is None:
            raise BulkError("InvalidJob", f"Unable to find job: {segs[1]}")
        rest = segs[2:]
        api_user = self.em.api_user_id
        if not rest and method == "GET":
            return _answer(200, "jobInfo", job.info(api_user), job.json_answers)
        if not rest and method == "POST":
            return self._set_state(request, job)
        if rest == ["batch"] and method == "POST":
            batch = self._add_batch(request, job)
            return _answer(201, "batchInfo", batch.info(), job.json_answers)
        if rest == ["batch"] and method == "GET":
            infos = [b.info() for b in job.batches.values()]
            if job.json_answers:
                return Response(200, {"batchInfo": infos})
            inner = "".join(f"<batchInfo>{_fields(i)}</batchInfo>" for i in infos)
            return _xml(200, f'<batchInfoList xmlns="{NS}">{inner}</batchInfoList>')
        batch = job.batches.get(normalize_id(rest[1]) or "") if len(rest) > 1 else None
        if rest[0] != "batch" or batch is None or method != "GET":
            raise BulkError("InvalidBatch", f"Unable to find batch: {'/'.join(rest[1:2])}")
        leaf = rest[2:]
        if not leaf:
            return _answer(200, "batchInfo", batch.info(), job.json_answers)
        if leaf == ["request"]:
            ctype = {"CSV": "text/csv", "XML": _XML_TYPE}.get(job.content_type, "application/json")
            return Response(200, batch.request, content_type=ctype)
        if leaf == ["result"]:
            return self._results(job, batch)
        if len(leaf) == 2 and leaf[0] == "result" and batch.query is not None:
            if leaf[1] != batch.id.replace("751", "752", 1):
                raise BulkError("InvalidBatch", f"Unable to find result: {leaf[1]}")
            return self._query_rows(job, batch)
        raise BulkError("InvalidUrl", "unknown resource", 404)

    # -- jobs ----------------------------------------------------------------------------------

    def _create(self, request: Request, version: str) -> Response:
        as_json = "json" in request.headers.get("content-type", "")
        info = _read_info(request, as_json)
        operation = info.get("operation")
        if operation not in _OPS:
            raise BulkError("InvalidJob", f"Invalid operation: {operation}")
        obj = self.em.store.object(str(info.get("object") or ""))
        if obj is None:
            raise BulkError("InvalidJob", f"Unable to find object: {info.get('object')}")
        content = str(info.get("contentType") or "XML").upper()
        if content not in _CONTENT:
            raise BulkError("InvalidJob", f"Invalid content type: {content}")
        external = info.get("externalIdFieldName")
        if operation == "upsert":
            fdef = obj.field(str(external or ""))
            if fdef is None or not (fdef.external_id or fdef.type == "id"):
                raise BulkError("InvalidJob", "External ID was blank or invalid for upsert")
            external = fdef.name
        self._sequence += 1
        job = Job(make_id("750", self._sequence), operation, obj.name, content, self.em.now(),
                  version, json_answers=as_json or content == "JSON",
                  external_id=external if operation == "upsert" else None)
        self.jobs[job.id] = job
        return _answer(201, "jobInfo", job.info(self.em.api_user_id), job.json_answers)

    def _set_state(self, request: Request, job: Job) -> Response:
        state = _read_info(request, job.json_answers).get("state")
        if state not in ("Closed", "Aborted") or job.state != "Open":
            raise BulkError("InvalidJobState", f"Cannot change state from {job.state} to {state}")
        job.state = str(state)
        return _answer(200, "jobInfo", job.info(self.em.api_user_id), job.json_answers)

    # -- batches -------------------------------------------------------------------------------

    def _add_batch(self, request: Request, job: Job) -> Batch:
        if job.state != "Open":
            raise BulkError("InvalidJobState", f"Job {job.id} is not open")
        text = request.body.decode("utf-8-sig")
        self._sequence += 1
        batch = Batch(make_id("751", self._sequence), job.id, self.em.now(), text)
        job.batches[batch.id] = batch
        try:
            if job.operation in ("query", "queryAll"):
                batch.query = CompiledQuery(text.strip(), self.em.store, self.em.now(),
                                            job.version)
                if batch.query.is_aggregate or batch.query.children:
                    raise BulkError("InvalidBatch", "Aggregate and nested queries are not "
                                    "supported by the Bulk API")
                batch.rows = batch.query.run(include_deleted=job.operation == "queryAll")
            else:
                self._write(request, job, batch, _records(job.content_type, text))
        except SoqlError as error:
            batch.state, batch.message = "Failed", f"InvalidBatch : {error.message.strip()}"
        except BulkError as error:
            batch.state, batch.message = "Failed", f"{error.code} : {error.message}"
        return batch

    def _write(self, request: Request, job: Job, batch: Batch,
               rows: list[dict[str, str]]) -> None:
        obj = self.em.store.schema[job.object.lower()]
        names = list(dict.fromkeys(name for row in rows for name in row))
        fields = []
        for name in names:
            fdef = obj.field(name)
            if fdef is None:
                raise BulkError("InvalidBatch", f"Field name not found : {name}")
            fields.append(fdef)
        for row in rows:
            cells = [row.get(name, "") for name in names]
            record_id, created, errors = self.em.bulk.apply_row(
                request, job.operation, job.external_id, obj, fields, cells)
            message = ""
            if errors:
                first = errors[0]
                message = f"{first.status_code}:{first.message}:{';'.join(first.fields) or '--'}"
                batch.failed += 1
            batch.results.append((None if errors and job.operation == "insert" else record_id,
                                  not errors, created and not errors, message))

    def _results(self, job: Job, batch: Batch) -> Response:
        if batch.state != "Completed":
            raise BulkError("InvalidBatch", f"Batch not completed: {batch.state}")
        if batch.query is not None:
            result_id = batch.id.replace("751", "752", 1)
            if job.json_answers:
                return Response(200, [result_id])
            return _xml(200, f'<result-list xmlns="{NS}"><result>{result_id}</result>'
                             "</result-list>")
        if job.content_type == "CSV":
            lines = ['"Id","Success","Created","Error"'] + [
                ",".join(_quote(v) for v in (i or "", str(ok).lower(), str(new).lower(), err))
                for i, ok, new, err in batch.results]
            return Response(200, "\n".join(lines) + "\n", content_type="text/csv")
        if job.json_answers:
            return Response(200, [
                {"success": ok, "created": new, "id": i,
                 "errors": [] if ok else [_json_error(err)]}
                for i, ok, new, err in batch.results])
        items = "".join(_xml_result(i, ok, new, err) for i, ok, new, err in batch.results)
        return _xml(200, f'<results xmlns="{NS}" xmlns:xsi="{_XSI}">{items}</results>')

    def _query_rows(self, job: Job, batch: Batch) -> Response:
        query = batch.query
        assert query is not None
        if job.content_type == "CSV":
            out = io.StringIO()
            writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
            writer.writerow(query.csv_header())
            writer.writerows(query.csv_row(rec) for rec in batch.rows)
            return Response(200, out.getvalue(), content_type="text/csv")
        if job.json_answers:
            return Response(200, [query.render(rec) for rec in batch.rows])
        records = []
        for rec in batch.rows:
            cells = "".join(
                f"<{c.dotted}>{escape(str(to_json(c.leaf.type, c.get(rec))))}</{c.dotted}>"
                if c.get(rec) is not None else f'<{c.dotted} xsi:nil="true"/>'
                for c in query.columns)
            records.append(f'<records xsi:type="sObject"><type>{query.obj.name}</type>'
                           f"{cells}</records>")
        return _xml(200, f'<queryResult xmlns="{NS}" xmlns:xsi="{_XSI}">'
                         f"{''.join(records)}</queryResult>")


# -- formats -------------------------------------------------------------------------------------


def _read_info(request: Request, as_json: bool) -> dict[str, Any]:
    text = request.body.decode("utf-8-sig")
    if as_json:
        try:
            data = json.loads(text)
        except ValueError:
            raise BulkError("InvalidJob", "the body is not JSON") from None
        if not isinstance(data, dict):
            raise BulkError("InvalidJob", "jobInfo must be a JSON object")
        return data
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        raise BulkError("InvalidXML", "the body is not well-formed XML") from None
    return {_local(child.tag): (child.text or "").strip() for child in root}


def _records(content_type: str, text: str) -> list[dict[str, str]]:
    """A batch's records as ``{field: cell}`` with Bulk CSV cell conventions."""
    if content_type == "CSV":
        rows = [r for r in csv.reader(io.StringIO(text)) if r]
        if not rows:
            raise BulkError("InvalidBatch", "Empty CSV")
        return [dict(zip(rows[0], r, strict=False)) for r in rows[1:]]
    if content_type == "JSON":
        try:
            data = json.loads(text)
        except ValueError:
            raise BulkError("InvalidBatch", "the batch is not JSON") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise BulkError("InvalidBatch", "a JSON batch is a list of records")
        return [{k: _cell(v) for k, v in r.items() if k != "attributes"} for r in data]
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError:
        raise BulkError("InvalidBatch", "the batch is not well-formed XML") from None
    out = []
    for item in root:
        row = {}
        for child in item:
            nil = child.get(f"{{{_XSI}}}nil") == "true"
            row[_local(child.tag)] = "#N/A" if nil else (child.text or "")
        out.append(row)
    return out


def _cell(value: Any) -> str:
    if value is None:
        return "#N/A"  # null clears the field
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _xml_result(record_id: str | None, ok: bool, created: bool, error: str) -> str:
    ident = f"<id>{record_id}</id>" if record_id else '<id xsi:nil="true"/>'
    errors = "" if ok else f"<errors><message>{escape(error)}</message></errors>"
    return (f"<result>{ident}<success>{str(ok).lower()}</success>"
            f"<created>{str(created).lower()}</created>{errors}</result>")


def _json_error(message: str) -> dict[str, Any]:
    code, _, rest = message.partition(":")
    text, _, fields = rest.rpartition(":")
    return {"statusCode": code, "message": text,
            "fields": [] if fields in ("", "--") else fields.split(";")}


def _fields(values: dict[str, Any]) -> str:
    return "".join(f"<{k}>{escape(_xml_text(v))}</{k}>" for k, v in values.items())


def _xml_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _xml(status: int, body: str) -> Response:
    return Response(status, '<?xml version="1.0" encoding="UTF-8"?>' + body,
                    content_type=_XML_TYPE)


def _answer(status: int, root: str, values: dict[str, Any], as_json: bool) -> Response:
    if as_json:
        return Response(status, values)
    return _xml(status, f'<{root} xmlns="{NS}">{_fields(values)}</{root}>')


_ASYNC = re.compile(r"^/services/async/(\d+\.\d)(/.*)?$")


def route_async(em: SalesforceEmulator, request: Request) -> Response | None:
    """Answer ``/services/async/...`` calls; None for any other path."""
    m = _ASYNC.match(request.path)
    if m is None:
        return None
    if m.group(1) not in em.supported_versions():
        return _xml(404, f'<error xmlns="{NS}"><exceptionCode>InvalidVersion</exceptionCode>'
                         "<exceptionMessage>Invalid api version</exceptionMessage></error>")
    segs = [s for s in (m.group(2) or "").split("/") if s]
    try:
        return em.bulk1.handle(request, segs, m.group(1))
    except HttpError as error:
        return error.response
