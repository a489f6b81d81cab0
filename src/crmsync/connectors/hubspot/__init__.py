"""The HubSpot connector: contacts, their deals and crmsync's tasks over hubspot-api-client.

A package split along the connector's seams, the way dlt and singer-sdk split a source:

* :mod:`.errors`: vendor and network exceptions become crmsync errors (``translate``);
* :mod:`.client`: the SDK calls, pacing (:mod:`crmsync.connectors.pacing`), counting, retries;
* :mod:`.reading`: list and search paging, time windows, associations, deal roll-ups;
* :mod:`.writing`: output value encoding and ``batch/update`` with bisection;
* :mod:`.tasks`: task create (never blindly re-sent), find by key, close;
* :mod:`.setup`: crmsync's property group and properties (``setup``/``check``);
* :mod:`.connector`: :class:`HubSpotConnector`, the Connector facade over the parts.

Every HTTP call goes through :meth:`HubSpotClient.call`, the one place vendor errors become
crmsync errors and the retry policy applies. Error messages carry status, category and
correlation id only: response bodies can hold contact data and stay in ``__cause__``.

Thread safety: a :class:`HubSpotConnector` may be called from several threads at once; they
share its SDK client (its ``last_response`` is never read: headers come from each call's own
response), its locked call counter and one pacer. Connectors of one portal share a pacer by
passing the same one (:func:`hubspot_pacer`) to each.
"""

from crmsync.connectors.hubspot.client import HubSpotClient, hubspot_pacer
from crmsync.connectors.hubspot.connector import HubSpotConnector
from crmsync.connectors.hubspot.errors import translate
from crmsync.connectors.hubspot.wire import (
    ASSOCIATION_BATCH,
    BATCH,
    MAX_PENDING_PAGES,
    SEARCH_CAP,
    SEARCH_PAGE,
    task_key,
)

__all__ = [
    "ASSOCIATION_BATCH", "BATCH", "MAX_PENDING_PAGES", "SEARCH_CAP", "SEARCH_PAGE",
    "HubSpotClient", "HubSpotConnector", "hubspot_pacer", "task_key", "translate",
]
