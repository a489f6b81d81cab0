"""Reading HubSpot contacts: windowed search, associations and deal roll-ups.

Full and incremental reads search ``lastmodifieddate >= since`` (the epoch for a full read) in
ascending order at 200 a page, each page a new search window (``GTE`` the last timestamp seen,
boundary ids de-duplicated), so no request nears HubSpot's 10,000-result cap. Deals are found
with v4 association reads (1000 contacts a call) and batch-read at 100, rolled up by the field
map; deal ids are pooled across a few pages so that deal reads run at full batches (memory stays
bounded by :data:`~crmsync.connectors.hubspot.wire.MAX_PENDING_PAGES`, not by the org). Contacts
whose deals changed since the cursor come first, in ``related`` pages.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crmsync.connectors.base import Page, chunks
from crmsync.connectors.fieldmap import FieldMap, coerce
from crmsync.connectors.hubspot.client import HubSpotClient
from crmsync.connectors.hubspot.shards import KeyRange, contact_shards, in_range, range_filters
from crmsync.connectors.hubspot.wire import (
    ASSOCIATION_BATCH,
    BATCH,
    MAX_PENDING_PAGES,
    SEARCH_PAGE,
    _modified_ms,
    _ms,
    _next_after,
    _props,
    _results,
)
from crmsync.errors import ConfigError
from crmsync.model import Contact


@dataclass
class _Pending:
    """A page of contacts waiting for its deals to be read."""

    records: list[Any]
    links: dict[str, list[str]]
    related: bool
    ordered: bool


class ContactReader:
    """Reads the ``hubspot:contacts`` stream (with deals) through one :class:`HubSpotClient`."""

    def __init__(self, client: HubSpotClient, fieldmap: FieldMap) -> None:
        self._http = client
        self._raw = client.raw
        self.fieldmap = fieldmap
        contacts = fieldmap.objects["contacts"]
        self._modified = contacts.modified_field
        self._owner_field = contacts.owner_field
        self._properties = list(dict.fromkeys([*contacts.fields(), *fieldmap.output_fields()]))

    def _check_stream(self, stream: str) -> None:
        if stream != "hubspot:contacts":
            raise ConfigError(f"unknown stream {stream!r}: HubSpot has only hubspot:contacts")

    # -- reading ------------------------------------------------------------------------------

    def streams(self) -> list[str]:
        """Return the one contact stream, ``hubspot:contacts``."""
        return ["hubspot:contacts"]

    def read(
        self, stream: str, since: datetime | None, until: datetime | None = None,
        key_range: KeyRange | None = None,
    ) -> Iterator[Page]:
        """Yield pages of contacts modified at or after ``since`` (every contact when ``None``).

        Both full and incremental reads search in ascending ``lastmodifieddate`` order
        (``ordered=True``) at 200 a page, keyset-windowed around the 10,000-result cap and
        bounded above by ``until`` (the run's start). A full read is a search from the epoch:
        it costs ``N/200`` searches plus a v4 association read per 1000 contacts for their deals,
        against ``N/100`` list pages with deals inline: fewer calls for any account of more than
        200 contacts, one more for an account of at most 100 with deals mapped. On incremental
        reads, contacts whose deals changed since ``since`` come first, in ``related`` pages.

        ``key_range`` (a shard: ``hs_object_id`` from ``lo`` up to, not including, ``hi``)
        reads only that slice; deal-driven re-reads are kept to the slice too.
        """
        self._check_stream(stream)
        id_filters = range_filters(key_range)
        deals = self.fieldmap.deals
        since_ms = _ms(since) if since is not None else 0

        def searched() -> Iterator[_Pending]:
            pages = self._search_windows("contacts", "contacts.search", self._modified,
                                         since_ms, self._properties,
                                         _ms(until) if until is not None else None,
                                         extra_filters=id_filters)
            # The ids read here are not remembered: the deal-driven re-reads come first and are
            # done by now (a set of every id read grew the run's memory with the portal).
            if deals is None:
                for records in pages:
                    yield _Pending(records, {}, False, True)
                return
            # Search results carry no associations: v4 reads find the deals.
            for records, links in self._linked(pages, "contacts", deals.object):
                yield _Pending(records, links, False, True)

        if deals is not None and since is not None:
            # Deal-driven re-reads come first: they never move the cursor, so a run stopped
            # half-way re-checks them next time instead of losing them behind a moved cursor.
            # (A full read reads every contact anyway.)
            yield from self._with_deals(stream, self._related(since, key_range))
        yield from self._with_deals(stream, searched())

    def shard_ranges(self, stream: str, count: int) -> list[KeyRange]:
        """Return ``count`` ``hs_object_id`` ranges that together hold every contact."""
        self._check_stream(stream)

        def search(body: dict[str, Any]) -> dict[str, Any]:
            return self._http.call("search contacts", "contacts.search",
                                   lambda api: api.do_search(public_object_search_request=body,
                                                             **self._raw), search=True)

        return contact_shards(search, count)

    def read_ids(self, stream: str, ids: Sequence[str]) -> list[Contact]:
        """Read specific contacts by id (batch read, with deals); unknown ids are skipped."""
        self._check_stream(stream)
        out: list[Contact] = []
        for page in self._with_deals(stream, self._read_batches(list(dict.fromkeys(ids)), False)):
            out.extend(page.contacts)
        return out

    def _search_windows(
        self, what: str, api_name: str, field: str, since_ms: int, properties: list[str],
        until_ms: int | None = None, extra_filters: Sequence[dict[str, str]] = (),
    ) -> Iterator[list[Any]]:
        """Yield search result pages (ascending ``field``), keyset-paged.

        Every page is a fresh search ``GTE`` the last timestamp seen (records at exactly that
        timestamp already yielded are dropped), never an offset into a moving result set:
        records written meanwhile (by crmsync itself, between pages) jump to the end of the
        order, and an offset would then skip as many unread ones. ``until_ms`` bounds the
        search (``LT``) so records changed after the run started wait for the next run. A page
        whose records all share one timestamp (an import) is followed through that timestamp
        by id (:meth:`_one_stamp`), then the search goes on strictly after it: no request ever
        nears the 10,000-result cap, however many records share a timestamp.
        """
        start, strict, skip = since_ms, False, set[str]()
        while True:
            filters = [{"propertyName": field, "operator": "GT" if strict else "GTE",
                        "value": str(start)}]
            if until_ms is not None:
                filters.append({"propertyName": field, "operator": "LT", "value": str(until_ms)})
            filters.extend(extra_filters)
            page = self._search(what, api_name, filters, field, properties)
            results = _results(page)
            fresh = []
            last_ms: int | None = None
            at_last: set[str] = set()
            for record in results:
                stamp = _modified_ms(record, field)
                if stamp is not None and stamp <= start and str(record["id"]) in skip:
                    continue
                fresh.append(record)
                if stamp is not None and (last_ms is None or stamp > last_ms):
                    last_ms, at_last = stamp, set()
                if stamp is not None and stamp == last_ms:
                    at_last.add(str(record["id"]))
            if fresh:
                yield fresh
            if not _next_after(page):
                return
            if last_ms is None or last_ms <= start:
                # The whole page sits on the window's first timestamp: step through it by id.
                seen = skip | {str(r["id"]) for r in results}
                yield from self._one_stamp(what, api_name, field, start, properties, seen,
                                          extra_filters)
                strict, skip = True, set()
                continue
            start, strict, skip = last_ms, False, at_last

    def _one_stamp(
        self, what: str, api_name: str, field: str, stamp: int, properties: list[str],
        seen: set[str], extra_filters: Sequence[dict[str, str]] = (),
    ) -> Iterator[list[Any]]:
        """Yield the records whose ``field`` is exactly ``stamp``, keyset-paged by id."""
        last_id = 0
        while True:
            filters = [{"propertyName": field, "operator": "EQ", "value": str(stamp)},
                       {"propertyName": "hs_object_id", "operator": "GT", "value": str(last_id)},
                       *extra_filters]
            page = self._search(what, api_name, filters, "hs_object_id", properties)
            results = _results(page)
            fresh = [r for r in results if str(r["id"]) not in seen]
            if fresh:
                yield fresh
            if not results or not _next_after(page):
                return
            last_id = max(int(r["id"]) for r in results)

    def _search(
        self, what: str, api_name: str, filters: list[dict[str, Any]], sort: str,
        properties: list[str],
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "filterGroups": [{"filters": filters}],
            "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
            "properties": properties,
            "limit": SEARCH_PAGE,
            "after": "0",
        }
        return self._http.call(f"search {what}", api_name,
                               lambda api: api.do_search(public_object_search_request=body,
                                                         **self._raw),
                               search=True)

    def associated(self, from_type: str, to_type: str, ids: Sequence[str]) -> dict[str, list[str]]:
        """Return ``{from id: [to ids]}`` through v4 batch association reads (1000 a call)."""
        out: dict[str, list[str]] = {}
        for chunk in chunks(list(dict.fromkeys(ids)), ASSOCIATION_BATCH):
            body = {"inputs": [{"id": i} for i in chunk]}
            answer = self._http.call(
                f"read {from_type} to {to_type} associations", "associations.batch",
                lambda api, b=body: api.get_page(
                    from_type, to_type, batch_input_public_fetch_associations_batch_request=b,
                    **self._raw))
            # Ids with no associations come back as 207 errors; they simply have none.
            for result in _results(answer):
                from_id = str((result.get("from") or {}).get("id", ""))
                # v4 ids are JSON numbers on the real API, strings in v3: normalise.
                targets = [str(t.get("toObjectId")) for t in result.get("to") or []]
                out.setdefault(from_id, []).extend(t for t in targets
                                                   if t not in out.get(from_id, []))
        return out

    def _linked(
        self, pages: Iterable[list[dict[str, Any]]], from_type: str, to_type: str
    ) -> Iterator[tuple[list[dict[str, Any]], dict[str, list[str]]]]:
        """Pair pages with their associations, read in full v4 batches of 1000 ids.

        Holds back at most :data:`ASSOCIATION_BATCH` records plus one page, so memory stays
        bounded while a read makes one association call per 1000 records, not one per page.
        """
        held: deque[list[dict[str, Any]]] = deque()
        unlinked: list[str] = []  # ids of held records whose associations are not read yet
        links: dict[str, list[str]] = {}  # read, for records still held
        refs: dict[str, int] = {}  # how many held pages carry each id

        def read(ids: list[str]) -> None:
            found = self.associated(from_type, to_type, ids)
            for record_id in ids:
                links[record_id] = found.get(record_id, [])

        def release() -> Iterator[tuple[list[dict[str, Any]], dict[str, list[str]]]]:
            while held and all(str(r["id"]) in links for r in held[0]):
                records = held.popleft()
                yield records, {str(r["id"]): links[str(r["id"])] for r in records}
                for record in records:
                    record_id = str(record["id"])
                    refs[record_id] -= 1
                    if not refs[record_id]:
                        del refs[record_id], links[record_id]

        for records in pages:
            held.append(records)
            for record in records:
                record_id = str(record["id"])
                if record_id not in refs and record_id not in links:
                    unlinked.append(record_id)
                refs[record_id] = refs.get(record_id, 0) + 1
            while len(unlinked) >= ASSOCIATION_BATCH:
                read(unlinked[:ASSOCIATION_BATCH])
                del unlinked[:ASSOCIATION_BATCH]
                yield from release()
        if unlinked:
            read(unlinked)
            unlinked.clear()
        yield from release()

    def _read_batches(self, ids: Sequence[str], related: bool) -> Iterator[_Pending]:
        for chunk in chunks(list(ids), BATCH):
            body = {"inputs": [{"id": i} for i in chunk], "properties": self._properties}
            answer = self._http.call("batch read contacts", "contacts.batch",
                                lambda api, b=body: api.read(
                                    batch_read_input_simple_public_object_id=b, archived=False,
                                    **self._raw))
            records = _results(answer)
            if not records:
                continue
            links = (self.associated("contacts", self.fieldmap.deals.object,
                                      [str(r["id"]) for r in records])
                     if self.fieldmap.deals is not None else {})
            yield _Pending(records, links, related, True)

    def _related(self, since: datetime,
                 key_range: KeyRange | None = None) -> Iterator[_Pending]:
        """Contacts (within ``key_range``, each once) whose deals changed since ``since``."""
        yielded: set[str] = set()
        deals = self.fieldmap.deals
        assert deals is not None
        field = deals.fields.get("modified", "hs_lastmodifieddate")
        waiting: list[str] = []
        pages = self._search_windows(deals.object, "deals.search", field, _ms(since), [field])
        for _found, links in self._linked(pages, deals.object, "contacts"):
            for contact_ids in links.values():
                for contact_id in contact_ids:
                    if contact_id not in yielded and in_range(contact_id, key_range):
                        yielded.add(contact_id)
                        waiting.append(contact_id)
            while len(waiting) >= BATCH:
                yield from self._read_batches(waiting[:BATCH], True)
                waiting = waiting[BATCH:]
        if waiting:
            yield from self._read_batches(waiting, True)

    def _with_deals(self, stream: str, pages: Iterable[_Pending]) -> Iterator[Page]:
        """Turn pending pages into Pages, reading their deals at full batches where possible.

        Deal ids are pooled over up to :data:`MAX_PENDING_PAGES` pages: a page is released as
        soon as all its deals are read; partial deal batches are read only when the pool of
        pages is full or the stream ends.
        """
        pending: deque[_Pending] = deque()
        queued: list[str] = []  # deal ids to read, in page order
        known: dict[str, dict[str, Any]] = {}  # deal id -> properties (read, not yet released)
        wanted: set[str] = set()

        def release() -> Iterator[Page]:
            while pending:
                head = pending[0]
                needed = {d for ids in head.links.values() for d in ids}
                if not needed <= known.keys():
                    return
                pending.popleft()
                yield self._page(stream, head, known)
                still = {d for p in pending for ids in p.links.values() for d in ids}
                for deal_id in needed - still:
                    known.pop(deal_id, None)
                    wanted.discard(deal_id)

        for item in pages:
            pending.append(item)
            for ids in item.links.values():
                for deal_id in ids:
                    if deal_id not in wanted:
                        wanted.add(deal_id)
                        queued.append(deal_id)
            while len(queued) >= BATCH:
                known.update(self._read_deals(queued[:BATCH]))
                queued = queued[BATCH:]
            yield from release()
            if len(pending) >= MAX_PENDING_PAGES and queued:
                known.update(self._read_deals(queued))
                queued = []
                yield from release()
        if queued:
            for chunk in chunks(queued, BATCH):
                known.update(self._read_deals(chunk))
        yield from release()

    def _read_deals(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        deals = self.fieldmap.deals
        if deals is None or not ids:
            return {}
        names = list(dict.fromkeys(deals.fields.values()))
        body = {"inputs": [{"id": i} for i in ids], "properties": names}
        answer = self._http.call("batch read deals", "deals.batch",
                            lambda api: api.read(batch_read_input_simple_public_object_id=body,
                                                 archived=False, **self._raw))
        found = {str(d["id"]): _props(d) for d in _results(answer)}
        # A deal deleted since it was linked is simply gone: roll up without it.
        for deal_id in ids:
            found.setdefault(deal_id, {})
        return found

    def _companies(self, records: Sequence[Any]) -> dict[str, dict[str, Any]]:
        """Return ``{contact id: its company's properties}`` when the map reads companies.

        One v4 association read and a batch read per 100 companies, per page: only maps with
        a ``companies`` section pay for it. A contact with several companies gets the first
        (lowest id), the one HubSpot's UI lists first; a company gone meanwhile is skipped.
        """
        companies = self.fieldmap.companies
        if companies is None or not records:
            return {}
        links = self.associated("contacts", companies.object, [str(r["id"]) for r in records])
        first = {contact: ids[0] for contact, ids in links.items() if ids}
        wanted = list(dict.fromkeys(first.values()))
        found: dict[str, dict[str, Any]] = {}
        for chunk in chunks(wanted, BATCH):
            body = {"inputs": [{"id": i} for i in chunk], "properties": companies.fields()}
            answer = self._http.call(
                "batch read companies", "companies.batch",
                lambda api, b=body: api.read(batch_read_input_simple_public_object_id=b,
                                             archived=False, **self._raw))
            found.update({str(c["id"]): _props(c) for c in _results(answer)})
        return {contact: found[company] for contact, company in first.items() if company in found}

    def _page(self, stream: str, item: _Pending, deals: Mapping[str, dict[str, Any]]) -> Page:
        contacts = []
        employers = self._companies(item.records)
        for record in item.records:
            record_id = str(record["id"])
            props = record.get("properties")
            # The parsed properties as they are (read only from here on): a copy only when
            # hs_object_id must be added (HubSpot always sends it) or they are not a dict.
            if props.__class__ is not dict or "hs_object_id" not in props:
                props = _props(record)
                props.setdefault("hs_object_id", record_id)
            related = [deals[d] for d in item.links.get(record_id, ()) if deals.get(d)]
            facts, outputs = self.fieldmap.to_contact_facts("contacts", props, related,
                                                            employers.get(record_id))
            facts.setdefault("id", record_id)
            moment = coerce(props.get(self._modified) or record.get("updatedAt"), "datetime")
            owner = coerce(props.get(self._owner_field), "str") if self._owner_field else None
            contacts.append(Contact(record_id, facts, outputs, object_type="contacts",
                                    modified_at=moment, owner_id=owner))
        return Page(stream, contacts, related=item.related, ordered=item.ordered)
