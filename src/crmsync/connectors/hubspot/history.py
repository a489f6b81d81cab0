"""Read-only: HubSpot contacts whose deals closed in a window, with facts as of the close.

For ``crmsync backtest``. Closed deals are found with a deals search on the field map's close
date (keyset-windowed like a contact read, restricted to the won and lost stages), their
contacts through v4 associations, and each contact is batch-read with ``propertiesWithHistory``
for every mapped fact field. Their other deals (with ``createdate``) are read too, so the deal
facts can be rolled up as they stood. Nothing is written and nothing is journaled.

HubSpot lists a property's history newest first, one ``{value, timestamp}`` entry per change
(an empty string for a cleared value); a property with a value but an empty history (records
imported without it) keeps its current value, labelled ``current``
(:mod:`crmsync.connectors.asof`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from crmsync.connectors.asof import OutcomeRecord, deals_as_of, facts_as_of, outcome_of
from crmsync.connectors.base import chunks
from crmsync.connectors.fieldmap import coerce
from crmsync.connectors.hubspot.reading import ContactReader
from crmsync.connectors.hubspot.wire import BATCH, _ms, _props, _results
from crmsync.errors import ConfigError

#: Contacts per batch read when history is asked for (HubSpot pages history reads at 50).
HISTORY_BATCH = 50
#: The deal property holding a deal's creation (system property on every portal).
DEAL_CREATED = "createdate"


def timelines(record: Mapping[str, Any]) -> dict[str, list[tuple[datetime, Any]]]:
    """Return ``{property: [(since, value), ...]}`` oldest first from ``propertiesWithHistory``."""
    out: dict[str, list[tuple[datetime, Any]]] = {}
    for name, entries in (record.get("propertiesWithHistory") or {}).items():
        points = []
        for entry in entries or []:
            at = coerce((entry or {}).get("timestamp"), "datetime")
            if at is not None:
                value = entry.get("value")
                points.append((at, None if value == "" else value))
        points.sort(key=lambda p: p[0])
        out[name] = points
    return out


class OutcomeReader:
    """Reads closed deals and their contacts' as-of facts through a :class:`ContactReader`."""

    def __init__(self, reader: ContactReader) -> None:
        self.reader = reader
        self.fieldmap = reader.fieldmap
        if self.fieldmap.deals is None:
            raise ConfigError(f"{self.fieldmap.path}: a backtest needs the field map's 'deals' "
                              "section (closed deals are the outcomes)")
        self._http = reader._http
        self._raw = reader._raw

    def read_outcomes(self, since: datetime, until: datetime) -> Iterator[OutcomeRecord]:
        """Yield one record per contact with a deal closed (won or lost) in ``[since, until)``.

        A contact with several such deals is judged on the latest one.
        """
        deals = self.fieldmap.deals
        assert deals is not None
        close_field = deals.fields.get("closed_at")
        stage_field = deals.fields.get("stage")
        if not close_field or not stage_field:
            raise ConfigError(f"{self.fieldmap.path}: a backtest needs deals.fields.closed_at "
                              "and deals.fields.stage")
        stages = sorted(deals.won_stages | deals.lost_stages)
        closed: dict[str, dict[str, Any]] = {}
        pages = self.reader._search_windows(
            deals.object, "deals.search", close_field, _ms(since), [close_field, stage_field],
            _ms(until), extra_filters=[{"propertyName": stage_field, "operator": "IN",
                                        "values": stages}])
        for page in pages:
            for deal in page:
                closed[str(deal["id"])] = _props(deal)
        links = self.reader.associated(deals.object, "contacts", list(closed))
        judged: dict[str, tuple[str, datetime, str]] = {}  # contact -> (deal, closed, outcome)
        for deal_id, contacts in links.items():
            props = closed.get(deal_id) or {}
            at = coerce(props.get(close_field), "datetime")
            outcome = outcome_of(deals, props.get(stage_field))
            if at is None or outcome is None:
                continue
            for contact_id in contacts:
                best = judged.get(contact_id)
                if best is None or (at, deal_id) > (best[1], best[0]):
                    judged[contact_id] = (deal_id, at, outcome)
        for chunk in chunks(sorted(judged, key=int), HISTORY_BATCH):
            yield from self._contacts(chunk, judged)

    def _contacts(self, ids: Sequence[str],
                  judged: Mapping[str, tuple[str, datetime, str]]) -> Iterator[OutcomeRecord]:
        deals = self.fieldmap.deals
        assert deals is not None
        fields = self.fieldmap.objects["contacts"].fields()
        body = {"inputs": [{"id": i} for i in ids], "properties": fields,
                "propertiesWithHistory": fields}
        answer = self._http.call("batch read contacts with history", "contacts.batch",
                                 lambda api: api.read(batch_read_input_simple_public_object_id=body,
                                                      archived=False, **self._raw))
        records = _results(answer)
        links = self.reader.associated("contacts", deals.object, [str(r["id"]) for r in records])
        their_deals = self._read_deals([d for ids_ in links.values() for d in ids_])
        employers = self.reader._companies(records)
        for record in records:
            contact_id = str(record["id"])
            deal_id, closed_at, outcome = judged[contact_id]
            props = _props(record)
            props.setdefault("hs_object_id", contact_id)
            rows = [{**their_deals[d], "hs_object_id": d} for d in links.get(contact_id, ())
                    if d in their_deals]
            as_of_deals = deals_as_of(deals, rows, judged=deal_id, id_field="hs_object_id",
                                      created_field=DEAL_CREATED, moment=closed_at)
            facts, sources = facts_as_of(self.fieldmap, "contacts", props, timelines(record),
                                         closed_at, as_of_deals, employers.get(contact_id))
            facts["id"] = contact_id
            yield OutcomeRecord(contact_id, "contacts", deal_id, outcome, closed_at, closed_at,
                                facts, sources)

    def _read_deals(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        deals = self.fieldmap.deals
        assert deals is not None
        names = list(dict.fromkeys([*deals.fields.values(), DEAL_CREATED]))
        found: dict[str, dict[str, Any]] = {}
        for chunk in chunks(list(dict.fromkeys(ids)), BATCH):
            body = {"inputs": [{"id": i} for i in chunk], "properties": names}
            answer = self._http.call("batch read deals", "deals.batch",
                                     lambda api, b=body: api.read(
                                         batch_read_input_simple_public_object_id=b,
                                         archived=False, **self._raw))
            found.update({str(d["id"]): _props(d) for d in _results(answer)})
        return found
