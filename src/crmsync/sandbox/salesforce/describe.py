"""Describe bodies (global and per object) generated from the schema (§2.5)."""

from __future__ import annotations

from typing import Any

from crmsync.sandbox.salesforce.schema import ObjectDef

_INSTANCE = "https://crmsync-sandbox.my.salesforce.com"


def object_urls(obj: ObjectDef, version: str) -> dict[str, str]:
    """The ``urls`` map of an sObject."""
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    return {
        "compactLayouts": f"{base}/describe/compactLayouts",
        "rowTemplate": f"{base}/{{ID}}",
        "approvalLayouts": f"{base}/describe/approvalLayouts",
        "uiDetailTemplate": f"{_INSTANCE}/{{ID}}",
        "uiEditTemplate": f"{_INSTANCE}/{{ID}}/e",
        "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
        "describe": f"{base}/describe",
        "uiNewRecord": f"{_INSTANCE}/{obj.key_prefix}/e",
        "quickActions": f"{base}/quickActions",
        "layouts": f"{base}/describe/layouts",
        "sobject": base,
    }


def object_summary(obj: ObjectDef, version: str) -> dict[str, Any]:
    """One entry of ``GET /sobjects/`` (also the ``objectDescribe`` of ``GET /sobjects/X``)."""
    return {
        "activateable": False,
        "associateEntityType": None,
        "associateParentEntity": None,
        "createable": obj.createable,
        "custom": False,
        "customSetting": False,
        "deepCloneable": False,
        "deletable": obj.deletable,
        "deprecatedAndHidden": False,
        "feedEnabled": obj.name in ("Account", "Contact", "Lead", "Opportunity", "User"),
        "hasSubtypes": False,
        "isInterface": False,
        "isSubtype": False,
        "keyPrefix": obj.key_prefix,
        "label": obj.label,
        "labelPlural": obj.label_plural,
        "layoutable": obj.createable,
        "mergeable": obj.name in ("Account", "Contact", "Lead"),
        "mruEnabled": obj.createable,
        "name": obj.name,
        "queryable": True,
        "replicateable": True,
        "retrieveable": True,
        "searchable": obj.createable,
        "triggerable": obj.createable,
        "undeletable": obj.deletable,
        "updateable": obj.updateable,
        "urls": object_urls(obj, version),
    }


def describe_global(objects: list[ObjectDef], version: str) -> dict[str, Any]:
    """``GET /sobjects/``."""
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [object_summary(obj, version) for obj in objects],
    }


def describe_object(obj: ObjectDef, version: str, children: list[dict[str, Any]]) -> dict[str, Any]:
    """``GET /sobjects/{name}/describe``."""
    out = object_summary(obj, version)
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    out.update(
        {
            "actionOverrides": [],
            "childRelationships": children,
            "compactLayoutable": obj.createable,
            "defaultImplementation": None,
            "extendedBy": None,
            "extendsInterfaces": None,
            "fields": [f.describe() for f in obj.fields.values()],
            "implementedBy": None,
            "implementsInterfaces": None,
            "listviewable": None,
            "lookupLayoutable": None,
            "namedLayoutInfos": [],
            "networkScopeFieldName": None,
            "recordTypeInfos": [
                {
                    "active": True,
                    "available": True,
                    "defaultRecordTypeMapping": True,
                    "developerName": "Master",
                    "master": True,
                    "name": "Master",
                    "recordTypeId": "012000000000000AAA",
                    "urls": {"layout": f"{base}/describe/layouts/012000000000000AAA"},
                }
            ],
            "searchLayoutable": None,
            "sobjectDescribeOption": "FULL",
            "supportedScopes": [{"label": "All", "name": "everything"}],
        }
    )
    return out


def child_relationships(target: ObjectDef, objects: list[ObjectDef]) -> list[dict[str, Any]]:
    """Relationships from other objects' reference fields pointing at ``target``."""
    plural = {
        "Contact": "Contacts", "Opportunity": "Opportunities", "Task": "Tasks", "Lead": "Leads",
    }
    out = []
    for obj in objects:
        for fdef in obj.fields.values():
            if fdef.type == "reference" and target.name in fdef.reference_to:
                out.append(
                    {
                        "cascadeDelete": obj.name == "Task",
                        "childSObject": obj.name,
                        "deprecatedAndHidden": False,
                        "field": fdef.name,
                        "junctionIdListNames": [],
                        "junctionReferenceTo": [],
                        "relationshipName": (
                            None if fdef.name == "OwnerId" else plural.get(obj.name)
                        ),
                        "restrictedDelete": False,
                    }
                )
    return out
