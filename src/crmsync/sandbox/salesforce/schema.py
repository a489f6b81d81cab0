"""The emulated org's schema: objects, their fields and field types.

The schema is data: describe is generated from it, SOQL resolves names against it, and writes
are validated by it. crmsync's own ``Crmsync_*__c`` fields are *not* here; ``crmsync setup``
creates them through the Tooling API (:mod:`.tooling`), as it must against a real org.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KEY_PREFIXES = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Opportunity": "006",
    "ContactHistory": "017",
    "Lead": "00Q",
    "Task": "00T",
    "Organization": "00D",
    "CustomField": "00N",
}

SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "int": "xsd:int",
    "double": "xsd:double", "currency": "xsd:double", "percent": "xsd:double",
    "date": "xsd:date", "datetime": "xsd:dateTime",
}

LEAD_STATUSES = (
    "Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted",
)
LEAD_SOURCES = (
    "Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Webinar", "Trade Show",
    "Word of mouth", "Other",
)
INDUSTRIES = (
    "Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications",
    "Construction", "Consulting", "Education", "Electronics", "Energy", "Engineering",
    "Entertainment", "Environmental", "Finance", "Financial Services", "Food & Beverage",
    "Government", "Healthcare", "Hospitality", "Insurance", "Logistics", "Machinery",
    "Manufacturing", "Media", "Not For Profit", "Professional Services", "Real Estate",
    "Recreation", "Retail", "Shipping", "Software", "Technology", "Telecommunications",
    "Transportation", "Utilities", "Other",
)
OPPORTUNITY_STAGES = (
    "Prospecting", "Qualification", "Needs Analysis", "Value Proposition",
    "Id. Decision Makers", "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review",
    "Closed Won", "Closed Lost",
)
TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
TASK_PRIORITIES = ("High", "Normal", "Low")
TASK_SUBTYPES = ("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn")
TASK_SUBJECTS = ("Call", "Send Letter", "Send Quote", "Other")


@dataclass
class FieldDef:
    """One field of an sObject.

    Attributes:
        name: API name in the schema's own spelling (output keys always use it).
        type: Describe type (``string``, ``double``, ``datetime``, ``reference``...).
        createable: Writable on insert.
        updateable: Writable on update.
        nillable: May be null.
        picklist: Allowed values for picklist/combobox fields.
        restricted: Reject picklist values outside ``picklist``.
        default: Value given on insert when the client sends none.
        reference_to: Target objects of a reference field.
        relationship_name: Name used in SOQL paths (``Account`` for ``AccountId``).
    """

    name: str
    type: str
    label: str = ""
    length: int = 0
    precision: int = 0
    scale: int = 0
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    custom: bool = False
    calculated: bool = False
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    default: Any = None
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    external_id: bool = False
    unique: bool = False
    name_field: bool = False
    id: str | None = None  # the CustomField id (00N...) for custom fields

    def __post_init__(self) -> None:
        if not self.label:
            self.label = _label(self.name)

    @property
    def required(self) -> bool:
        """Whether an insert must carry a value (not nillable, no default, client-set)."""
        return not self.nillable and self.createable and self.default is None and self.type not in (
            "boolean", "id",
        )

    @property
    def indexed(self) -> bool:
        """Whether writes maintain a value -> ids index (external ids and unique fields)."""
        return self.external_id or self.unique

    def describe(self) -> dict[str, Any]:
        """Return this field's entry in ``fields[]`` of an sObject describe."""
        string_like = self.type in (
            "string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "combobox",
        )
        return {
            "aggregatable": self.type != "textarea",
            "autoNumber": False,
            "byteLength": (
                self.length * 3 if string_like else 18 if self.type in ("id", "reference") else 0
            ),
            "calculated": self.calculated,
            "calculatedFormula": None,
            "caseSensitive": False,
            "controllerName": None,
            "createable": self.createable,
            "custom": self.custom,
            "defaultValue": self.default if self.type == "boolean" else None,
            "defaultValueFormula": None,
            "defaultedOnCreate": self.default is not None or self.type in ("id", "boolean"),
            "dependentPicklist": False,
            "deprecatedAndHidden": False,
            "digits": 9 if self.type == "int" else 0,
            "externalId": self.external_id,
            "filterable": self.type != "textarea" or self.length <= 255,
            "groupable": self.type not in ("double", "currency", "percent", "datetime", "textarea"),
            "htmlFormatted": False,
            "idLookup": self.type == "id" or self.external_id or self.type == "email",
            "inlineHelpText": None,
            "label": self.label,
            "length": self.length if string_like else 0,
            "name": self.name,
            "nameField": self.name_field,
            "namePointing": self.type == "reference" and len(self.reference_to) > 1,
            "nillable": self.nillable,
            "permissionable": self.custom,
            "picklistValues": [
                {"active": True, "defaultValue": value == self.default, "label": value,
                 "validFor": None, "value": value}
                for value in self.picklist
            ],
            "polymorphicForeignKey": self.type == "reference" and len(self.reference_to) > 1,
            "precision": self.precision,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "relationshipOrder": None,
            "restrictedPicklist": self.restricted,
            "scale": self.scale,
            "soapType": SOAP_TYPES.get(self.type, "xsd:string"),
            "sortable": self.type != "textarea" or self.length <= 255,
            "type": self.type,
            "unique": self.unique,
            "updateable": self.updateable,
            "writeRequiresMasterRead": False,
        }


@dataclass
class ObjectDef:
    """One sObject type and its fields (looked up case-insensitively)."""

    name: str
    label: str
    label_plural: str
    key_prefix: str
    fields: dict[str, FieldDef] = field(default_factory=dict)  # lower-cased name -> field
    createable: bool = True
    updateable: bool = True
    deletable: bool = True

    def add(self, fdef: FieldDef) -> FieldDef:
        """Add (or replace) a field."""
        self.fields[fdef.name.lower()] = fdef
        return fdef

    def field(self, name: str) -> FieldDef | None:
        """Return a field by API name, any case."""
        return self.fields.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        """Return the reference field whose relationship name is ``name`` (any case)."""
        lowered = name.lower()
        for fdef in self.fields.values():
            if fdef.relationship_name and fdef.relationship_name.lower() == lowered:
                return fdef
        return None

    def field_names(self) -> list[str]:
        """All field API names in schema order."""
        return [f.name for f in self.fields.values()]


def _label(name: str) -> str:
    base = name[:-3] if name.endswith("__c") else name
    base = base.replace("_", " ")
    if base.endswith("Id") and len(base) > 2:
        base = base[:-2] + " ID"
    out = []
    for i, ch in enumerate(base):
        if i and ch.isupper() and base[i - 1].islower():
            out.append(" ")
        out.append(ch)
    return "".join(out).replace("  ", " ").strip()


def _text(name: str, length: int = 255, **kw: Any) -> FieldDef:
    return FieldDef(name, "string", length=length, **kw)


def _full_name() -> FieldDef:
    return _text("Name", 121, createable=False, updateable=False, name_field=True,
                 label="Full Name")


def _system_fields(obj: ObjectDef) -> None:
    ro = {"createable": False, "updateable": False}
    obj.add(FieldDef("Id", "id", label="Record ID", length=18, nillable=False, **ro))
    obj.add(FieldDef("IsDeleted", "boolean", label="Deleted", nillable=False, default=False, **ro))
    obj.add(FieldDef("CreatedDate", "datetime", nillable=False, **ro))
    obj.add(FieldDef("CreatedById", "reference", label="Created By ID", length=18, nillable=False,
                     reference_to=("User",), relationship_name="CreatedBy", **ro))
    obj.add(FieldDef("LastModifiedDate", "datetime", nillable=False, **ro))
    obj.add(FieldDef("LastModifiedById", "reference", label="Last Modified By ID", length=18,
                     nillable=False, reference_to=("User",), relationship_name="LastModifiedBy",
                     **ro))
    obj.add(FieldDef("SystemModstamp", "datetime", label="System Modstamp", nillable=False, **ro))


def _owner(obj: ObjectDef) -> None:
    obj.add(FieldDef("OwnerId", "reference", label="Owner ID", length=18, nillable=False,
                     reference_to=("User",), relationship_name="Owner", default="__api_user__"))


def _engagement_fields(obj: ObjectDef) -> None:
    for name in ("Form_Submissions__c", "Webinars_Attended__c", "Content_Downloads__c",
                 "Page_Views__c", "Pricing_Page_Views__c", "Chat_Conversations__c"):
        obj.add(FieldDef(name, "double", precision=18, scale=0, custom=True))
    for name in ("Trial_Signup__c", "Demo_Requested__c", "Case_Study_Requested__c",
                 "Inbound_From_Decision_Maker__c", "Budget_Confirmed__c", "Decision_Maker__c",
                 "Not_A_Fit__c"):
        obj.add(FieldDef(name, "boolean", custom=True, nillable=False, default=False))
    obj.add(FieldDef("Last_Contacted_At__c", "datetime", custom=True))
    obj.add(FieldDef("LastActivityDate", "date", label="Last Activity", createable=False,
                     updateable=False))


#: Contact fields whose changes the seeded org tracks (Setup > Field History Tracking); others,
#: such as the system-kept ``LastActivityDate`` or the Account's firmographics, have none.
TRACKED_CONTACT_FIELDS = (
    "Budget_Confirmed__c", "Decision_Maker__c", "Demo_Requested__c", "Trial_Signup__c",
    "Pricing_Page_Views__c", "Not_A_Fit__c", "Title", "Email", "MailingCountry", "OwnerId",
)


def _contact_history() -> ObjectDef:
    """``ContactHistory``: one read-only row per tracked change (no modstamp of its own)."""
    ro = {"createable": False, "updateable": False}
    obj = ObjectDef("ContactHistory", "Contact History", "Contact History",
                    KEY_PREFIXES["ContactHistory"], createable=False, updateable=False,
                    deletable=False)
    obj.add(FieldDef("Id", "id", label="Record ID", length=18, nillable=False, **ro))
    obj.add(FieldDef("IsDeleted", "boolean", label="Deleted", nillable=False, default=False, **ro))
    obj.add(FieldDef("ContactId", "reference", length=18, reference_to=("Contact",),
                     relationship_name="Contact", label="Contact ID", nillable=False, **ro))
    obj.add(FieldDef("CreatedById", "reference", label="Created By ID", length=18,
                     nillable=False, reference_to=("User",), relationship_name="CreatedBy", **ro))
    obj.add(FieldDef("CreatedDate", "datetime", nillable=False, **ro))
    obj.add(FieldDef("Field", "picklist", length=255, nillable=False,
                     picklist=("created", *TRACKED_CONTACT_FIELDS), **ro))
    obj.add(_text("DataType", 40, **ro))
    obj.add(FieldDef("OldValue", "anyType", label="Old Value", **ro))
    obj.add(FieldDef("NewValue", "anyType", label="New Value", **ro))
    return obj


def standard_schema() -> dict[str, ObjectDef]:
    """Return the seeded org's objects keyed by lower-cased name (a fresh copy each call)."""
    objects: dict[str, ObjectDef] = {}

    def new(name: str, plural: str) -> ObjectDef:
        obj = ObjectDef(name, name, plural, KEY_PREFIXES[name])
        objects[name.lower()] = obj
        _system_fields(obj)
        return obj

    user = new("User", "Users")
    user.add(_text("Name", 121, createable=False, updateable=False, name_field=True))
    user.add(_text("FirstName", 40))
    user.add(_text("LastName", 80, nillable=False))
    user.add(FieldDef("Email", "email", length=128, nillable=False))
    user.add(_text("Username", 80, nillable=False))
    user.add(_text("Alias", 8, nillable=False))
    user.add(FieldDef("IsActive", "boolean", label="Active", nillable=False, default=True))

    account = new("Account", "Accounts")
    account.add(_text("Name", 255, nillable=False, name_field=True, label="Account Name"))
    account.add(FieldDef("Industry", "picklist", length=255, picklist=INDUSTRIES))
    account.add(FieldDef("NumberOfEmployees", "int", label="Employees", precision=8))
    account.add(FieldDef("AnnualRevenue", "currency", precision=18, scale=0))
    account.add(_text("BillingCountry", 80))
    _owner(account)

    lead = new("Lead", "Leads")
    lead.add(_text("FirstName", 40))
    lead.add(_text("LastName", 80, nillable=False))
    lead.add(_full_name())
    lead.add(FieldDef("Email", "email", length=80))
    lead.add(_text("Title", 128))
    lead.add(_text("Company", 255, nillable=False))
    lead.add(_text("Country", 80))
    lead.add(FieldDef("Industry", "picklist", length=255, picklist=INDUSTRIES))
    lead.add(FieldDef("NumberOfEmployees", "int", label="Employees", precision=8))
    lead.add(FieldDef("AnnualRevenue", "currency", precision=18, scale=0))
    lead.add(FieldDef("Status", "picklist", length=255, picklist=LEAD_STATUSES, restricted=True,
                      nillable=False, default="Open - Not Contacted", label="Lead Status"))
    lead.add(FieldDef("LeadSource", "picklist", length=255, picklist=LEAD_SOURCES))
    _owner(lead)
    lead.add(FieldDef("IsConverted", "boolean", label="Converted", nillable=False, default=False,
                      updateable=False))
    lead.add(FieldDef("ConvertedContactId", "reference", length=18, reference_to=("Contact",),
                      relationship_name="ConvertedContact", createable=False, updateable=False))
    lead.add(FieldDef("ConvertedDate", "date", createable=False, updateable=False))
    _engagement_fields(lead)

    contact = new("Contact", "Contacts")
    contact.add(_text("FirstName", 40))
    contact.add(_text("LastName", 80, nillable=False))
    contact.add(_full_name())
    contact.add(FieldDef("Email", "email", length=80))
    contact.add(_text("Title", 128))
    contact.add(FieldDef("AccountId", "reference", length=18, reference_to=("Account",),
                         relationship_name="Account", label="Account ID"))
    contact.add(_text("MailingCountry", 80))
    _owner(contact)
    contact.add(FieldDef("LeadSource", "picklist", length=255, picklist=LEAD_SOURCES))
    _engagement_fields(contact)

    opp = new("Opportunity", "Opportunities")
    opp.add(_text("Name", 120, nillable=False, name_field=True))
    opp.add(FieldDef("StageName", "picklist", length=255, picklist=OPPORTUNITY_STAGES,
                     restricted=True, nillable=False, label="Stage"))
    opp.add(FieldDef("Amount", "currency", precision=18, scale=2))
    opp.add(FieldDef("CloseDate", "date", nillable=False))
    opp.add(FieldDef("IsClosed", "boolean", label="Closed", nillable=False, default=False,
                     createable=False, updateable=False, calculated=True))
    opp.add(FieldDef("IsWon", "boolean", label="Won", nillable=False, default=False,
                     createable=False, updateable=False, calculated=True))
    opp.add(FieldDef("AccountId", "reference", length=18, reference_to=("Account",),
                     relationship_name="Account"))
    opp.add(FieldDef("ContactId", "reference", length=18, reference_to=("Contact",),
                     relationship_name="Contact"))
    _owner(opp)
    opp.add(_text("Loss_Reason__c", 255, custom=True))
    opp.add(_text("Competitor__c", 255, custom=True))

    task = new("Task", "Tasks")
    task.add(FieldDef("WhoId", "reference", length=18, reference_to=("Contact", "Lead"),
                      relationship_name="Who", label="Name ID"))
    task.add(FieldDef("WhatId", "reference", length=18, reference_to=("Account", "Opportunity"),
                      relationship_name="What", label="Related To ID"))
    task.add(FieldDef("Subject", "combobox", length=255, picklist=TASK_SUBJECTS))
    task.add(FieldDef("ActivityDate", "date", label="Due Date Only"))
    task.add(FieldDef("Status", "picklist", length=255, picklist=TASK_STATUSES, restricted=True,
                      nillable=False, default="Not Started"))
    task.add(FieldDef("Priority", "picklist", length=255, picklist=TASK_PRIORITIES,
                      restricted=True, nillable=False, default="Normal"))
    task.add(FieldDef("IsHighPriority", "boolean", label="High Priority", nillable=False,
                      default=False, createable=False, updateable=False, calculated=True))
    _owner(task)
    task.add(FieldDef("Description", "textarea", length=32000, label="Comments"))
    task.add(FieldDef("IsClosed", "boolean", label="Closed", nillable=False, default=False,
                      createable=False, updateable=False, calculated=True))
    task.add(FieldDef("TaskSubtype", "picklist", length=40, picklist=TASK_SUBTYPES,
                      restricted=True, updateable=False, default="Task"))
    task.add(FieldDef("Type", "picklist", length=40,
                      picklist=("Call", "Email", "Meeting", "Other")))

    objects["contacthistory"] = _contact_history()

    org = new("Organization", "Organizations")
    org.createable = org.updateable = org.deletable = False
    org.add(_text("Name", 80, name_field=True, createable=False, updateable=False))
    org.add(_text("OrganizationType", 40, createable=False, updateable=False, label="Edition"))
    org.add(FieldDef("IsSandbox", "boolean", createable=False, updateable=False, default=False))
    org.add(_text("InstanceName", 5, createable=False, updateable=False))
    org.add(_text("Country", 80, createable=False, updateable=False))
    return objects
