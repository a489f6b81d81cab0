"""Read-only: Salesforce Contacts whose Opportunities closed in a window, with as-of facts.

For ``crmsync backtest``. One paged SOQL query finds the Opportunities closed won or lost
(the field map's stages) in the window with a ``ContactId``; then, per chunk of contacts, the
Contacts themselves, all their Opportunities (with ``CreatedDate``) and their
``ContactHistory`` rows for the mapped fields. Nothing is written.

``ContactHistory`` holds a row per change of a *tracked* field (``Field``, ``OldValue``,
``NewValue``, ``CreatedDate``); a field without rows is either untracked or unchanged, so its
current value is used and labelled ``current`` (:mod:`crmsync.connectors.asof`). Fields read
through the Account (``Account.NumberOfEmployees``) have no Contact history at all. A
``CloseDate`` is a date: the facts are those at that day's start (UTC).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from crmsync.connectors.asof import (
    OutcomeRecord,
    changes_to_timeline,
    deals_as_of,
    facts_as_of,
    outcome_of,
)
from crmsync.connectors.base import chunks
from crmsync.connectors.fieldmap import FieldMap, coerce, get_field
from crmsync.connectors.salesforce.client import SalesforceClient
from crmsync.connectors.salesforce.soql import _unique, soql_string
from crmsync.errors import ConfigError

#: Contacts per round of Contact, Opportunity and ContactHistory queries.
CHUNK = 500
HISTORY_OBJECT = "ContactHistory"


def _soql_date(moment: datetime) -> str:
    return moment.date().isoformat()


class OutcomeReader:
    """Reads closed Opportunities and their Contacts' as-of facts with SOQL."""

    def __init__(self, client: SalesforceClient, fieldmap: FieldMap) -> None:
        deals = fieldmap.deals
        if deals is None or "contact" not in deals.fields or "Contact" not in fieldmap.objects:
            raise ConfigError(f"{fieldmap.path}: a backtest needs the field map's Contact object "
                              "and a 'deals' section with fields.contact (Opportunity.ContactId)")
        if not deals.fields.get("closed_at") or not deals.fields.get("stage"):
            raise ConfigError(f"{fieldmap.path}: a backtest needs deals.fields.closed_at and "
                              "deals.fields.stage")
        self.client = client
        self.fieldmap = fieldmap

    def read_outcomes(self, since: datetime, until: datetime) -> Iterator[OutcomeRecord]:
        """Yield one record per Contact with an Opportunity closed in ``[since, until)``.

        ``CloseDate`` is a date: ``since``'s and ``until``'s dates bound it (``until``'s
        excluded). A Contact with several such Opportunities is judged on the latest.
        """
        deals = self.fieldmap.deals
        assert deals is not None
        f = deals.fields
        stages = ", ".join(soql_string(s) for s in sorted(deals.won_stages | deals.lost_stages))
        soql = (f"SELECT Id, {f['contact']}, {f['stage']}, {f['closed_at']} FROM {deals.object} "
                f"WHERE {f['contact']} != null AND {f['stage']} IN ({stages}) "
                f"AND {f['closed_at']} >= {_soql_date(since)} "
                f"AND {f['closed_at']} < {_soql_date(until)} ORDER BY {f['closed_at']} ASC, Id ASC")
        judged: dict[str, tuple[str, datetime, str]] = {}
        for page in self.client.query_pages(f"query closed {deals.object}", soql):
            for row in page:
                at = coerce(get_field(row, f["closed_at"]), "datetime")
                outcome = outcome_of(deals, get_field(row, f["stage"]))
                if at is None or outcome is None:
                    continue
                contact_id = str(get_field(row, f["contact"]))
                best = judged.get(contact_id)
                if best is None or (at, str(row["Id"])) > (best[1], best[0]):
                    judged[contact_id] = (str(row["Id"]), at, outcome)
        for chunk in chunks(sorted(judged), CHUNK):
            yield from self._contacts(chunk, judged)

    def _contacts(self, ids: Sequence[str],
                  judged: Mapping[str, tuple[str, datetime, str]]) -> Iterator[OutcomeRecord]:
        deals = self.fieldmap.deals
        assert deals is not None
        mapped = self.fieldmap.objects["Contact"]
        select = f"SELECT {', '.join(_unique(['Id', *mapped.fields()]))} FROM Contact"
        records = [r for page in self.client.query_in("query Contact", select, "Id", ids)
                   for r in page]
        contact_field = deals.fields["contact"]
        deal_select = (f"SELECT {', '.join(_unique(['Id', 'CreatedDate', *deals.fields.values()]))}"
                       f" FROM {deals.object}")
        their_deals: dict[str, list[dict[str, Any]]] = {}
        for page in self.client.query_in(f"query {deals.object}", deal_select, contact_field, ids):
            for row in page:
                their_deals.setdefault(str(get_field(row, contact_field)), []).append(row)
        history = self._history(ids, [f for f in mapped.fields() if "." not in f])
        for record in records:
            contact_id = str(record["Id"])
            deal_id, closed_at, outcome = judged[contact_id]
            as_of_deals = deals_as_of(deals, their_deals.get(contact_id, []), judged=deal_id,
                                      id_field="Id", created_field="CreatedDate",
                                      moment=closed_at)
            facts, sources = facts_as_of(self.fieldmap, "Contact", record,
                                         history.get(contact_id, {}), closed_at, as_of_deals)
            facts["id"] = contact_id
            yield OutcomeRecord(contact_id, "Contact", deal_id, outcome, closed_at, closed_at,
                                facts, sources)

    def _history(self, ids: Sequence[str],
                 fields: Sequence[str]) -> dict[str, dict[str, list[tuple[datetime, Any]]]]:
        """Return ``{contact id: {field (lower case): timeline}}`` from ``ContactHistory``."""
        wanted = {name.lower(): name for name in fields}
        names = ", ".join(soql_string(name) for name in wanted.values())
        select = f"SELECT ContactId, Field, OldValue, NewValue, CreatedDate FROM {HISTORY_OBJECT}"
        rows: dict[str, dict[str, list[tuple[datetime, Any, Any]]]] = {}
        for page in self.client.query_in(f"query {HISTORY_OBJECT}", select, "ContactId", ids,
                                         f" AND Field IN ({names})"):
            for row in page:
                field = str(row.get("Field") or "").lower()
                at = coerce(row.get("CreatedDate"), "datetime")
                if field not in wanted or at is None:
                    continue
                rows.setdefault(str(row["ContactId"]), {}).setdefault(field, []).append(
                    (at, row.get("OldValue"), row.get("NewValue")))
        return {contact: {field: changes_to_timeline(changes)
                          for field, changes in per_field.items()}
                for contact, per_field in rows.items()}
