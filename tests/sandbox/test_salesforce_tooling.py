"""Custom fields created the way ``crmsync setup`` does, then used (§2.5, Tooling API)."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

CRMSYNC_FIELDS: list[tuple[str, dict[str, Any]]] = [
    ("Crmsync_Status__c", {"type": "Picklist", "valueSet": {
        "restricted": True,
        "valueSetDefinition": {"sorted": False, "value": [
            {"fullName": v, "label": v, "default": False}
            for v in ("Lead", "Prospect", "Opportunity", "Disqualified")
        ]},
    }}),
    ("Crmsync_Miss_Type__c", {"type": "Text", "length": 20}),
    ("Crmsync_Score__c", {"type": "Number", "precision": 5, "scale": 1}),
    ("Crmsync_Reason__c", {"type": "LongTextArea", "length": 2000, "visibleLines": 3}),
    ("Crmsync_Ruleset__c", {"type": "Text", "length": 64}),
    ("Crmsync_Evaluated_At__c", {"type": "DateTime"}),
    ("Crmsync_Status_Since__c", {"type": "DateTime"}),
    ("Crmsync_Status_Override__c", {"type": "Checkbox", "defaultValue": "false"}),
]


def _create(sf: Any, obj: str, name: str, meta: dict[str, Any]) -> Any:
    return sf.toolingexecute("sobjects/CustomField", method="POST", data={
        "FullName": f"{obj}.{name}", "Metadata": {"label": name[:-3].replace("_", " "), **meta},
    })


def _setup(sf: Any) -> None:
    for obj in ("Lead", "Contact"):
        for name, meta in CRMSYNC_FIELDS:
            result = _create(sf, obj, name, meta)
            assert result["success"] is True and result["id"].startswith("00N")
    _create(sf, "Task", "Crmsync_Task_Key__c",
            {"type": "Text", "length": 64, "externalId": True, "unique": True})


def test_unknown_field_is_refused_until_created(sf: Any) -> None:
    contact = sf.query("SELECT Id FROM Contact LIMIT 1")["records"][0]["Id"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT Crmsync_Status__c FROM Contact")
    assert caught.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceMalformedRequest):
        sf.Contact.update(contact, {"Crmsync_Status__c": "Lead"})
    _setup(sf)
    fields = {f["name"]: f for f in sf.Contact.describe()["fields"]}
    assert fields["Crmsync_Status__c"]["type"] == "picklist"
    assert fields["Crmsync_Status__c"]["custom"] is True
    assert fields["Crmsync_Score__c"]["type"] == "double"
    assert fields["Crmsync_Score__c"]["scale"] == 1
    assert fields["Crmsync_Evaluated_At__c"]["type"] == "datetime"
    assert fields["Crmsync_Reason__c"]["type"] == "textarea"
    assert fields["Crmsync_Status_Override__c"]["type"] == "boolean"
    sf.Contact.update(contact, {"Crmsync_Status__c": "Prospect", "Crmsync_Score__c": 42.5,
                                "Crmsync_Evaluated_At__c": "2026-11-23T01:00:00Z"})
    row = sf.query(f"SELECT Crmsync_Status__c, Crmsync_Score__c, Crmsync_Evaluated_At__c, "
                   f"Crmsync_Status_Override__c FROM Contact WHERE Id = '{contact}'")["records"][0]
    assert row["Crmsync_Status__c"] == "Prospect" and row["Crmsync_Score__c"] == 42.5
    assert row["Crmsync_Evaluated_At__c"] == "2026-11-23T01:00:00.000+0000"
    assert row["Crmsync_Status_Override__c"] is False
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Contact.update(contact, {"Crmsync_Status__c": "Nonsense"})
    assert caught.value.content[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


def test_duplicate_and_invalid_fields(sf: Any) -> None:
    _create(sf, "Lead", "Crmsync_Ruleset__c", {"type": "Text", "length": 64})
    with pytest.raises(SalesforceMalformedRequest) as caught:
        _create(sf, "Lead", "Crmsync_Ruleset__c", {"type": "Text", "length": 64})
    assert caught.value.content[0]["errorCode"] == "DUPLICATE_DEVELOPER_NAME"
    with pytest.raises(SalesforceMalformedRequest):
        _create(sf, "Lead", "No_Length__c", {"type": "Text"})
    with pytest.raises(SalesforceMalformedRequest):
        _create(sf, "Lead", "Bad__Name__c", {"type": "Text", "length": 5})


def test_tooling_query_lists_custom_fields(sf: Any) -> None:
    _setup(sf)
    result = sf.toolingexecute(
        "query/?q=SELECT+Id,+DeveloperName,+TableEnumOrId+FROM+CustomField"
        "+WHERE+TableEnumOrId+=+'Contact'"
    )
    names = {r["DeveloperName"] for r in result["records"]}
    assert {"Crmsync_Status", "Crmsync_Score", "Budget_Confirmed"} <= names
    assert all(r["TableEnumOrId"] == "Contact" for r in result["records"])
    assert result["totalSize"] == len(result["records"])
    assert result["records"][0]["attributes"]["type"] == "CustomField"


def test_task_upsert_by_external_key(sf: Any) -> None:
    _setup(sf)
    contact = sf.query("SELECT Id FROM Contact LIMIT 1")["records"][0]["Id"]

    def upsert(records: list[dict[str, Any]]) -> Any:
        return sf.restful("composite/sobjects/Task/Crmsync_Task_Key__c", method="PATCH",
                          json={"allOrNone": False, "records": records})

    task = {"attributes": {"type": "Task"}, "Crmsync_Task_Key__c": "k1", "WhoId": contact,
            "Subject": "Call about pricing", "Priority": "High"}
    first = upsert([task, {**task, "Crmsync_Task_Key__c": "k2"}])
    assert [(r["success"], r["created"]) for r in first] == [(True, True), (True, True)]
    second = upsert([{**task, "Subject": "Updated subject"}, {**task, "Crmsync_Task_Key__c": None}])
    assert second[0] == {"id": first[0]["id"], "success": True, "errors": [], "created": False}
    assert second[1]["success"] is False
    rows = sf.query("SELECT Id, Subject FROM Task WHERE Crmsync_Task_Key__c = 'K1'")["records"]
    assert [(r["Id"], r["Subject"]) for r in rows] == [(first[0]["id"], "Updated subject")]
    # Unique: a second task cannot take an existing key.
    clash = sf.restful("composite/sobjects", method="POST", json={"records": [
        {"attributes": {"type": "Task"}, "Crmsync_Task_Key__c": "k2", "WhoId": contact,
         "Subject": "x"}]})
    assert clash[0]["errors"][0]["statusCode"] == "DUPLICATE_VALUE"
