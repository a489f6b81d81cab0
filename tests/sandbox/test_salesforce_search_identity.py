"""SOSL ``/search``, ``/recent`` and the identity URL (issue 10 item 4), through
simple-salesforce where it has a call for them, else over plain HTTP."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from simple_salesforce.exceptions import SalesforceMalformedRequest


def _rows(sf_http: Any, obj: str) -> list[dict[str, Any]]:
    return [r for r in sf_http("GET", f"/_sandbox/records/{obj}")[1]["records"]
            if not r["IsDeleted"]]


def test_find_by_email_returning_fields_with_where_and_limit(sf: Any, sf_http: Any) -> None:
    lead = _rows(sf_http, "Lead")[0]
    found = sf.search(f"FIND {{{lead['Email']}}} IN EMAIL FIELDS RETURNING Lead(Id, Email)")
    assert [r["Id"] for r in found["searchRecords"]] == [lead["Id"]]
    assert found["searchRecords"][0]["Email"] == lead["Email"]
    assert found["searchRecords"][0]["attributes"]["type"] == "Lead"

    company = lead["Company"].split()[0]
    expected = {r["Id"] for r in _rows(sf_http, "Lead")
                if company.lower() in r["Company"].lower().split()
                and r["Status"] == "Open - Not Contacted"}
    assert expected
    hits = sf.search(f"FIND {{{company}}} RETURNING Lead(Id WHERE Status = "
                     "'Open - Not Contacted')")["searchRecords"]
    assert {r["Id"] for r in hits} == expected
    every = [r for r in _rows(sf_http, "Lead") if company.lower() in r["Company"].lower().split()]
    limited = sf.search(f"FIND {{{company}}} RETURNING Lead(Id LIMIT 2)")["searchRecords"]
    assert len(limited) == min(2, len(every))


def test_find_with_a_wildcard_across_objects(sf: Any, sf_http: Any) -> None:
    contacts = _rows(sf_http, "Contact")
    last = contacts[0]["LastName"]
    prefix = last[:3] + "*"
    expected = {("Contact", c["Id"]) for c in contacts
                if any(w.lower().startswith(last[:3].lower())
                       for w in f"{c['FirstName']} {c['LastName']}".split())}
    found = sf.search(f"FIND {{{prefix}}} IN NAME FIELDS RETURNING Contact, Account(Id, Name)")
    got = {(r["attributes"]["type"], r["Id"]) for r in found["searchRecords"]}
    assert expected <= got
    assert {t for t, _ in got} <= {"Contact", "Account"}


def test_quick_search_and_a_malformed_search(sf: Any) -> None:
    assert "searchRecords" in sf.quick_search("nobody-by-this-name")
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.search("FIND {a}")
    assert caught.value.content[0]["errorCode"] == "MALFORMED_SEARCH"
    with pytest.raises(SalesforceMalformedRequest):
        sf.search("SEARCH nothing")


def test_recent_lists_the_latest_changed_records(sf: Any) -> None:
    created = sf.Lead.create({"LastName": "Freshest", "Company": "Recent Ltd"})["id"]
    recent = sf.restful("recent", params={"limit": 3})
    assert len(recent) == 3
    assert recent[0]["Id"] == created and recent[0]["attributes"]["type"] == "Lead"
    assert "Freshest" in recent[0]["Name"]


def test_identity_url_from_the_version_resource(sf: Any, sf_server: Any) -> None:
    resources = sf.restful("")
    identity_url = resources["identity"]
    assert identity_url.startswith(sf_server.base_url + "/id/00D")
    auth = {"Authorization": f"Bearer {sf_server.token}"}
    me = requests.get(identity_url, headers=auth, timeout=10)
    assert me.status_code == 200
    body = me.json()
    assert body["id"] == identity_url
    assert body["user_id"] == identity_url.rsplit("/", 1)[1]
    assert body["username"] == "integration@crmsync-demo.example"
    assert body["urls"]["rest"].endswith("/services/data/v{version}/")
    assert requests.get(identity_url, timeout=10).status_code == 403
