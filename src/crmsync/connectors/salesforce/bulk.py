"""Bulk API 2.0: large updates of one object as one ingest job, large reads as one query job.

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

Query jobs (:class:`BulkQuery`) serve full reads of large objects: create, poll, then one results
call per 10,000 records, against one REST query call per 2,000.
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

from crmsync.connectors.base import batched
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
        line_of = _CsvLines()  # one writer for every line, not one per line
        lines: list[str] = []
        ids: list[str] = []
        size = len(header.encode("utf-8"))
        for record_id, values in rows.items():
            # A field this record does not update stays empty: "leave unchanged".
            line = line_of([record_id, *(csv_cell(values[f]) if f in values else ""
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
        return wait_for_job(self.client, "ingest", f"bulk update {obj}", job_id, info)

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


def wait_for_job(
    client: SalesforceClient, kind: str, op: str, job_id: str, info: Mapping[str, Any]
) -> Mapping[str, Any]:
    """Poll a Bulk 2.0 job (``kind``: ingest or query) until it is done, waiting longer between
    polls (0.5 s doubling to 10 s); return its final info.

    Raises:
        CrmRequestError: The job failed or was aborted (its own message, which names a field or
            the CSV, never a record's values).
        TransientError: It was still running after :data:`POLL_BUDGET_S`.
    """
    wait, waited = POLL_FIRST_S, 0.0
    while info.get("state") not in _DONE:
        if waited >= POLL_BUDGET_S:
            raise TransientError(f"Salesforce {op}: job {job_id} still {info.get('state')} "
                                 f"after {waited:.0f} s; the next run starts over")
        client.sleep(wait)
        waited += wait
        wait = min(POLL_MAX_S, wait * 2)
        info = client.call(f"{op} (poll)", lambda sf: sf.restful(
            f"jobs/{kind}/{job_id}", method="GET", timeout=client.timeout)) or {}
    if info.get("state") != "JobComplete":
        reason = str(info.get("errorMessage") or "no reason given")[:200]
        raise CrmRequestError(f"Salesforce {op}: job {job_id} {info.get('state')}: {reason}")
    return info


class BulkQuery:
    """Runs Bulk 2.0 query jobs through one :class:`SalesforceClient`, page by page.

    Query jobs take no ``ORDER BY`` here: it turns off Salesforce's PK chunking and makes large
    jobs slow or time out; the pages come in no particular order.
    """

    def __init__(self, client: SalesforceClient, page_size: int = 10_000) -> None:
        self.client = client
        self.page_size = page_size

    def pages(self, obj: str, soql: str, chunk: int | None = None
              ) -> Iterator[list[dict[str, Any]]]:
        """Yield the records of ``soql`` (no ORDER BY) as nested dicts shaped like REST query
        records (``Account.Name`` -> ``{"Account": {"Name": ...}}``; empty cells are ``None``;
        values are the CSV's strings).

        Results are fetched ``page_size`` records a call and yielded ``chunk`` at a time
        (default: a whole result page): a record is built only when its chunk is asked for, so
        a caller deciding 2,000 at a time never holds 10,000 built records.
        """
        client = self.client
        op = f"bulk query {obj}"
        job = client.call(op, lambda sf: sf.restful(
            "jobs/query", method="POST", timeout=client.timeout,
            json={"operation": "query", "query": soql, "columnDelimiter": "COMMA",
                  "lineEnding": "LF"})) or {}
        job_id = str(job.get("id") or "")
        if not job_id:
            raise CrmRequestError(f"Salesforce {op}: no query job returned")
        wait_for_job(client, "query", op, job_id, job)
        locator = ""
        while True:
            text, locator = client.call(f"{op} (results)", lambda sf, at=locator: _query_results(
                sf, job_id, at, self.page_size, client.timeout))
            yield from batched(iter_csv_records(text), chunk or self.page_size)
            if not locator or locator == "null":
                return


def _query_results(
    sf: Salesforce, job_id: str, locator: str, size: int, timeout: Any
) -> tuple[str, str]:
    params: dict[str, Any] = {"maxRecords": size}
    if locator:
        params["locator"] = locator
    headers = {**sf.headers, "Accept": _CSV_TYPE}
    result = call_salesforce(url=f"{sf.bulk2_url}query/{job_id}/results", method="GET",
                             session=sf.session, headers=headers, params=params,
                             timeout=timeout)
    return result.content.decode("utf-8-sig"), result.headers.get("Sforce-Locator") or ""


def csv_records(text: str) -> list[dict[str, Any]]:
    """Turn a Bulk 2.0 query result (CSV with a header) into REST-shaped records (a list of
    :func:`iter_csv_records`)."""
    return list(iter_csv_records(text))


def iter_csv_records(text: str) -> Iterator[dict[str, Any]]:
    """Yield a Bulk 2.0 query result's (CSV with a header) rows as REST-shaped records.

    ``Account.Name`` becomes ``{"Account": {"Name": ...}}``, a parent whose every field is empty
    becomes ``None`` (as REST sends it), an empty cell ``None``. The header is read once and
    each row is built by position (``csv.DictReader`` builds a dict per row only for it to be
    rebuilt here). A short row's missing cells are empty; cells past the header are ignored.
    """
    reader = csv.reader(_lines(text))
    header = next(reader, None)
    if not header:
        return
    width = len(header)
    plain = [(i, name) for i, name in enumerate(header) if "." not in name]
    dotted = [(i, name.split(".")) for i, name in enumerate(header) if "." in name]
    # Every parent path of the dotted columns, deepest first (Account.Owner before Account).
    parent_paths = sorted({tuple(parts[:depth]) for _, parts in dotted
                           for depth in range(1, len(parts))}, key=len, reverse=True)
    padding = [""] * width
    for row in reader:
        if len(row) < width:
            if not row:
                continue  # a blank line is no record (as DictReader skips it)
            row = row + padding[len(row):]
        record: dict[str, Any] = {name: row[i] or None for i, name in plain}
        if dotted:
            for i, (*parents, leaf) in dotted:
                holder = record
                for parent in parents:
                    holder = holder.setdefault(parent, {})
                holder[leaf] = row[i] or None
            # A parent whose every field is empty is no parent at all (REST sends null);
            # the deepest first, so an empty grandchild empties its parent too.
            for *path, name in parent_paths:
                holder = record
                for parent in path:
                    holder = holder[parent]
                if not any(value is not None for value in holder[name].values()):
                    holder[name] = None
        yield record


def _lines(text: str) -> Iterator[str]:
    """The lines of ``text``, each with its ``\n``, one at a time.

    What ``csv.reader(io.StringIO(text))`` reads, without StringIO's copy of the whole text at
    four bytes a character (22 MiB for a 10,000-record result page of 5.4 MiB, measured).
    """
    start, end = 0, len(text)
    while start < end:
        stop = text.find("\n", start)
        if stop < 0:
            yield text[start:]
            return
        yield text[start:stop + 1]
        start = stop + 1


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


class _CsvLines:
    """:func:`_csv_line` for many lines: one buffer and writer, emptied before each line."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\n")

    def __call__(self, cells: Sequence[str]) -> str:
        buffer = self._buffer
        buffer.seek(0)
        buffer.truncate()
        self._writer.writerow(cells)
        return buffer.getvalue()


def _failure(error: str) -> BulkOutcome:
    """Turn ``sf__Error`` (``CODE:message:fields``) into code and field names, no message."""
    code = error.split(":", 1)[0].strip() or "UNKNOWN_ERROR"
    tail = error.rsplit(":", 1)[-1].strip() if error.count(":") >= 2 else ""
    fields = tail if _FIELD_NAMES.match(tail) else ""
    return BulkOutcome(False, code, f"fields: {', '.join(re.split(r'[;,]', fields))}"
                       if fields else None)
