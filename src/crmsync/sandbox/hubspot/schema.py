"""The seeded HubSpot schema: object types, association types, and standard properties.

Names are exactly what crmsync's HubSpot field map reads (contacts ``0-1``, deals ``0-3``, tasks
``0-27``). crmsync's own properties are deliberately absent: ``crmsync setup`` creates them.
"""

from __future__ import annotations

from dataclasses import dataclass

from crmsync.sandbox.hubspot.properties import Group, Option, PropertyDef, PropertyRegistry


@dataclass(frozen=True)
class ObjectType:
    """One CRM object type.

    Attributes:
        name: Plural path name (``contacts``).
        type_id: HubSpot object type id (``0-1``).
        singular: Name in association labels (``contact`` in ``contact_to_task``).
        modified: Property holding the change timestamp.
        created: Property holding the creation timestamp.
        defaults: Properties returned when a read names none.
        required: Properties a create must carry.
    """

    name: str
    type_id: str
    singular: str
    modified: str
    created: str
    defaults: tuple[str, ...]
    required: tuple[str, ...] = ()


CONTACTS = ObjectType(
    "contacts", "0-1", "contact", "lastmodifieddate", "createdate",
    ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
)
DEALS = ObjectType(
    "deals", "0-3", "deal", "hs_lastmodifieddate", "createdate",
    ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
     "hs_object_id", "pipeline"),
)
TASKS = ObjectType(
    "tasks", "0-27", "task", "hs_lastmodifieddate", "hs_createdate",
    ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
    required=("hs_timestamp",),
)
COMPANIES = ObjectType(
    "companies", "0-2", "company", "hs_lastmodifieddate", "createdate",
    ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
)
OBJECT_TYPES = {t.name: t for t in (CONTACTS, COMPANIES, DEALS, TASKS)}

#: HUBSPOT_DEFINED association type id -> (from type, to type); one id per direction (§3.8).
ASSOCIATION_TYPES = {
    203: ("contacts", "tasks"),
    204: ("tasks", "contacts"),
    3: ("deals", "contacts"),
    4: ("contacts", "deals"),
    215: ("deals", "tasks"),
    216: ("tasks", "deals"),
    # The unlabeled contact<->company pair is the default a v4 "associate/default" call uses;
    # the "Primary" pair (1/2) is left out so each direction keeps one default id.
    279: ("contacts", "companies"),
    280: ("companies", "contacts"),
    341: ("deals", "companies"),
    342: ("companies", "deals"),
}
#: (from type, to type) -> default association type id.
DEFAULT_ASSOCIATION = {pair: type_id for type_id, pair in ASSOCIATION_TYPES.items()}

LIFECYCLE_STAGES = (
    "subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
    "customer", "evangelist", "other",
)
#: ``hs_analytics_source``: HubSpot's "Original Source" values (set by HubSpot, read-only).
ANALYTICS_SOURCES = (
    "ORGANIC_SEARCH", "PAID_SEARCH", "EMAIL_MARKETING", "SOCIAL_MEDIA", "REFERRALS",
    "OTHER_CAMPAIGNS", "DIRECT_TRAFFIC", "OFFLINE", "PAID_SOCIAL",
)
LEAD_STATUSES = (
    "NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT", "CONNECTED",
    "BAD_TIMING",
)
DEAL_STAGES = (
    "appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
    "contractsent", "closedwon", "closedlost",
)
TASK_ENUMS = {
    "hs_task_status": ("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"),
    "hs_task_priority": ("NONE", "LOW", "MEDIUM", "HIGH"),
    "hs_task_type": (
        "TODO", "CALL", "EMAIL", "LINKED_IN", "LINKED_IN_CONNECT", "LINKED_IN_MESSAGE",
    ),
}
ENGAGEMENT_NUMBERS = ("webinars_attended", "content_downloads", "pricing_page_views",
                      "chat_conversations")
ENGAGEMENT_FLAGS = ("trial_signup", "demo_requested", "case_study_requested",
                    "inbound_from_decision_maker", "budget_confirmed", "decision_maker",
                    "not_a_fit")


def _options(values: tuple[str, ...]) -> list[Option]:
    return [Option(v.replace("_", " ").title(), v, i) for i, v in enumerate(values)]


def _p(name: str, kind: str, field_type: str, group: str, **kw: object) -> PropertyDef:
    label = name.replace("hs_", "").replace("_", " ").capitalize()
    return PropertyDef(name, label, kind, field_type, group, **kw)  # type: ignore[arg-type]


def _system(registry: PropertyRegistry, group: str, obj: ObjectType) -> None:
    registry.add(_p("hs_object_id", "number", "number", group, read_only=True, unique=True))
    registry.add(_p(obj.created, "datetime", "date", group, read_only=obj.created != "createdate"))
    registry.add(_p(obj.modified, "datetime", "date", group, read_only=True))
    registry.add(_p("hubspot_owner_id", "enumeration", "select", group))


def contact_registry() -> PropertyRegistry:
    """Return the seeded contact schema (standard properties + ``engagement`` group)."""
    reg = PropertyRegistry("contacts")
    for name, label in (("contactinformation", "Contact information"),
                        ("conversioninformation", "Conversion information"),
                        ("analyticsinformation", "Web analytics history"),
                        ("sales_properties", "Sales properties"),
                        ("engagement", "Engagement")):
        reg.add_group(Group(name, label, len(reg.groups)))
    g = "contactinformation"
    _system(reg, g, CONTACTS)
    reg.add(_p("email", "string", "text", g, unique=True, form_field=True))
    for name in ("firstname", "lastname", "jobtitle", "company", "country", "industry"):
        reg.add(_p(name, "string", "text", g, form_field=True))
    reg.add(_p("numemployees", "number", "number", g))
    reg.add(_p("annualrevenue", "number", "number", g))
    reg.add(_p("lifecyclestage", "enumeration", "radio", g, options=_options(LIFECYCLE_STAGES)))
    # Written by a merge (POST .../contacts/merge): the absorbed ids and email addresses.
    reg.add(_p("hs_merged_object_ids", "string", "text", g, read_only=True))
    reg.add(_p("hs_additional_emails", "string", "text", g, read_only=True))
    reg.add(_p("hs_lead_status", "enumeration", "radio", "sales_properties",
               options=_options(LEAD_STATUSES)))
    for name in ("notes_last_updated", "notes_last_contacted"):
        reg.add(_p(name, "datetime", "date", "sales_properties", read_only=True))
    reg.add(_p("num_conversion_events", "number", "number", "conversioninformation",
               read_only=True))
    reg.add(_p("hs_analytics_num_page_views", "number", "number", "analyticsinformation",
               read_only=True))
    reg.add(_p("hs_analytics_source", "enumeration", "select", "analyticsinformation",
               read_only=True, options=_options(ANALYTICS_SOURCES)))
    for name in ENGAGEMENT_NUMBERS:
        reg.add(_p(name, "number", "number", "engagement", hubspot_defined=False))
    for name in ENGAGEMENT_FLAGS:
        reg.add(_p(name, "bool", "booleancheckbox", "engagement", hubspot_defined=False,
                   options=[Option("Yes", "true", 0), Option("No", "false", 1)]))
    return reg


def company_registry() -> PropertyRegistry:
    """Return the seeded company schema: name, domain and the firmographics.

    ``industry`` is free text here (HubSpot's is an enumeration) so it carries the same values
    as the contacts' ``industry`` and a field map can read either.
    """
    reg = PropertyRegistry("companies")
    reg.add_group(Group("companyinformation", "Company information", 0))
    g = "companyinformation"
    _system(reg, g, COMPANIES)
    for name in ("name", "domain", "industry", "country", "city", "phone", "website"):
        reg.add(_p(name, "string", "text", g))
    reg.add(_p("numberofemployees", "number", "number", g))
    reg.add(_p("annualrevenue", "number", "number", g))
    reg.add(_p("description", "string", "textarea", g))
    return reg


def deal_registry() -> PropertyRegistry:
    """Return the seeded deal schema (``competitor`` is a custom property)."""
    reg = PropertyRegistry("deals")
    reg.add_group(Group("dealinformation", "Deal information", 0))
    reg.add_group(Group("deal_custom", "Deal details", 1))
    g = "dealinformation"
    _system(reg, g, DEALS)
    reg.add(_p("dealname", "string", "text", g))
    reg.add(_p("dealstage", "enumeration", "radio", g, options=_options(DEAL_STAGES)))
    reg.add(_p("pipeline", "enumeration", "select", g,
               options=[Option("Sales Pipeline", "default")]))
    reg.add(_p("amount", "number", "number", g))
    reg.add(_p("closedate", "datetime", "date", g))
    reg.add(_p("closed_lost_reason", "string", "textarea", g))
    reg.add(_p("competitor", "string", "text", "deal_custom", hubspot_defined=False))
    return reg


def task_registry() -> PropertyRegistry:
    """Return the seeded task schema."""
    reg = PropertyRegistry("tasks")
    reg.add_group(Group("taskinformation", "Task information", 0))
    g = "taskinformation"
    _system(reg, g, TASKS)
    reg.add(_p("hs_timestamp", "datetime", "date", g))
    reg.add(_p("hs_task_subject", "string", "text", g))
    reg.add(_p("hs_task_body", "string", "html", g))
    for name, values in TASK_ENUMS.items():
        reg.add(_p(name, "enumeration", "select", g, options=_options(values)))
    return reg


def seeded_registries() -> dict[str, PropertyRegistry]:
    """Return a fresh registry per object type."""
    return {"contacts": contact_registry(), "companies": company_registry(),
            "deals": deal_registry(), "tasks": task_registry()}
