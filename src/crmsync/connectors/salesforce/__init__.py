"""The Salesforce connector: Lead and Contact streams over simple-salesforce's REST client.

Reads are SOQL queries ordered by ``SystemModstamp, Id``, paged at the largest page size; writes
use sObject Collections (200 records a call, per-record results); tasks are upserted by
crmsync's external-id key, which makes a retried create harmless. Every HTTP call goes through
one :class:`~.client.SalesforceClient` (pacing, quota guard, retries, accounting) and
:func:`~.translate._translated`, the one place vendor errors become crmsync errors.

Thread safety: a :class:`SalesforceConnector` may be called from several threads at once: they
share one simple-salesforce client and ``requests`` session, a locked call counter and one pacer
(:mod:`crmsync.connectors.pacing`); logging in, first or again after an expired session that the
SDK does not refresh (Bulk 2.0 calls), happens once, under a lock. Connectors of one org share a
pacer by passing the same one to each.

Modules, one seam each:

* :mod:`.auth` -- session, password (SOAP) and JWT login;
* :mod:`.translate` -- vendor exceptions to crmsync errors;
* :mod:`.client` -- the SDK calls: retry, quota guard, paging, ``IN`` chunking;
* :mod:`.soql` -- SOQL literals and helpers;
* :mod:`.reading` -- streams, deal rollups, deal-driven re-reads, large full reads by Bulk query;
* :mod:`.writing` -- sObject Collections, and ``write_fields_bulk``;
* :mod:`.bulk` -- Bulk API 2.0 ingest and query jobs, each step a paced, retried call;
* :mod:`.tasks` -- task find / upsert / close;
* :mod:`.setup` -- describe checks and Tooling API field creation;
* :mod:`.connector` -- :class:`SalesforceConnector`, assembled from the above.
"""

from __future__ import annotations

from crmsync.connectors.salesforce.auth import SalesforceAuth
from crmsync.connectors.salesforce.client import MAX_URL_CHARS, QUERY_PAGE, SalesforceClient
from crmsync.connectors.salesforce.connector import SalesforceConnector
from crmsync.connectors.salesforce.soql import chunk_in_clauses, soql_datetime, soql_string
from crmsync.connectors.salesforce.translate import _translated
from crmsync.connectors.salesforce.writing import COLLECTION_BATCH, LOCK_RETRIES, RETRYABLE_CODES

__all__ = [
    "COLLECTION_BATCH",
    "LOCK_RETRIES",
    "MAX_URL_CHARS",
    "QUERY_PAGE",
    "RETRYABLE_CODES",
    "SalesforceAuth",
    "SalesforceClient",
    "SalesforceConnector",
    "_translated",
    "chunk_in_clauses",
    "soql_datetime",
    "soql_string",
]
