"""HubSpot emulator: companies (CRUD, batch, search, properties), contact<->company links, merge.

Driven through the stock hubspot-api-client; expected values come from the generated seed org,
not from the emulator's answers.
"""

from __future__ import annotations

import pytest
from hubspot.crm.associations.v4 import (
    BatchInputPublicFetchAssociationsBatchRequest,
    PublicFetchAssociationsBatchRequest,
)
from hubspot.crm.companies import ApiException as CompanyApiException
from hubspot.crm.companies import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
    SimplePublicObjectId,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.contacts import ApiException as ContactApiException
from hubspot.crm.contacts import Filter as ContactFilter
from hubspot.crm.contacts import FilterGroup as ContactFilterGroup
from hubspot.crm.contacts import PublicMergeInput
from hubspot.crm.contacts import PublicObjectSearchRequest as ContactSearch
from hubspot.crm.contacts import SimplePublicObjectInputForCreate as ContactCreate
from tests.sandbox.conftest import HUBSPOT_ANCHOR

from crmsync.sandbox.hubspot import HubSpotEmulator
from crmsync.sandbox.seed import PERSONAL_DOMAINS, STUDENT_DOMAINS, generate_org

FIRMOGRAPHICS = ["name", "domain", "industry", "numberofemployees", "annualrevenue", "country"]


def _contact_id(api, email: str) -> str:
    return api.crm.contacts.basic_api.get_by_id(email, id_property="email").id


def _companies_of(api, contact_ids: list[str]) -> dict[str, list[tuple[str, int]]]:
    answer = api.crm.associations.v4.batch_api.get_page(
        "contacts", "companies", BatchInputPublicFetchAssociationsBatchRequest(
            inputs=[PublicFetchAssociationsBatchRequest(id=i) for i in contact_ids]))
    return {
        r._from.id: [(str(t.to_object_id), t.association_types[0].type_id) for t in r.to]
        for r in answer.results
    }


def test_seed_gives_most_people_one_company_by_their_email_domain() -> None:
    org = generate_org(250, 7, HUBSPOT_ANCHOR)
    again = generate_org(250, 7, HUBSPOT_ANCHOR)
    assert [c.__dict__ for c in org.companies] == [c.__dict__ for c in again.companies]
    employed = [p for p in org.people if p.company_index is not None]
    assert len(employed) > 0.75 * len(org.people)
    for person in org.people:
        domain = person.email.rsplit("@", 1)[1]
        if person.company_index is None:
            assert domain in PERSONAL_DOMAINS or domain in STUDENT_DOMAINS
        else:
            assert org.companies[person.company_index].domain == domain
    # A company fills what its contact left empty (sparse form fills).
    assert any(p.industry is None and org.companies[p.company_index].industry
               for p in employed)


def test_seeded_companies_are_linked_to_their_contacts_with_279_and_280(
        hubspot_api, hubspot_org) -> None:
    people = [p for p in hubspot_org.people if p.company_index is not None][:20]
    ids = {_contact_id(hubspot_api, p.email): p for p in people}
    linked = _companies_of(hubspot_api, list(ids))
    assert set(linked) == set(ids)
    for contact_id, person in ids.items():
        [(company_id, type_id)] = linked[contact_id]
        assert type_id == 279
        company = hubspot_api.crm.companies.basic_api.get_by_id(
            company_id, properties=FIRMOGRAPHICS, associations=["contacts"])
        seeded = hubspot_org.companies[person.company_index]
        assert company.properties["domain"] == seeded.domain
        assert company.properties["name"] == seeded.name
        assert company.properties["industry"] == seeded.industry
        assert int(company.properties["numberofemployees"]) == seeded.employees
        assert contact_id in [a.id for a in company.associations["contacts"].results]
        back = hubspot_api.crm.associations.v4.basic_api.get_page(
            "companies", company_id, "contacts")
        assert (contact_id, 280) in [
            (str(r.to_object_id), r.association_types[0].type_id) for r in back.results]
    inline = hubspot_api.crm.contacts.basic_api.get_by_id(
        next(iter(ids)), associations=["companies"])
    assert [a.type for a in inline.associations["companies"].results] == ["contact_to_company"]


def test_company_crud(hubspot_api) -> None:
    basic = hubspot_api.crm.companies.basic_api
    made = basic.create(SimplePublicObjectInputForCreate(
        properties={"name": "Fjord Analytics AS", "domain": "fjord.example.com",
                    "numberofemployees": "42"}))
    assert made.properties["name"] == "Fjord Analytics AS"
    read = basic.get_by_id(made.id, properties=["numberofemployees", "domain"])
    assert read.properties["numberofemployees"] == "42"
    basic.update(made.id, SimplePublicObjectInput(properties={"industry": "Software"}))
    assert basic.get_by_id(made.id, properties=["industry"]).properties["industry"] == "Software"
    basic.archive(made.id)
    with pytest.raises(CompanyApiException) as caught:
        basic.get_by_id(made.id)
    assert caught.value.status == 404
    page = basic.get_page(limit=5, properties=["domain"])
    assert len(page.results) == 5 and all(r.properties["domain"] for r in page.results)


def test_company_batch_create_read_update(hubspot_api) -> None:
    batch = hubspot_api.crm.companies.batch_api
    created = batch.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
        {"properties": {"name": f"Batch Co {i}", "domain": f"batch{i}.example.com"}}
        for i in range(3)]))
    ids = sorted(r.id for r in created.results)
    assert len(ids) == 3
    batch.update(BatchInputSimplePublicObjectBatchInput(inputs=[
        SimplePublicObjectBatchInput(id=i, properties={"country": "NO"}) for i in ids]))
    read = batch.read(BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id=i) for i in ids], properties=["country", "name"],
        properties_with_history=[]))
    assert sorted((r.id, r.properties["country"]) for r in read.results) == [
        (i, "NO") for i in ids]


def test_company_search_and_properties(hubspot_api, hubspot_org) -> None:
    seeded = hubspot_org.companies[3]
    found = hubspot_api.crm.companies.search_api.do_search(PublicObjectSearchRequest(
        filter_groups=[FilterGroup(filters=[
            Filter(property_name="domain", operator="EQ", value=seeded.domain)])],
        properties=FIRMOGRAPHICS, limit=10))
    assert found.total == 1 and found.results[0].properties["name"] == seeded.name
    everything = hubspot_api.crm.companies.search_api.do_search(
        PublicObjectSearchRequest(limit=1))
    assert everything.total == len(hubspot_org.companies)
    names = {p.name for p in hubspot_api.crm.properties.core_api.get_all("companies").results}
    assert set(FIRMOGRAPHICS) <= names


def test_default_association_of_a_new_company_uses_279(hubspot_api, hubspot_org) -> None:
    company = hubspot_api.crm.companies.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"name": "Linked Ltd"}))
    person = next(p for p in hubspot_org.people if p.company_index is None)
    contact_id = _contact_id(hubspot_api, person.email)
    hubspot_api.crm.associations.v4.basic_api.create_default(
        "contacts", contact_id, "companies", company.id)
    assert _companies_of(hubspot_api, [contact_id]) == {contact_id: [(company.id, 279)]}


def _new_contact(api, email: str, **props: str) -> str:
    return api.crm.contacts.basic_api.create(
        ContactCreate(properties={"email": email, **props})).id


def test_contact_merge_keeps_primary_id_moves_links_and_drops_the_other(
        hubspot_api, hubspot_org) -> None:
    primary = _new_contact(hubspot_api, "merge.primary@fjord.example.com", firstname="Ingrid")
    other = _new_contact(hubspot_api, "merge.other@fjord.example.com", firstname="Inga",
                         jobtitle="CTO")
    company = hubspot_api.crm.companies.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"name": "Fjord AS"}))
    hubspot_api.crm.associations.v4.basic_api.create_default(
        "contacts", other, "companies", company.id)

    merged = hubspot_api.crm.contacts.basic_api.merge(
        PublicMergeInput(primary_object_id=primary, object_id_to_merge=other))

    assert merged.id == primary
    read = hubspot_api.crm.contacts.basic_api.get_by_id(
        primary, properties=["firstname", "jobtitle", "email", "hs_additional_emails"],
        associations=["companies"])
    assert read.properties["firstname"] == "Ingrid"  # the primary's own value wins
    assert read.properties["jobtitle"] == "CTO"  # a gap is filled from the merged record
    assert read.properties["hs_additional_emails"] == "merge.other@fjord.example.com"
    assert [a.id for a in read.associations["companies"].results] == [company.id]
    # The merged record is gone from lists and search; its old id answers the survivor.
    assert hubspot_api.crm.contacts.basic_api.get_by_id(other).id == primary
    listed = hubspot_api.crm.contacts.search_api.do_search(ContactSearch(
        filter_groups=[ContactFilterGroup(filters=[ContactFilter(
            property_name="email", operator="CONTAINS_TOKEN", value="*@fjord.example.com")])]))
    assert [r.id for r in listed.results] == [primary]
    with pytest.raises(ContactApiException) as caught:
        hubspot_api.crm.contacts.basic_api.merge(
            PublicMergeInput(primary_object_id=primary, object_id_to_merge=other))
    assert caught.value.status == 400
    back = hubspot_api.crm.associations.v4.basic_api.get_page("companies", company.id, "contacts")
    assert [str(r.to_object_id) for r in back.results] == [primary]


def test_merged_ids_still_answer_the_survivor_after_a_snapshot_and_restore(
        hubspot_api, hubspot_emulator, hubspot_clock) -> None:
    primary = _new_contact(hubspot_api, "keep@fjord.example.com")
    other = _new_contact(hubspot_api, "gone@fjord.example.com")
    hubspot_api.crm.contacts.basic_api.merge(
        PublicMergeInput(primary_object_id=primary, object_id_to_merge=other))
    restored = HubSpotEmulator(clock=hubspot_clock)
    restored.restore(hubspot_emulator.snapshot())
    contacts = restored.account.object_type("contacts")
    assert restored.account.find(contacts, other).id == primary


def test_contact_merge_rejects_bad_input(hubspot_http) -> None:
    status, body, _ = hubspot_http("POST", "/crm/v3/objects/contacts/merge",
                                   {"primaryObjectId": "101", "objectIdToMerge": "101"})
    assert status == 400 and body["category"] == "VALIDATION_ERROR"
    status, body, _ = hubspot_http("POST", "/crm/v3/objects/contacts/merge",
                                   {"primaryObjectId": "101", "objectIdToMerge": "999999"})
    assert status == 404 and body["category"] == "OBJECT_NOT_FOUND"
    status, _, _ = hubspot_http("POST", "/crm/v3/objects/contacts/merge",
                                {"primaryObjectId": "101"})
    assert status == 400
    status, _, _ = hubspot_http("GET", "/crm/v3/objects/contacts/101")
    assert status == 200  # nothing was merged away
