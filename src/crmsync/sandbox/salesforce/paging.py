"""``query`` / ``queryAll`` and their ``nextRecordsUrl`` locators (§2.3).

The result of a query is computed once, when the first page is asked for, and kept under its
locator; later pages slice that list. Page size follows ``Sforce-Query-Options: batchSize=N``
(clamped to 200..2000) and can be forced smaller by the sandbox ``page_size`` knob.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from crmsync.sandbox.salesforce.dml import RequestError
from crmsync.sandbox.salesforce.ids import make_id
from crmsync.sandbox.salesforce.query import CompiledQuery
from crmsync.sandbox.salesforce.soql import SoqlError
from crmsync.sandbox.salesforce.store import Record, Store

DEFAULT_BATCH = 2000
MAX_CURSORS = 64  # no per-user cursor limit in v56+, but the sandbox must not grow unbounded
_LOCATOR = re.compile(r"^(0r8[A-Za-z0-9]{15})-(\d+)$")
_BATCH = re.compile(r"batchSize\s*=\s*(\d+)", re.IGNORECASE)


@dataclass
class Cursor:
    """A computed query result a locator pages through."""

    compiled: CompiledQuery
    rows: list[Record]
    created: datetime


class QueryService:
    """Runs queries and serves their pages."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.cursors: OrderedDict[str, Cursor] = OrderedDict()
        self._sequence = 0
        self.page_size: int | None = None
        self.locator_ttl = timedelta(days=2)

    def first_page(
        self, soql_text: str | None, *, include_deleted: bool, headers: dict[str, str],
        now: datetime, version: str,
    ) -> dict[str, Any]:
        """Run a query and return its first page."""
        if not soql_text:
            raise RequestError("MALFORMED_QUERY", "A query string must be provided.")
        try:
            compiled = CompiledQuery(soql_text, self.store, now, version)
        except SoqlError as error:
            raise RequestError(error.code, error.message) from None
        rows = compiled.run(include_deleted=include_deleted)
        if compiled.is_aggregate:
            records = compiled.aggregate_rows(rows)
            total = len(rows) if compiled.parsed.count_only else len(records)
            return {"totalSize": total, "done": True, "records": records}
        cursor = Cursor(compiled, rows, now)
        return self._page(cursor, None, 0, headers, version)

    def next_page(
        self, token: str, *, headers: dict[str, str], now: datetime, version: str
    ) -> dict[str, Any]:
        """Serve ``GET /query/<locator>-<n>``."""
        m = _LOCATOR.match(token)
        cursor = self.cursors.get(m.group(1)) if m else None
        if m is None or cursor is None or now - cursor.created > self.locator_ttl:
            if m is not None:
                self.cursors.pop(m.group(1), None)
            raise RequestError("INVALID_QUERY_LOCATOR", "invalid query locator")
        start = int(m.group(2))
        if start > len(cursor.rows):
            raise RequestError("INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(cursor, m.group(1), start, headers, version)

    def _page(
        self, cursor: Cursor, locator: str | None, start: int, headers: dict[str, str], version: str
    ) -> dict[str, Any]:
        size = self._page_size(headers)
        end = min(start + size, len(cursor.rows))
        body: dict[str, Any] = {"totalSize": len(cursor.rows), "done": end >= len(cursor.rows)}
        if not body["done"]:
            if locator is None:
                locator = self._remember(cursor)
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{locator}-{end}"
        body["records"] = [cursor.compiled.render(rec) for rec in cursor.rows[start:end]]
        return body

    def _page_size(self, headers: dict[str, str]) -> int:
        size = DEFAULT_BATCH
        m = _BATCH.search(headers.get("sforce-query-options", ""))
        if m:
            size = max(200, min(DEFAULT_BATCH, int(m.group(1))))
        if self.page_size is not None:
            size = min(size, max(1, self.page_size))
        return size

    def _remember(self, cursor: Cursor) -> str:
        self._sequence += 1
        locator = make_id("0r8", self._sequence)
        self.cursors[locator] = cursor
        while len(self.cursors) > MAX_CURSORS:
            self.cursors.popitem(last=False)
        return locator

    def forget_all(self) -> None:
        """Drop every cursor (after a restore)."""
        self.cursors.clear()
