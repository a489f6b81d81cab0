"""Map the CRM-neutral seed org (:mod:`crmsync.sandbox.seed`) onto Salesforce records.

Owners become Users; people with ``is_lead`` become Leads, the others Contacts with an Account
carrying their company's firmographics; deals become Opportunities; the last activity becomes a
completed Task. Timestamps come from the seed, so a seed gives the same org every time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from crmsync.sandbox.salesforce.dml import derive
from crmsync.sandbox.salesforce.history import history_row
from crmsync.sandbox.salesforce.schema import INDUSTRIES, LEAD_SOURCES
from crmsync.sandbox.salesforce.store import Record, Store
from crmsync.sandbox.salesforce.values import truncate_ms
from crmsync.sandbox.seed import Org, Person

_LEAD_STATUS = {
    "NEW": "Open - Not Contacted",
    "OPEN": "Open - Not Contacted",
    "IN_PROGRESS": "Working - Contacted",
    "ATTEMPTED_TO_CONTACT": "Working - Contacted",
    "CONNECTED": "Working - Contacted",
    "BAD_TIMING": "Closed - Not Converted",
}
_STAGES = {
    "qualification": "Qualification",
    "discovery": "Prospecting",
    "proposal": "Proposal/Price Quote",
    "negotiation": "Negotiation/Review",
    "closedwon": "Closed Won",
    "closedlost": "Closed Lost",
}


def seed_store(store: Store, org: Org) -> str:
    """Fill an empty store from ``org``; return the id of the API (integration) user."""
    anchor = truncate_ms(org.anchor)
    org_start = anchor - timedelta(days=800)
    api_user = _put(store, "User", org_start, org_start, {
        "FirstName": "Integration", "LastName": "User", "Email": "integration@crmsync-demo.example",
        "Username": "integration@crmsync-demo.example", "Alias": "integ", "IsActive": True,
    })
    _put(store, "Organization", org_start, org_start, {
        "Name": "crmsync Sandbox", "OrganizationType": "Developer Edition", "IsSandbox": True,
        "InstanceName": "SBX1", "Country": "US",
    })
    owners = [
        _put(store, "User", org_start, org_start, {
            "FirstName": o.first_name, "LastName": o.last_name, "Email": o.email,
            "Username": o.email, "Alias": f"rep{o.index + 1}", "IsActive": True,
        })
        for o in org.owners
    ]
    for person in org.people:
        _person(store, person, owners, api_user, anchor)
    return api_user


def _person(store: Store, p: Person, owners: list[str], api_user: str, anchor: datetime) -> None:
    created, modified = truncate_ms(p.created_at), truncate_ms(p.modified_at)
    owner = owners[p.owner_index % len(owners)] if owners else api_user
    industry = p.industry if p.industry in INDUSTRIES else (p.industry and "Other")
    common: dict[str, Any] = {
        "FirstName": p.first_name, "LastName": p.last_name, "Email": p.email, "Title": p.title,
        "OwnerId": owner, "LeadSource": LEAD_SOURCES[p.index % len(LEAD_SOURCES)],
        "Form_Submissions__c": float(p.form_submissions),
        "Webinars_Attended__c": float(p.webinars_attended),
        "Content_Downloads__c": float(p.content_downloads),
        "Page_Views__c": float(p.page_views),
        "Pricing_Page_Views__c": float(p.pricing_page_views),
        "Chat_Conversations__c": float(p.chat_conversations),
        "Trial_Signup__c": p.trial_signup,
        "Demo_Requested__c": p.demo_requested,
        "Case_Study_Requested__c": p.case_study_requested,
        "Inbound_From_Decision_Maker__c": p.inbound_from_decision_maker,
        # Checkboxes are never null in Salesforce: unknown means false.
        "Budget_Confirmed__c": bool(p.budget_confirmed),
        "Decision_Maker__c": bool(p.decision_maker),
        "Not_A_Fit__c": p.not_a_fit,
        "Last_Contacted_At__c": truncate_ms(p.last_contacted_at) if p.last_contacted_at else None,
        "LastActivityDate": p.last_activity_at.date() if p.last_activity_at else None,
    }
    if p.is_lead:
        who = _put(store, "Lead", created, modified, {
            **common, "Company": p.company or f"{p.last_name} (personal)", "Country": p.country,
            "Industry": industry, "NumberOfEmployees": p.employees,
            "AnnualRevenue": p.annual_revenue,
            "Status": _LEAD_STATUS.get(p.lead_status or "", "Open - Not Contacted"),
            "IsConverted": False,
        })
        account = None
    else:
        account = None
        if p.company:
            account = _put(store, "Account", created, created, {
                "Name": p.company, "Industry": industry, "NumberOfEmployees": p.employees,
                "AnnualRevenue": p.annual_revenue, "BillingCountry": p.country, "OwnerId": owner,
            })
        who = _put(store, "Contact", created, modified, {
            **common, "AccountId": account, "MailingCountry": p.country,
        })
        _history(store, p, who)
        for deal in p.deals:
            stage = _STAGES.get(deal.stage, "Prospecting")
            closed = truncate_ms(deal.close_date)
            # Open deals close in the future, and deals of recent contacts may be "created" after
            # the anchor; no row may carry a timestamp later than the seed's "now".
            opened = min(truncate_ms(deal.created_at), anchor)
            _put(store, "Opportunity", opened, min(closed, modified, anchor), {
                "Name": deal.name, "StageName": stage, "Amount": deal.amount,
                "CloseDate": closed.date(), "AccountId": account, "ContactId": who,
                "OwnerId": owner, "Loss_Reason__c": deal.loss_reason,
                "Competitor__c": deal.competitor,
            })
    if p.last_activity_at is not None:
        done = truncate_ms(p.last_activity_at)
        _put(store, "Task", done, done, {
            "WhoId": who, "WhatId": None if p.is_lead else account,
            "Subject": "Call" if p.index % 3 else "Email: follow-up", "ActivityDate": done.date(),
            "Status": "Completed", "Priority": "Normal", "OwnerId": owner,
            "TaskSubtype": "Call" if p.index % 3 else "Email",
            "Description": None,
        })


#: Seeded person attribute -> tracked Contact field. The last activity (system-kept) and the
#: Account's employees and industry have no ContactHistory, as in real orgs.
_HISTORY_FIELDS = {
    "budget_confirmed": "Budget_Confirmed__c", "decision_maker": "Decision_Maker__c",
    "demo_requested": "Demo_Requested__c", "trial_signup": "Trial_Signup__c",
    "pricing_page_views": "Pricing_Page_Views__c", "country": "MailingCountry",
    "email": "Email", "not_a_fit": "Not_A_Fit__c",
}


def _history_value(store: Store, field: str, value: Any) -> Any:
    ftype = store.schema["contact"].fields[field.lower()].type
    if ftype == "boolean":
        return bool(value)  # checkboxes are never null in Salesforce: unknown is false
    if ftype == "double":
        return None if value is None else float(value)
    return value


def _history(store: Store, p: Person, contact_id: str) -> None:
    """Write a Contact's ``ContactHistory`` rows: ``created``, then each tracked change."""
    if p.history.missing:
        return  # imported before field history tracking was switched on
    user = next(iter(store.tables["User"]))
    history_row(store, contact_id, "created", None, None, truncate_ms(p.created_at), user)
    for change in p.history.changes:
        field = _HISTORY_FIELDS.get(change.attribute)
        if field is None:
            continue
        old = _history_value(store, field, change.old)
        new = _history_value(store, field, change.new)
        if old != new:
            history_row(store, contact_id, field, old, new, truncate_ms(change.at), user)


def _put(
    store: Store, obj_name: str, created: datetime, modified: datetime, values: dict[str, Any]
) -> str:
    obj = store.schema[obj_name.lower()]
    record: Record = {f.name: None for f in obj.fields.values()}
    for fdef in obj.fields.values():
        if fdef.default is not None and fdef.default != "__api_user__":
            record[fdef.name] = fdef.default
    record.update(values)
    record["Id"] = store.new_id(obj_name)
    record["IsDeleted"] = False
    record["CreatedDate"] = created
    record["LastModifiedDate"] = record["SystemModstamp"] = max(created, modified)
    # Seeded rows were "created" by the integration user, the first User of every org.
    # Seeded rows were created by the integration user, the org's first User.
    creator = next(iter(store.tables["User"]), record["Id"])
    record["CreatedById"] = record["LastModifiedById"] = creator
    derive(obj_name, record)
    store.put(obj_name, record)
    return record["Id"]
