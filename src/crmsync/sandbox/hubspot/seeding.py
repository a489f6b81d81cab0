"""Map a CRM-neutral seeded :class:`~crmsync.sandbox.seed.Org` onto HubSpot records and owners."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crmsync.sandbox.hubspot.properties import iso_ms
from crmsync.sandbox.hubspot.schema import (
    ANALYTICS_SOURCES,
    ENGAGEMENT_FLAGS,
    ENGAGEMENT_NUMBERS,
)
from crmsync.sandbox.seed import Company, Deal, Org, Person

#: Neutral open-deal stages -> HubSpot default pipeline stages.
OPEN_STAGE_MAP = {
    "qualification": "qualifiedtobuy",
    "discovery": "appointmentscheduled",
    "proposal": "presentationscheduled",
    "negotiation": "decisionmakerboughtin",
}
OWNER_ID_BASE = 41_629_779
USER_ID_BASE = 9_586_504


def ms(moment: datetime) -> int:
    """Return epoch milliseconds of an aware datetime."""
    return int(moment.timestamp() * 1000)


def owner_id(index: int) -> str:
    """Return the numeric-string owner id of seeded rep ``index``."""
    return str(OWNER_ID_BASE + index * 17)


def owners(org: Org) -> list[dict[str, Any]]:
    """Return owners in the ``PublicOwner`` wire shape."""
    created = iso_ms(ms(org.anchor) - 400 * 86_400_000)
    return [
        {
            "id": owner_id(o.index),
            "email": o.email,
            "type": "PERSON",
            "firstName": o.first_name,
            "lastName": o.last_name,
            "userId": USER_ID_BASE + o.index,
            "userIdIncludingInactive": USER_ID_BASE + o.index,
            "createdAt": created,
            "updatedAt": created,
            "archived": False,
            "teams": [{"id": "1", "name": "Sales", "primary": True}],
        }
        for o in org.owners
    ]


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    return str(value)


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else iso_ms(ms(moment))


def contact_properties(person: Person) -> dict[str, str | None]:
    """Return a person's contact properties (timestamps are set from the record)."""
    props: dict[str, str | None] = {
        "email": person.email,
        "firstname": person.first_name,
        "lastname": person.last_name,
        "jobtitle": person.title,
        "company": person.company,
        "country": person.country,
        "industry": person.industry,
        "numemployees": _text(person.employees),
        "annualrevenue": _text(person.annual_revenue),
        "hubspot_owner_id": owner_id(person.owner_index),
        "notes_last_updated": _when(person.last_activity_at),
        "notes_last_contacted": _when(person.last_contacted_at),
        "num_conversion_events": _text(person.form_submissions),
        "hs_analytics_num_page_views": _text(person.page_views),
        # By index, as the Salesforce seeding picks LeadSource: no extra draw from the seed's
        # random stream, so every other seeded value stays as it was.
        "hs_analytics_source": ANALYTICS_SOURCES[person.index % len(ANALYTICS_SOURCES)],
        "lifecyclestage": person.lifecycle_stage,
        "hs_lead_status": person.lead_status,
    }
    for name in (*ENGAGEMENT_NUMBERS, *ENGAGEMENT_FLAGS):
        props[name] = _text(getattr(person, name))
    return props


#: Seeded person attribute -> the contact property holding it (for field history).
HISTORY_PROPERTIES = {
    "budget_confirmed": "budget_confirmed", "decision_maker": "decision_maker",
    "demo_requested": "demo_requested", "trial_signup": "trial_signup",
    "pricing_page_views": "pricing_page_views", "employees": "numemployees",
    "last_activity_at": "notes_last_updated", "country": "country", "industry": "industry",
    "email": "email", "not_a_fit": "not_a_fit",
}


def _wire(value: object) -> str | None:
    return _when(value) if isinstance(value, datetime) else _text(value)


def contact_history(person: Person) -> dict[str, list[list[object]]]:
    """Return a contact's recorded changes per property (``Record.history`` shape).

    A changed property's list starts with its value at creation (unless history is missing
    for the person); properties that never changed are left out (their one entry is the
    creation value, see :meth:`~crmsync.sandbox.hubspot.store.Record.history_of`).
    """
    out: dict[str, list[list[object]]] = {}
    for change in person.history.changes:
        name = HISTORY_PROPERTIES[change.attribute]
        old, new = _wire(change.old), _wire(change.new)
        if old == new:
            continue
        entries = out.setdefault(name, [])
        if not entries and old is not None and not person.history.missing:
            entries.append([ms(person.created_at), old])
        entries.append([ms(change.at), new])
    return out


def company_properties(company: Company) -> dict[str, str | None]:
    """Return a company's properties (its firmographics and web domain)."""
    return {
        "name": company.name,
        "domain": company.domain,
        "website": f"https://www.{company.domain}",
        "industry": company.industry,
        "numberofemployees": _text(company.employees),
        "annualrevenue": _text(company.annual_revenue),
        "country": company.country,
    }


def deal_properties(deal: Deal, person: Person) -> dict[str, str | None]:
    """Return a deal's properties (owned by its contact's owner)."""
    stage = OPEN_STAGE_MAP.get(deal.stage, deal.stage)
    return {
        "dealname": deal.name,
        "dealstage": stage,
        "pipeline": "default",
        "amount": _text(deal.amount),
        "closedate": _when(deal.close_date),
        "closed_lost_reason": deal.loss_reason if deal.outcome == "lost" else None,
        "competitor": deal.competitor,
        "hubspot_owner_id": owner_id(person.owner_index),
    }


def deal_modified(deal: Deal, anchor: datetime) -> datetime:
    """Return when a deal last changed: its close if that is in the past, else its creation."""
    if deal.outcome != "open" and deal.close_date <= anchor:
        return deal.close_date
    return deal.created_at
