"""``--state FILE``: a Salesforce sandbox keeps its data, custom fields included, over restarts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from simple_salesforce import Salesforce

from crmsync.connectors.transport import salesforce_session
from crmsync.sandbox.launch import build_sandbox
from crmsync.sandbox.server import SandboxServer

ANCHOR = datetime(2026, 11, 23, tzinfo=UTC)


def _client(server: SandboxServer) -> Salesforce:
    session, instance_url = salesforce_session(server.base_url)
    return Salesforce(instance_url=instance_url, session_id=server.token, session=session,
                      version="59.0")


def _sandbox(state: Path) -> SandboxServer:
    return build_sandbox("salesforce", contacts=40, seed=5, state_file=state, anchor=ANCHOR)


def test_state_file_survives_restart(tmp_path: Path) -> None:
    state = tmp_path / "sf.json"
    with _sandbox(state) as server:
        sf = _client(server)
        sf.toolingexecute("sobjects/CustomField", method="POST", data={
            "FullName": "Contact.Crmsync_Status__c",
            "Metadata": {"label": "Status", "type": "Text", "length": 40}})
        contact = sf.query("SELECT Id FROM Contact LIMIT 1")["records"][0]["Id"]
        sf.Contact.update(contact, {"Crmsync_Status__c": "Prospect"})
        created = sf.Lead.create({"LastName": "Kept", "Company": "Acme"})["id"]
        before = sf.query_all("SELECT Id, SystemModstamp FROM Contact ORDER BY Id")["records"]
    assert state.exists()
    with _sandbox(state) as server:
        sf = _client(server)
        row = sf.query(f"SELECT Crmsync_Status__c FROM Contact WHERE Id = '{contact}'")
        assert row["records"][0]["Crmsync_Status__c"] == "Prospect"
        assert sf.Lead.get(created)["LastName"] == "Kept"
        after = sf.query_all("SELECT Id, SystemModstamp FROM Contact ORDER BY Id")["records"]
        assert after == before
        again = sf.Lead.create({"LastName": "New", "Company": "Acme"})["id"]
        assert again != created
