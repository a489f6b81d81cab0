"""Reading: SOQL per stream, paged by ``SystemModstamp, Id``, with deal facts rolled up.

Reads are SOQL queries ordered by ``SystemModstamp, Id`` and paged with ``query``/``query_more``
at the largest page size (2000); a page is turned into :class:`~crmsync.model.Contact` values and
handed on before the next one is fetched, so memory stays flat however large the org is.
Opportunities are rolled up into the deal facts with as few queries as possible, and contacts
whose deals changed are re-read first (deal-driven ``related`` pages).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from crmsync.connectors.base import Page, chunks
from crmsync.connectors.fieldmap import FieldMap, coerce, get_field, rollup_deals
from crmsync.connectors.salesforce.bulk import BulkQuery
from crmsync.connectors.salesforce.client import QUERY_PAGE, SalesforceClient
from crmsync.connectors.salesforce.shards import (
    KeyRange,
    in_range,
    object_shards,
    range_conditions,
)
from crmsync.connectors.salesforce.soql import _relationship, _unique, soql_datetime
from crmsync.errors import ConfigError
from crmsync.model import Contact

#: Records per results call of a Bulk 2.0 query (``maxRecords``), against 2,000 per REST page.
BULK_QUERY_PAGE = 10_000
#: Job-info polls a Bulk 2.0 query is assumed to need when weighing it against REST paging.
BULK_QUERY_POLLS = 3


def bulk_read_pays(total: int, page: int = QUERY_PAGE) -> bool:
    """Whether a full read of ``total`` records costs fewer calls as a Bulk 2.0 query.

    Weighed after the first REST page (``totalSize`` says ``total``; its length, ``page``, is
    what the server serves per call, at most 2,000): the REST pages still to come against one
    query job (create, :data:`BULK_QUERY_POLLS` polls, one results call per
    :data:`BULK_QUERY_PAGE` records). At 2,000 a page the job wins above about 14,000 records
    (20,000: 9 more REST calls against 6; 100,000: 49 against 14).
    """
    rest = math.ceil(max(0, total - page) / max(1, page))
    bulk = 1 + BULK_QUERY_POLLS + math.ceil(total / BULK_QUERY_PAGE)
    return bulk < rest


def has_deals(fieldmap: FieldMap, obj: str) -> bool:
    """Return whether ``obj`` records carry deal facts (Contacts, when deals are mapped)."""
    deals = fieldmap.deals
    return obj == "Contact" and deals is not None and "contact" in deals.fields


class ReadingMixin:
    """The read side of :class:`~crmsync.connectors.salesforce.SalesforceConnector`."""

    fieldmap: FieldMap
    objects: list[str]
    client: SalesforceClient

    def _stream_object(self, stream: str) -> str:
        prefix, _, name = stream.partition(":")
        if prefix != "salesforce" or name not in self.objects:
            raise ConfigError(f"unknown stream {stream!r}; this connector reads "
                              f"{', '.join(self.streams())}")
        return name

    def _select(self, obj: str) -> list[str]:
        mapped = self.fieldmap.objects[obj]
        return _unique(["Id", *mapped.fields(), *self.fieldmap.output_fields(), "SystemModstamp"])

    def _base_where(self, obj: str) -> list[str]:
        # Converted leads are read-only and live on as Contacts: never evaluate them twice.
        return ["IsConverted = false"] if obj == "Lead" else []

    def _has_deals(self, obj: str) -> bool:
        return has_deals(self.fieldmap, obj)

    def _to_contact(
        self, obj: str, record: Mapping[str, Any], deals: Mapping[str, Any] | None
    ) -> Contact:
        facts, outputs = self.fieldmap.to_contact_facts(obj, record)
        if deals is not None:
            facts.update(deals)
        mapped = self.fieldmap.objects[obj]
        return Contact(
            id=str(record["Id"]),
            facts=facts,
            outputs=outputs,
            object_type=obj,
            modified_at=coerce(get_field(record, mapped.modified_field), "datetime"),
            owner_id=coerce(get_field(record, mapped.owner_field), "str"),
        )

    # -- deals -------------------------------------------------------------------------------

    def _deal_select(self) -> tuple[str, str]:
        deals = self.fieldmap.deals
        assert deals is not None
        return f"SELECT {', '.join(_unique(['Id', *deals.fields.values()]))} FROM {deals.object}", \
            deals.fields["contact"]

    def _rollups(self, rows: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        """Roll deal rows up per contact (rows grouped by contact, or any order)."""
        deals = self.fieldmap.deals
        assert deals is not None
        contact_field = deals.fields["contact"]
        grouped: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows:
            contact_id = get_field(row, contact_field)
            if contact_id:
                grouped.setdefault(str(contact_id), []).append(row)
        return {cid: rollup_deals(deals, group) for cid, group in grouped.items()}

    def _upfront_rollups(self, since: datetime | None,
                         key_range: KeyRange | None = None) -> dict[str, dict[str, Any]]:
        """Read the Opportunities of every contact a read will return, in one paged query.

        For an incremental read the filter is the contact's own ``SystemModstamp`` (a parent
        field), so the query returns exactly the deals of the contacts about to be read. Rows
        come sorted by contact and only each contact's rollup is kept, never the raw rows.
        A contact that changes after this query has a ``SystemModstamp`` after the run's start,
        so the next run reads it again with fresh deal facts.
        """
        deals = self.fieldmap.deals
        assert deals is not None
        select, contact_field = self._deal_select()
        where = " AND ".join([f"{contact_field} != null",
                              *range_conditions(contact_field, key_range)])
        if since is not None:
            where += f" AND {_relationship(contact_field)}.SystemModstamp >= {soql_datetime(since)}"
        soql = f"{select} WHERE {where} ORDER BY {contact_field} ASC, Id ASC"
        out: dict[str, dict[str, Any]] = {}
        current: str | None = None
        group: list[Mapping[str, Any]] = []
        for page in self.client.query_pages(f"query {deals.object}", soql):
            for row in page:
                contact_id = str(get_field(row, contact_field))
                if contact_id != current:
                    if current is not None:
                        out[current] = rollup_deals(deals, group)
                    current, group = contact_id, []
                group.append(row)
        if current is not None:
            out[current] = rollup_deals(deals, group)
        return out

    def _rollups_for(self, contact_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Read the Opportunities of some contacts (``ContactId IN (...)``, chunked)."""
        if not contact_ids:
            return {}
        deals = self.fieldmap.deals
        assert deals is not None
        select, contact_field = self._deal_select()
        rows = [row for page in self.client.query_in(f"query {deals.object}", select, contact_field,
                                               contact_ids) for row in page]
        return self._rollups(rows)

    def _empty_rollup(self) -> dict[str, Any]:
        assert self.fieldmap.deals is not None
        return rollup_deals(self.fieldmap.deals, ())

    def _contacts(
        self, obj: str, records: Sequence[Mapping[str, Any]],
        rollups: Mapping[str, dict[str, Any]] | None,
    ) -> list[Contact]:
        if rollups is None and self._has_deals(obj):
            rollups = self._rollups_for([str(r["Id"]) for r in records])
        empty = self._empty_rollup() if rollups is not None else None
        return [
            self._to_contact(obj, r, None if rollups is None else rollups.get(str(r["Id"]), empty))
            for r in records
        ]

    # -- Connector protocol: reads -----------------------------------------------------------

    def streams(self) -> list[str]:
        """Return ``salesforce:<Object>`` for every configured object."""
        return [f"salesforce:{name}" for name in self.objects]

    def read(
        self, stream: str, since: datetime | None, until: datetime | None = None,
        key_range: KeyRange | None = None,
    ) -> Iterator[Page]:
        """Yield pages of records modified at or after ``since`` (every record when ``None``).

        Pages are in ``SystemModstamp, Id`` order (``ordered=True``). For Contacts, deal facts
        come from one upfront paged Opportunity query over the same contacts; on an incremental
        read, contacts whose Opportunities changed since ``since`` come first, in ``related``
        pages (they never move the cursor, so a stopped run re-checks them next time). A query
        locator is a snapshot, so ``until`` needs no filter here: writes made while paging do
        not shift the pages.

        A full read (``since=None``) of a large object goes through one Bulk API 2.0 query
        when that costs fewer calls: the first REST page's ``totalSize`` decides
        (:func:`bulk_read_pays`: above about 14,000 records). Those pages are ``ordered=False``.

        ``key_range`` (a shard) reads only the records whose Id is in that range, and the deals
        and deal-driven re-reads of those records only.
        """
        obj = self._stream_object(stream)
        where = self._base_where(obj) + range_conditions("Id", key_range)
        if since is not None:
            where.append(f"SystemModstamp >= {soql_datetime(since)}")
        soql = f"SELECT {', '.join(self._select(obj))} FROM {obj}"
        if where:
            soql += " WHERE " + " AND ".join(where)
        if since is not None and self._has_deals(obj):
            yield from self._related_pages(stream, obj, since, set(), key_range)
        rollups = self._upfront_rollups(since, key_range) if self._has_deals(obj) else None
        first = self.client.query_first(f"query {obj}",
                                        soql + " ORDER BY SystemModstamp ASC, Id ASC")
        total = int(first.get("totalSize") or 0)
        served = len(first.get("records") or [])
        if since is None and not first.get("done", True) and bulk_read_pays(total, served):
            yield from self._bulk_pages(stream, obj, soql, first, rollups)
            return
        for records in self.client.more_pages(f"query {obj}", first):
            if not records:
                continue
            yield Page(stream, self._contacts(obj, records, rollups), related=False, ordered=True)

    def shard_ranges(self, stream: str, count: int) -> list[KeyRange]:
        """Split an object's records into ``count`` Id ranges (two one-row queries)."""
        obj = self._stream_object(stream)
        where = " AND ".join(self._base_where(obj))
        tail = f" WHERE {where}" if where else ""

        def first_id(direction: str) -> str | None:
            soql = f"SELECT Id FROM {obj}{tail} ORDER BY Id {direction} LIMIT 1"
            rows = next(iter(self.client.query_pages(f"query {obj}", soql)), [])
            return str(rows[0]["Id"]) if rows else None

        return object_shards(first_id, count)

    def _bulk_pages(
        self, stream: str, obj: str, soql: str, first: Mapping[str, Any],
        rollups: Mapping[str, dict[str, Any]] | None,
    ) -> Iterator[Page]:
        """The rest of a large full read through one Bulk API 2.0 query (see :meth:`read`).

        The REST page already read is handed on first; the query job reads the whole object
        again (unordered: ``ORDER BY`` would turn Salesforce's PK chunking off) and skips those
        records. Every page is ``ordered=False``, so the sync moves the cursor only once the
        whole object has been read.
        """
        records = list(first.get("records") or [])
        seen = {str(r["Id"]) for r in records}
        if records:
            yield Page(stream, self._contacts(obj, records, rollups), related=False,
                       ordered=False)
        # Fetched 10,000 a call, decided 2,000 at a time as REST pages are: a page's contacts,
        # plans and journal rows are what a run holds at once.
        for page in BulkQuery(self.client, BULK_QUERY_PAGE).pages(obj, soql, chunk=QUERY_PAGE):
            fresh = [r for r in page if str(r.get("Id")) not in seen]
            if fresh:
                yield Page(stream, self._contacts(obj, fresh, rollups), related=False,
                           ordered=False)

    def _related_pages(
        self, stream: str, obj: str, since: datetime, yielded: set[str],
        key_range: KeyRange | None = None,
    ) -> Iterator[Page]:
        deals = self.fieldmap.deals
        assert deals is not None
        contact_field = deals.fields["contact"]
        modified = deals.fields.get("modified", "SystemModstamp")
        soql = (f"SELECT {contact_field} FROM {deals.object} WHERE {modified} >= "
                f"{soql_datetime(since)} AND {contact_field} != null")
        changed: dict[str, None] = {}
        for page in self.client.query_pages(f"query {deals.object}", soql):
            for row in page:
                contact_id = str(get_field(row, contact_field))
                if contact_id not in yielded and in_range(contact_id, key_range):
                    changed.setdefault(contact_id, None)
        ids = list(changed)
        for batch in chunks(ids, QUERY_PAGE):
            contacts = self._read_ids(obj, batch)
            if contacts:
                yield Page(stream, contacts, related=True, ordered=True)

    def read_ids(self, stream: str, ids: Sequence[str]) -> list[Contact]:
        """Read specific records by id (``WHERE Id IN (...)``, chunked); unknown ids are skipped."""
        return self._read_ids(self._stream_object(stream), ids)

    def _read_ids(self, obj: str, ids: Sequence[str]) -> list[Contact]:
        out: list[Contact] = []
        select = f"SELECT {', '.join(self._select(obj))} FROM {obj}"
        tail = "".join(f" AND {condition}" for condition in self._base_where(obj))
        for page in self.client.query_in(f"query {obj}", select, "Id", ids, tail):
            out.extend(self._contacts(obj, page, None))
        return out
