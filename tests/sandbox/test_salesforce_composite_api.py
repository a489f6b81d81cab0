"""``/composite`` and ``/composite/batch`` through simple-salesforce (issue 10 item 4)."""

from __future__ import annotations

from typing import Any

V = "/services/data/v59.0"


def test_composite_chains_references_and_counts_as_one_call(sf: Any, sf_server: Any) -> None:
    used_before = sf_server.emulator.api_usage
    answer = sf.restful("composite", method="POST", json={"compositeRequest": [
        {"method": "POST", "url": f"{V}/sobjects/Account", "referenceId": "acct",
         "body": {"Name": "Composite GmbH"}},
        {"method": "POST", "url": f"{V}/sobjects/Contact", "referenceId": "person",
         "body": {"LastName": "Ref", "AccountId": "@{acct.id}"}},
        {"method": "GET", "url": f"{V}/sobjects/Contact/@{{person.id}}?fields=AccountId",
         "referenceId": "readBack"},
        {"method": "GET", "referenceId": "q",
         "url": f"{V}/query/?q=SELECT+Id+FROM+Contact+WHERE+LastName='Ref'"},
        {"method": "PATCH", "url": f"{V}/sobjects/Contact/@{{q.records[0].Id}}",
         "referenceId": "rename", "body": {"FirstName": "Renamed"}},
    ]})
    assert sf_server.emulator.api_usage == used_before + 1  # one call, five subrequests
    results = {r["referenceId"]: r for r in answer["compositeResponse"]}
    assert [r["httpStatusCode"] for r in answer["compositeResponse"]] == [201, 201, 200, 200, 204]
    account_id = results["acct"]["body"]["id"]
    contact_id = results["person"]["body"]["id"]
    assert results["acct"]["httpHeaders"]["Location"] == f"{V}/sobjects/Account/{account_id}"
    assert results["readBack"]["body"]["AccountId"] == account_id
    assert results["q"]["body"]["records"][0]["Id"] == contact_id
    assert sf.Contact.get(contact_id)["FirstName"] == "Renamed"
    assert sf_server.call_counts()["by_endpoint"][f"POST {V}/composite"] == 1


def test_all_or_none_rolls_every_write_back(sf: Any) -> None:
    answer = sf.restful("composite", method="POST", json={"allOrNone": True, "compositeRequest": [
        {"method": "POST", "url": f"{V}/sobjects/Account", "referenceId": "good",
         "body": {"Name": "Rolled Back Ltd"}},
        {"method": "POST", "url": f"{V}/sobjects/Contact", "referenceId": "bad",
         "body": {"FirstName": "No last name"}},
        {"method": "POST", "url": f"{V}/sobjects/Account", "referenceId": "never",
         "body": {"Name": "Never Run Ltd"}},
    ]})
    results = {r["referenceId"]: r for r in answer["compositeResponse"]}
    assert results["bad"]["httpStatusCode"] == 400
    assert results["bad"]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    for ref in ("good", "never"):
        assert results[ref]["httpStatusCode"] == 400
        assert results[ref]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    found = sf.query("SELECT Id FROM Account WHERE Name IN ('Rolled Back Ltd', 'Never Run Ltd')")
    assert found["totalSize"] == 0


def test_without_all_or_none_only_dependents_of_a_failure_halt(sf: Any) -> None:
    answer = sf.restful("composite", method="POST", json={"compositeRequest": [
        {"method": "POST", "url": f"{V}/sobjects/Contact", "referenceId": "bad",
         "body": {"FirstName": "No last name"}},
        {"method": "GET", "url": f"{V}/sobjects/Contact/@{{bad.id}}", "referenceId": "dependent"},
        {"method": "POST", "url": f"{V}/sobjects/Account", "referenceId": "independent",
         "body": {"Name": "Kept Ltd"}},
    ]})
    codes = {r["referenceId"]: r["httpStatusCode"] for r in answer["compositeResponse"]}
    assert codes == {"bad": 400, "dependent": 400, "independent": 201}
    dependent = answer["compositeResponse"][1]["body"][0]
    assert dependent["errorCode"] == "PROCESSING_HALTED" and "bad.id" in dependent["message"]
    assert sf.query("SELECT Id FROM Account WHERE Name = 'Kept Ltd'")["totalSize"] == 1


def test_composite_may_carry_a_collection_call(sf: Any) -> None:
    answer = sf.restful("composite", method="POST", json={"allOrNone": True, "compositeRequest": [
        {"method": "POST", "url": f"{V}/composite/sobjects", "referenceId": "many",
         "body": {"records": [{"attributes": {"type": "Account"}, "Name": f"Coll {i}"}
                              for i in range(3)]}},
        {"method": "POST", "url": f"{V}/sobjects/Contact", "referenceId": "bad", "body": {}},
    ]})
    assert answer["compositeResponse"][0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert sf.query("SELECT Id FROM Account WHERE Name LIKE 'Coll %'")["totalSize"] == 0


def test_batch_runs_independent_requests_and_halts_on_error(sf: Any) -> None:
    lead = sf.Lead.create({"LastName": "Batch", "Company": "Batch Co"})["id"]
    answer = sf.restful("composite/batch", method="POST", json={"batchRequests": [
        {"method": "PATCH", "url": f"v59.0/sobjects/Lead/{lead}", "richInput": {"Title": "CTO"}},
        {"method": "GET", "url": f"v59.0/sobjects/Lead/{lead}?fields=Title"},
        {"method": "GET", "url": "v59.0/sobjects/Lead/00Q000000000000AAA"},
        {"method": "GET", "url": "v59.0/limits"},
    ]})
    assert answer["hasErrors"] is True
    assert [r["statusCode"] for r in answer["results"]] == [204, 200, 404, 200]
    assert answer["results"][1]["result"]["Title"] == "CTO"

    halted = sf.restful("composite/batch", method="POST", json={"haltOnError": True,
                                                                 "batchRequests": [
        {"method": "GET", "url": "v59.0/sobjects/Lead/00Q000000000000AAA"},
        {"method": "GET", "url": "v59.0/limits"},
    ]})
    assert [r["statusCode"] for r in halted["results"]] == [404, 412]
    assert halted["results"][1]["result"][0]["errorCode"] == "BATCH_PROCESSING_HALTED"
