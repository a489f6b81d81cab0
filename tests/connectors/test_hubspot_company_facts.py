"""Company firmographics through the field map: a ``companies`` section fills empty contact facts.

Reads go through the real hubspot-api-client to the sandbox emulator; expected values come from
the seed org (each person's own values and their employer's), not from the connector.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crmsync.connectors.fieldmap_load import load_fieldmap, parse_fieldmap
from crmsync.connectors.hubspot import HubSpotConnector
from crmsync.errors import InvalidFileError
from crmsync.sandbox.seed import Org
from crmsync.sandbox.server import SandboxServer

ROOT = Path(__file__).resolve().parents[2]
COMPANY_FACTS = {"company": "name", "industry": "industry", "employees": "numberofemployees"}

pytestmark = pytest.mark.filterwarnings(
    "ignore:The 'initial' parameter is deprecated:DeprecationWarning")


def _map_with_companies(tmp_path: Path) -> Any:
    doc = json.loads((ROOT / "connectors" / "hubspot.json").read_text("utf-8"))
    doc["$schema"] = str(ROOT / "src" / "crmsync" / "connectors" / "fieldmap.schema.json")
    doc["companies"] = {"object": "companies", "facts": dict(COMPANY_FACTS)}
    path = tmp_path / "hubspot.json"
    path.write_text(json.dumps(doc, indent=2), "utf-8")
    return load_fieldmap(path)


def test_company_facts_fill_what_the_contact_leaves_empty(
    hubspot_server: SandboxServer, hubspot_org: Org, tmp_path: Path
) -> None:
    connector = HubSpotConnector(_map_with_companies(tmp_path), token=hubspot_server.token,
                                 base_url=hubspot_server.base_url)
    try:
        contacts = [c for page in connector.read("hubspot:contacts", None) for c in page.contacts]
    finally:
        connector.close()
    people = {p.email.lower(): p for p in hubspot_org.people}
    assert len(contacts) == len(people)
    filled = 0
    for contact in contacts:
        person = people[contact.facts["email"]]
        employer = (hubspot_org.companies[person.company_index]
                    if person.company_index is not None else None)
        for fact, own, theirs in (
            ("company", person.company, employer and employer.name),
            ("industry", person.industry, employer and employer.industry),
            ("employees", person.employees, employer and employer.employees),
        ):
            expected = own if own is not None else theirs
            assert contact.facts[fact] == expected, (fact, person.index)
            filled += own is None and theirs is not None
    assert filled > 10  # the seed has sparse contacts at companies that know more
    by_endpoint = hubspot_server.call_counts()["by_endpoint"]
    assert by_endpoint["POST /crm/v3/objects/companies/batch/read"] >= 1


def test_without_a_companies_section_contact_facts_stay_the_contacts_own(
    hubspot_connector: HubSpotConnector, hubspot_server: SandboxServer, hubspot_org: Org
) -> None:
    contacts = [c for p in hubspot_connector.read("hubspot:contacts", None) for c in p.contacts]
    people = {p.email.lower(): p for p in hubspot_org.people}
    assert all(c.facts["industry"] == people[c.facts["email"]].industry for c in contacts)
    assert "POST /crm/v3/objects/companies/batch/read" not in (
        hubspot_server.call_counts()["by_endpoint"])


def _doc(crm: str, companies: dict[str, Any]) -> str:
    name = "hubspot.json" if crm == "hubspot" else "salesforce.json"
    doc = json.loads((ROOT / "connectors" / name).read_text("utf-8"))
    doc["companies"] = companies
    return json.dumps(doc, indent=2)


def test_companies_section_errors_point_at_the_entry() -> None:
    with pytest.raises(InvalidFileError) as caught:
        parse_fieldmap(_doc("hubspot", {"object": "companies", "facts": {"industri": "industry"}}),
                       filename="map.json")
    [problem] = caught.value.diagnostics
    assert problem.pointer == "/companies/facts/industri"
    assert "industry" in (problem.suggestion or "")
    with pytest.raises(InvalidFileError) as caught:
        parse_fieldmap(_doc("salesforce", {"object": "companies", "facts": {"industry": "x"}}),
                       filename="map.json")
    assert [d.pointer for d in caught.value.diagnostics] == ["/companies"]
    with pytest.raises(InvalidFileError):
        parse_fieldmap(_doc("hubspot", {"object": "companies", "facts": {}}), filename="map.json")
