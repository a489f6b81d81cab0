"""Salesforce REST / Tooling / Bulk 2.0 API emulator for the sandbox CRM.

Entry point: :class:`SalesforceEmulator`, served by :class:`crmsync.sandbox.server.SandboxServer`::

    emulator = SalesforceEmulator(generate_org(2000, 1, anchor), clock=clock)
    with SandboxServer(emulator) as server:
        session, instance_url = salesforce_session(server.base_url)
        sf = Salesforce(instance_url=instance_url, session_id=server.token, session=session,
                        version="59.0")

Sandbox-only calls (never counted as API calls), besides the server's own ``/_sandbox/``
ones:

* ``GET /_sandbox/records/{SObject}`` -> ``{"totalSize", "records"}`` with every record of
  that type (deleted ones included, every field), to compare final CRM state in tests.
* ``GET /_sandbox/records/{SObject}/{id}``; ``PATCH`` it with field values for a "user edit"
  (bumps ``SystemModstamp``/``LastModifiedDate``; read-only fields allowed).
* ``GET|POST /_sandbox/config`` with ``page_size`` (force short query pages), ``daily_limit``,
  ``api_usage`` (calls already used in the rolling 24 hours), ``locator_ttl_s``,
  ``bulk_polls`` (job-info polls a Bulk 2.0 job stays ``InProgress``),
  ``stamp_resolution_ms`` (coarser ``SystemModstamp`` values, so nearby writes tie) and
  ``per_app_limit`` (the ``per-app-api-usage`` part of ``Sforce-Limit-Info``; null drops it).

Module map: :mod:`.schema` (objects and fields), :mod:`.store` (records, nested undo),
:mod:`.soql` (parser), :mod:`.query` (SOQL execution), :mod:`.dates` (date literals),
:mod:`.aggregate` (GROUP BY and aggregate functions), :mod:`.subqueries` (child relationship
queries, semi-joins, FIELDS()), :mod:`.paging` (locators), :mod:`.dml` (validated writes),
:mod:`.rest` (single records, describe), :mod:`.composite` (sObject Collections),
:mod:`.composite_api` (``/composite``, ``/composite/batch``), :mod:`.search` (SOSL ``/search``,
``/recent``), :mod:`.tooling` (custom fields), :mod:`.bulk2` (Bulk API 2.0), :mod:`.bulk1`
(Bulk API 1.0), :mod:`.login` (SOAP login, identity URL), :mod:`.limits` (daily allocation),
:mod:`.seeding` (seed org -> records).
"""

from crmsync.sandbox.salesforce.emulator import SalesforceEmulator, SandboxConfig

__all__ = ["SalesforceEmulator", "SandboxConfig"]
