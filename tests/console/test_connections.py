"""A console over two connections (HubSpot and Salesforce) sharing one store, on SQLite and
PostgreSQL: each connection's runs, funnel and contacts stay apart."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from crmsync.cli import main
from crmsync.console import Console, create_app
from crmsync.sandbox.launch import build_sandbox
from crmsync.sandbox.server import SandboxServer
from crmsync.state import StateStore
from pgschema import state_url_for
from sync.conftest import ANCHOR, ROOT

RULES = (ROOT / "rules/default.json").as_posix()


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from state_url_for(request.param, tmp_path, "crmsync_console")


@pytest.fixture
def servers() -> Iterator[dict[str, SandboxServer]]:
    hub = build_sandbox("hubspot", contacts=40, seed=5, anchor=ANCHOR)
    sf = build_sandbox("salesforce", contacts=40, seed=6, anchor=ANCHOR)
    with hub, sf:
        yield {"hub": hub, "sf": sf}


def _tags(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_each_connection_keeps_its_runs_funnel_and_contacts(
        tmp_path: Path, state_url: str, servers: dict[str, SandboxServer],
        monkeypatch: pytest.MonkeyPatch) -> None:
    hub, sf = servers["hub"], servers["sf"]
    config = tmp_path / "crmsync.toml"
    config.write_text(f"""
[state]
url = "{state_url}"
[connections.hub]
type = "hubspot"
base_url = "{hub.base_url}"
rules = "{RULES}"
[connections.sf]
type = "salesforce"
auth = "session"
base_url = "{sf.base_url}"
rules = "{RULES}"
""", "utf-8")
    # Credentials only from the environment, as in production.
    monkeypatch.setenv("CRMSYNC_CONNECTIONS__HUB__TOKEN", hub.token)
    monkeypatch.setenv("CRMSYNC_CONNECTIONS__SF__TOKEN", sf.token)
    runs = {}
    for name in ("hub", "sf"):
        assert CliRunner().invoke(main, ["setup", "--config", str(config),
                                         "--connection", name]).exit_code == 0
        result = CliRunner().invoke(main, ["run", "--config", str(config), "--connection", name,
                                           "--output", "json"])
        assert result.exit_code == 0, result.output
        runs[name] = json.loads(result.stdout)["run_id"]

    with TestClient(create_app(Console(config)), base_url="http://127.0.0.1") as client:
        page = client.get("/runs").text
        groups = dict(re.findall(r"<h2>Connection (\w+)</h2>(.*?)(?=<h2>|$)", page, re.DOTALL))
        assert set(groups) == {"hub", "sf"}
        assert runs["hub"] in groups["hub"] and runs["hub"] not in groups["sf"]
        assert runs["sf"] in groups["sf"] and runs["sf"] not in groups["hub"]

        with StateStore.open(state_url) as store:
            totals = {name: sum(store.scoped(name).status_counts().values())
                      for name in ("hub", "sf")}
            sf_contact = next(iter(
                store.scoped("sf").contact_states("salesforce:Contact", _sf_ids(sf)).values()))
        assert all(totals.values())
        for name, other in (("hub", "sf"), ("sf", "hub")):
            funnel = _tags(client.get("/funnel", params={"connection": name}).text)
            assert f"Connection {name} :" in funnel
            # The report covers this connection's runs only.
            assert runs[name] in funnel and runs[other] not in funnel

        lookup = client.get("/contacts", params={"id": sf_contact.record_id}).text
        rows = re.findall(r"<tr><td>(\w+)</td><td>([^<]+)</td><td>(\w+)</td>", lookup)
        assert rows == [("sf", "salesforce:Contact", sf_contact.status)]
        explained = client.get("/contacts", params={"id": sf_contact.record_id,
                                                    "explain": "1"})
        assert explained.status_code == 200 and "rule / step" in explained.text

    only = Console(config, "sf")
    with TestClient(create_app(only), base_url="http://127.0.0.1") as client:
        page = client.get("/runs").text
        assert "Connection sf" in page and "Connection hub" not in page
        assert client.get(f"/runs/{runs['hub']}").status_code == 400, "not this console's"


def _sf_ids(server: SandboxServer) -> list[str]:
    import urllib.request

    with urllib.request.urlopen(f"{server.base_url}/_sandbox/records/Contact",
                                timeout=30) as response:
        raw = json.loads(response.read())
    rows = raw.get("records") or raw.get("results") or [] if isinstance(raw, dict) else raw
    return [row.get("Id") or row.get("id") for row in rows]
