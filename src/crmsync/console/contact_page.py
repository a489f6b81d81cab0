"""Contact lookup: by CRM id, the latest decision crmsync stored and, on demand, why.

The stored decision is ids and outputs only. The explanation reads the contact from the CRM
(read-only), evaluates the rules and shows the trace; nothing of it is stored or logged, and the
page is marked not to be cached.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from crmsync.console.context import Console
from crmsync.console.render import page

#: Longest id accepted (Salesforce ids are 18 characters, HubSpot's are numbers).
MAX_ID = 64


def contact_lookup(request: Request) -> Response:
    """``GET /contacts?id=ID[&explain=1]``: the stored decision(s) of a CRM id, and its trace."""
    console: Console = request.app.state.console
    record_id = (request.query_params.get("id") or "").strip()[:MAX_ID]
    explain = request.query_params.get("explain") == "1"
    found = []
    if record_id:
        for name in console.connections:
            for state in console.store(name).contact_state_any_stream(record_id):
                found.append({"connection": name, "state": state})
    decisions = []
    if record_id and explain:
        from crmsync.lookup import explain_from_crm

        connection = request.query_params.get("connection") or (
            found[0]["connection"] if found else console.connections[0])
        if connection not in console.connections:
            connection = console.connections[0]
        settings = console.settings_for(connection, require_crm=True)
        decisions = explain_from_crm(settings, [record_id], console.now())
    return page(request, "contacts.html", "Contact lookup", record_id=record_id, found=found,
                decisions=decisions, explain=explain)
