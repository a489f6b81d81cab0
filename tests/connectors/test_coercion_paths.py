"""Issue 13 item 11: one coercion for a run and for ``crmsync evaluate``.

A CRM value reaches the rules either through a connector's field map (a run) or as a JSON
Lines fact (``evaluate``); both go through :mod:`crmsync.coerce`, so ``numemployees "5.5"`` is
5 employees either way (rules/README.md, "Missing and odd values").
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hubspot import HubSpot

from crmsync.rules import load_ruleset
from crmsync.sandbox.server import SandboxServer

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 24, 9, tzinfo=UTC)

pytestmark = pytest.mark.filterwarnings(
    "ignore:The 'initial' parameter is deprecated:DeprecationWarning")


@pytest.mark.parametrize(("sent", "employees", "country"),
                         [("5.5", 5, "US"), ("49.9", 49, "US"), ("12.0", 12, " US ")])
def test_a_value_the_crm_sends_decides_the_same_in_a_run_and_in_evaluate(
    hubspot_connector: Any, hubspot_server: SandboxServer, sent: str, employees: int,
    country: str,
) -> None:
    sdk = HubSpot(access_token=hubspot_server.token, host=hubspot_server.base_url)
    contact = sdk.crm.contacts.basic_api.create({"properties": {
        "email": "pat@kessler.example", "country": country, "numemployees": sent}})
    [read] = hubspot_connector.read_ids("hubspot:contacts", [contact.id])
    assert read.facts["employees"] == employees  # the run path: SDK -> field map

    rules = load_ruleset(ROOT / "rules" / "default.json")
    in_a_run = rules.evaluate(read.facts, now=NOW)
    in_evaluate = rules.evaluate({"id": contact.id, "email": "pat@kessler.example",
                                  "country": country, "employees": sent}, now=NOW)
    assert "dq_country" not in in_evaluate.rules
    assert (in_a_run.status, in_a_run.score, in_a_run.rules, in_a_run.reason) == (
        in_evaluate.status, in_evaluate.score, in_evaluate.rules, in_evaluate.reason)
