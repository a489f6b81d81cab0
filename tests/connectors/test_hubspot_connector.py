"""The HubSpot connector driving the real hubspot-api-client against the sandbox emulator.

Nothing is mocked: requests go over loopback HTTP to :class:`HubSpotEmulator`; assertions compare
with the seed org (what the CRM holds), the emulator's records and its own call counts. The
emulator and the connector share a fake clock whose ``sleep`` moves time on, so rate-limit
windows and Retry-After waits pass instantly and every wait is recorded.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hubspot import HubSpot

from crmsync.connectors.base import Connector, Page, RecordUpdate
from crmsync.connectors.hubspot import MAX_PENDING_PAGES, HubSpotConnector, task_key, translate
from crmsync.errors import (
    AuthError,
    ConfigError,
    CrmRequestError,
    QuotaExhausted,
    TransientError,
)
from crmsync.model import TaskClose, TaskCreate, TaskSpec
from crmsync.retry import RetryPolicy
from crmsync.sandbox.hubspot import HubSpotEmulator
from crmsync.sandbox.hubspot.seeding import owner_id
from crmsync.sandbox.seed import Org, Person, generate_org
from crmsync.sandbox.server import SandboxServer

STREAM = "hubspot:contacts"
ROOT = Path(__file__).resolve().parents[2]
#: The seed anchor of ``hubspot_org`` (see conftest).
ANCHOR = datetime(2026, 11, 23, tzinfo=UTC)
#: ``hubspot_admin(method, path, body) -> (status, JSON)`` (see conftest).
HubSpotAdmin = Any
#: The shared fake clock (see conftest): ``now``, ``sleeps``, ``sleep(s)``, ``advance(s)``.
HubSpotClock = Any

# crmsync.retry passes tenacity 9.2's deprecated ``initial=`` to wait_exponential_jitter; the
# warning is not this connector's to fix, and must not fail these tests meanwhile.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The 'initial' parameter is deprecated:DeprecationWarning")


def _read_all(connector: HubSpotConnector, since: datetime | None = None) -> list[Page]:
    return list(connector.read(STREAM, since))


def _server_total(server: SandboxServer) -> int:
    return int(server.call_counts()["total"])


def _by_email(org: Org) -> dict[str, Person]:
    return {p.email.lower(): p for p in org.people}


def _records(admin: HubSpotAdmin, type_name: str) -> dict[str, dict[str, Any]]:
    status, body = admin("GET", f"/_sandbox/records/{type_name}")
    assert status == 200
    return {r["id"]: r for r in body["results"]}


def _quiet_since(admin: HubSpotAdmin, clock: HubSpotClock) -> datetime:
    """Move the clock past every record's last change (the seed dates some deals ahead of
    its anchor) and return that moment: nothing has changed since."""
    latest = max(datetime.fromisoformat(r["updatedAt"].replace("Z", "+00:00"))
                 for kind in ("contacts", "deals") for r in _records(admin, kind).values())
    clock.now = max(clock.now, latest.timestamp()) + 60
    return datetime.fromtimestamp(clock.now, UTC)


def _task(contact_id: str, key: str, due: date = date(2026, 12, 1)) -> TaskCreate:
    spec = TaskSpec(purpose="follow_up", subject="Call back", body="Trial signup, pricing x3",
                    due=due, priority="high")
    return TaskCreate(contact_id, "contacts", key, spec, owner_id=None)


# -- protocol and construction ----------------------------------------------------------------


def test_connector_satisfies_the_protocol(hubspot_connector: HubSpotConnector) -> None:
    assert isinstance(hubspot_connector, Connector)
    assert hubspot_connector.streams() == [STREAM]
    assert hubspot_connector.limits.write_batch == 100
    with pytest.raises(ConfigError, match="hubspot:contacts"):
        next(hubspot_connector.read("hubspot:companies", None))


def test_wrong_field_map_or_empty_token_is_a_config_error(hubspot_fieldmap: Any) -> None:
    from crmsync.connectors.fieldmap_load import load_fieldmap

    with pytest.raises(ConfigError, match="not hubspot"):
        HubSpotConnector(load_fieldmap(ROOT / "connectors" / "salesforce.json"), token="t")
    with pytest.raises(ConfigError, match="token"):
        HubSpotConnector(hubspot_fieldmap, token="")


# -- reads ------------------------------------------------------------------------------------


def test_full_read_matches_the_seeded_org_at_the_minimum_call_count(
    hubspot_connector: HubSpotConnector, hubspot_server: SandboxServer, hubspot_org: Org
) -> None:
    pages = _read_all(hubspot_connector)
    contacts = [c for p in pages for c in p.contacts]
    # A full read searches from the epoch: pages of 200 in modified order.
    assert all(p.ordered and not p.related and len(p.contacts) <= 200 for p in pages)
    stamps = [c.modified_at for c in contacts]
    assert stamps == sorted(stamps)  # type: ignore[type-var]
    assert len(contacts) == len({c.id for c in contacts}) == len(hubspot_org.people)
    people = _by_email(hubspot_org)
    for contact in contacts:
        f = contact.facts
        person = people[f["email"]]
        assert f["id"] == contact.id
        assert (f["first_name"], f["last_name"], f["title"]) == (
            person.first_name, person.last_name, person.title)
        assert f["email_domain"] == person.email.rpartition("@")[2].lower()
        assert f["country"] == person.country
        assert f["employees"] == person.employees
        assert f["annual_revenue"] == person.annual_revenue
        assert f["page_views"] == person.page_views
        assert f["pricing_page_views"] == person.pricing_page_views
        assert f["trial_signup"] is person.trial_signup
        assert f["budget_confirmed"] == person.budget_confirmed
        assert f["created_at"] == person.created_at.replace(
            microsecond=person.created_at.microsecond // 1000 * 1000)
        assert contact.owner_id == f["owner_id"] == owner_id(person.owner_index)
        assert contact.modified_at is not None
        outcomes = [d.outcome for d in person.deals]
        assert (f["open_deals"], f["won_deals"], f["lost_deals"]) == (
            outcomes.count("open"), outcomes.count("won"), outcomes.count("lost"))
        lost = [d for d in person.deals if d.outcome == "lost"]
        if lost:
            last = max(lost, key=lambda d: d.close_date)
            assert f["closed_lost_reason"] == (last.loss_reason or None)
        assert contact.outputs["status"] is None and f["previous_status"] is None
    deals = sum(len(p.deals) for p in hubspot_org.people)
    assert deals > 0
    # Searches of 200, one v4 association read per 1000 contacts, deal batch reads of 100.
    people = len(hubspot_org.people)
    minimum = math.ceil(people / 200) + math.ceil(people / 1000) + math.ceil(deals / 100)
    assert hubspot_connector.api_calls() == _server_total(hubspot_server) == minimum
    by_endpoint = hubspot_server.call_counts()["by_endpoint"]
    assert by_endpoint["POST /crm/v3/objects/contacts/search"] == math.ceil(people / 200)


def test_incremental_read_returns_exactly_the_contacts_users_changed(
    hubspot_connector: HubSpotConnector, hubspot_server: SandboxServer, hubspot_admin: HubSpotAdmin,
    hubspot_clock: HubSpotClock,
) -> None:
    ids = sorted(_records(hubspot_admin, "contacts"), key=int)
    since = _quiet_since(hubspot_admin, hubspot_clock)
    changed = [ids[3], ids[50], ids[120]]
    for n, record_id in enumerate(changed):
        hubspot_clock.advance(5)
        status, _ = hubspot_admin("PATCH", f"/_sandbox/records/contacts/{record_id}",
                                  {"properties": {"jobtitle": f"VP Sales {n}"}})
        assert status == 200
    pages = _read_all(hubspot_connector, since)
    assert all(p.ordered and not p.related for p in pages)
    contacts = [c for p in pages for c in p.contacts]
    assert [c.id for c in contacts] == changed  # ascending lastmodifieddate
    assert [c.facts["title"] for c in contacts] == ["VP Sales 0", "VP Sales 1", "VP Sales 2"]
    assert all(c.modified_at is not None and c.modified_at >= since for c in contacts)
    assert hubspot_connector.api_calls() == _server_total(hubspot_server)


def test_contacts_sharing_one_timestamp_are_paged_by_id_not_by_offset(
    hubspot_connector: HubSpotConnector, hubspot_server: SandboxServer, hubspot_admin: HubSpotAdmin,
    hubspot_clock: HubSpotClock,
) -> None:
    """An import stamps many contacts alike: the read steps through that stamp by id."""
    ids = sorted(_records(hubspot_admin, "contacts"), key=int)
    since = _quiet_since(hubspot_admin, hubspot_clock)
    for record_id in ids[:250]:  # the clock stands still: one lastmodifieddate for all 250
        assert hubspot_admin("PATCH", f"/_sandbox/records/contacts/{record_id}",
                             {"properties": {"jobtitle": "Imported"}})[0] == 200
    hubspot_clock.advance(5)
    assert hubspot_admin("PATCH", f"/_sandbox/records/contacts/{ids[260]}",
                         {"properties": {"jobtitle": "Later"}})[0] == 200
    hubspot_server.reset()
    pages = _read_all(hubspot_connector, since)
    contacts = [c for p in pages if not p.related for c in p.contacts]
    assert [c.id for c in contacts] == [*ids[:250], ids[260]]  # each once, ties by id
    # The window (200 on one stamp), that stamp by id (200, then 50), then after it.
    searches = hubspot_server.call_counts()["by_endpoint"]["POST /crm/v3/objects/contacts/search"]
    assert searches == 4


def test_contacts_changed_after_until_wait_for_the_next_run(
    hubspot_connector: HubSpotConnector, hubspot_admin: HubSpotAdmin, hubspot_clock: HubSpotClock,
) -> None:
    ids = sorted(_records(hubspot_admin, "contacts"), key=int)
    since = _quiet_since(hubspot_admin, hubspot_clock)
    hubspot_clock.advance(5)
    hubspot_admin("PATCH", f"/_sandbox/records/contacts/{ids[7]}",
                  {"properties": {"jobtitle": "A"}})
    hubspot_clock.advance(5)
    until = datetime.fromtimestamp(hubspot_clock.now, UTC)
    hubspot_clock.advance(5)
    hubspot_admin("PATCH", f"/_sandbox/records/contacts/{ids[8]}",
                  {"properties": {"jobtitle": "B"}})
    pages = list(hubspot_connector.read(STREAM, since, until))
    assert [c.id for p in pages for c in p.contacts] == [ids[7]]


def test_contacts_whose_deals_changed_follow_in_related_pages(
    hubspot_connector: HubSpotConnector, hubspot_admin: HubSpotAdmin, hubspot_clock: HubSpotClock,
) -> None:
    deals = _records(hubspot_admin, "deals")
    since = _quiet_since(hubspot_admin, hubspot_clock)
    deal = next(d for d in deals.values() if d["properties"].get("dealstage") != "closedwon")
    contact_id = deal["associations"]["contacts"][0]["id"]
    edited = next(i for i in _records(hubspot_admin, "contacts") if i != contact_id)
    hubspot_clock.advance(5)
    hubspot_admin("PATCH", f"/_sandbox/records/deals/{deal['id']}",
                  {"properties": {"dealstage": "closedwon"}})
    hubspot_admin("PATCH", f"/_sandbox/records/contacts/{edited}",
                  {"properties": {"jobtitle": "CTO"}})
    pages = _read_all(hubspot_connector, since)
    direct = [c.id for p in pages if not p.related for c in p.contacts]
    related = [c for p in pages if p.related for c in p.contacts]
    assert direct == [edited]
    assert [c.id for c in related] == [contact_id]
    assert related[0].facts["won_deals"] >= 1


def test_pages_stream_with_a_bounded_number_of_pages_held_back(
    hubspot_serve: Any, hubspot_fieldmap: Any, hubspot_clock: HubSpotClock,
) -> None:
    """Associations are read 1000 contacts a call and deals pooled into full batches, while at
    most MAX_PENDING_PAGES pages wait for their deals."""
    org = generate_org(2_000, 9, ANCHOR)
    server = hubspot_serve(HubSpotEmulator(org, clock=hubspot_clock))
    connector = HubSpotConnector(hubspot_fieldmap, token=server.token, base_url=server.base_url,
                                 sleep=hubspot_clock.sleep, clock=hubspot_clock)
    pages = connector.read(STREAM, None)
    first = next(pages)
    assert len(first.contacts) == 200
    # Before the first page: the searches of its first 1000 contacts (a search window repeats
    # its boundary record, dropped: 199 new after the first page), one association read, and
    # the deal reads of at most MAX_PENDING_PAGES pages.
    before_first = connector.api_calls()
    assert before_first <= 6 + 1 + MAX_PENDING_PAGES
    assert sum(len(p.contacts) for p in pages) == len(org.people) - 200
    deals = sum(len(p.deals) for p in org.people)
    by_endpoint = server.call_counts()["by_endpoint"]
    searches = by_endpoint["POST /crm/v3/objects/contacts/search"]
    assert searches <= math.ceil(len(org.people) / 199)
    assert by_endpoint["POST /crm/v4/associations/contacts/deals/batch/read"] == 2
    assert by_endpoint["POST /crm/v3/objects/deals/batch/read"] == math.ceil(deals / 100)
    assert connector.api_calls() == _server_total(server) > before_first
    connector.close()


def test_tasks_of_unowned_contacts_go_to_the_fallback_owner(
    hubspot_server: SandboxServer, hubspot_fieldmap: Any, hubspot_admin: HubSpotAdmin,
) -> None:
    fallback = owner_id(0)
    connector = HubSpotConnector(hubspot_fieldmap, token=hubspot_server.token,
                                 base_url=hubspot_server.base_url, owner_fallback=fallback)
    contact = sorted(_records(hubspot_admin, "contacts"), key=int)[0]
    owned = TaskCreate(contact, "contacts", "k-o", _task(contact, "k-o").spec, owner_id(1))
    made = connector.create_tasks([_task(contact, "k-f"), owned])
    tasks = _records(hubspot_admin, "tasks")
    assert [tasks[r.task_id]["properties"]["hubspot_owner_id"] for r in made] == [
        fallback, owner_id(1)]


def test_read_ids_skips_unknown_ids(
    hubspot_connector: HubSpotConnector, hubspot_admin: HubSpotAdmin
) -> None:
    ids = sorted(_records(hubspot_admin, "contacts"), key=int)[:3]
    contacts = hubspot_connector.read_ids(STREAM, [*ids, "999999"])
    assert sorted(c.id for c in contacts) == ids
    assert all("open_deals" in c.facts for c in contacts)


def test_incremental_read_windows_past_the_10000_result_search_cap(
    hubspot_serve: Any, hubspot_fieldmap: Any, hubspot_clock: HubSpotClock,
) -> None:
    """10,250 matches: more than one search may serve (after + limit > 10,000 is a 400)."""
    org = generate_org(10_250, 3, ANCHOR)
    clock = hubspot_clock
    server = hubspot_serve(HubSpotEmulator(org, clock=clock))
    connector = HubSpotConnector(hubspot_fieldmap, token=server.token, base_url=server.base_url,
                                 sleep=clock.sleep, clock=clock)
    try:
        pages = list(connector.read(STREAM, ANCHOR - timedelta(days=3650)))
    finally:
        connector.close()
    contacts = [c for p in pages if not p.related for c in p.contacts]
    assert len(contacts) == len({c.id for c in contacts}) == len(org.people)
    stamps = [c.modified_at for c in contacts]
    assert stamps == sorted(stamps)  # type: ignore[type-var]
    by_endpoint = server.call_counts()["by_endpoint"]
    # Keyset paging: each page is a fresh search GTE the last timestamp seen (the boundary
    # record dropped as already read), so no request nears the cap: 52 pages of <= 200.
    assert by_endpoint["POST /crm/v3/objects/contacts/search"] == 52
    # Deals of search pages are found with v4 reads pooled to 1000 contacts a call; contacts
    # re-read because their deals changed (every deal here) come first, a read per page.
    related_pages = sum(1 for p in pages if p.related)
    assert related_pages > 0
    assert by_endpoint["POST /crm/v4/associations/contacts/deals/batch/read"] == 11 + related_pages
    # Paced to the search bucket (5/s) and the 10-second one: not one 429 was needed.
    assert connector.api_calls() == _server_total(server)
    assert all(s <= 10 for s in clock.sleeps) and clock.sleeps


# -- writes -----------------------------------------------------------------------------------


def test_write_fields_encodes_values_and_reports_partial_failures_per_record(
    hubspot_connector: HubSpotConnector, hubspot_server: SandboxServer, hubspot_admin: HubSpotAdmin,
) -> None:
    ids = sorted(_records(hubspot_admin, "contacts"), key=int)[:4]
    hubspot_server.install_faults({"rules": [
        {"kind": "reject_record", "method": "POST", "path": "/crm/v3/objects/contacts/batch/update",
         "ids": [ids[1]], "error_code": "INVALID_OPTION", "times": None}]})
    when = datetime(2026, 11, 23, 9, 30, 1, 250000, tzinfo=UTC)
    updates = [RecordUpdate(i, "contacts", {"status": "prospect", "score": 42, "reason": "Fit",
                                            "evaluated_at": when, "miss_type": None})
               for i in ids[:3]]
    updates.append(RecordUpdate("999999", "contacts", {"status": "lead"}))
    results = {r.record_id: r for r in hubspot_connector.write_fields(updates)}
    assert set(results) == {*ids[:3], "999999"}
    assert results[ids[0]].ok and results[ids[2]].ok
    assert not results[ids[1]].ok and results[ids[1]].error_code == "INVALID_OPTION"
    assert not results["999999"].ok and results["999999"].error_code == "OBJECT_NOT_FOUND"
    assert not results["999999"].retryable
    stored = _records(hubspot_admin, "contacts")
    props = stored[ids[0]]["properties"]
    assert props["crmsync_status"] == "prospect"
    assert props["crmsync_score"] == "42"
    assert props["crmsync_evaluated_at"] == "2026-11-23T09:30:01.250Z"
    assert stored[ids[1]]["properties"].get("crmsync_status") is None
    assert hubspot_connector.api_calls() == _server_total(hubspot_server) == 1
    # Reading back decodes what was written; None clears.
    hubspot_connector.write_fields([RecordUpdate(ids[0], "contacts", {"reason": None})])
    back = hubspot_connector.read_ids(STREAM, [ids[0]])[0]
    assert back.outputs["status"] == "prospect" and back.outputs["reason"] is None
    assert back.outputs["evaluated_at"] == when.replace(microsecond=250000)


def test_a_batch_rejected_as_a_whole_is_split_so_neighbours_are_written(
    hubspot_connector: HubSpotConnector, hubspot_admin: HubSpotAdmin,
) -> None:
    ids = sorted(_records(hubspot_admin, "contacts"), key=int)[:5]
    updates = [RecordUpdate(i, "contacts", {"status": "lead"}) for i in ids]
    # A value that is not an enumeration option fails HubSpot's whole batch with a 400.
    updates[2] = RecordUpdate(ids[2], "contacts", {"status": "not-a-status"})
    results = {r.record_id: r for r in hubspot_connector.write_fields(updates)}
    assert [results[i].ok for i in ids] == [True, True, False, True, True]
    assert results[ids[2]].error_code == "INVALID_OPTION"
    stored = _records(hubspot_admin, "contacts")
    assert [stored[i]["properties"].get("crmsync_status") for i in ids] == [
        "lead", "lead", None, "lead", "lead"]


def test_tasks_are_created_associated_found_by_key_and_closed(
    hubspot_connector: HubSpotConnector, hubspot_server: SandboxServer, hubspot_admin: HubSpotAdmin,
    hubspot_fieldmap: Any,
) -> None:
    ids = sorted(_records(hubspot_admin, "contacts"), key=int)[:2]
    results = hubspot_connector.create_tasks([_task(ids[0], "k-a"), _task(ids[1], "k-b")])
    assert [r.ok for r in results] == [True, True] and [r.key for r in results] == ["k-a", "k-b"]
    tasks = _records(hubspot_admin, "tasks")
    made = tasks[results[0].task_id]
    assert made["properties"]["hs_timestamp"] == "2026-12-01T12:00:00.000Z"
    assert made["properties"]["hs_task_priority"] == "HIGH"
    assert made["properties"]["hs_task_status"] == hubspot_fieldmap.tasks.open_status
    assert made["properties"]["hs_task_body"].startswith("Trial signup, pricing x3")
    assert task_key(made["properties"]["hs_task_body"]) == "k-a"
    assert [a["id"] for a in made["associations"]["contacts"]] == [ids[0]]
    found = hubspot_connector.find_tasks(ids, ["k-a", "k-b", "k-c"])
    assert found == {"k-a": results[0].task_id, "k-b": results[1].task_id}
    closed = hubspot_connector.close_tasks([TaskClose(ids[0], "contacts", "k-a", found["k-a"])])
    assert closed[0].ok and closed[0].key == "k-a"
    assert hubspot_connector.find_tasks(ids, ["k-a", "k-b"]) == {"k-b": results[1].task_id}
    gone = hubspot_connector.close_tasks([TaskClose(ids[1], "contacts", "k-x", "999999")])
    assert gone[0].ok and gone[0].key == "k-x"  # nothing left to close (see below)
    assert hubspot_connector.api_calls() == _server_total(hubspot_server)


def test_an_open_task_already_in_the_crm_is_reported_not_created_again(
    hubspot_connector: HubSpotConnector, hubspot_server: SandboxServer, hubspot_admin: HubSpotAdmin,
) -> None:
    """The CRM has the last word: a key with an OPEN task there is found by one search, not
    re-created, whatever the caller (a lost state store) believes; a closed one is re-created."""
    ids = sorted(_records(hubspot_admin, "contacts"), key=int)[:3]
    first = hubspot_connector.create_tasks([_task(ids[0], "k-open"), _task(ids[1], "k-done")])
    made = _records(hubspot_admin, "tasks")[first[0].task_id]
    assert made["properties"]["crmsync_task_key"] == "k-open"
    hubspot_connector.close_tasks([TaskClose(ids[1], "contacts", "k-done", first[1].task_id)])
    hubspot_server.reset()
    again = hubspot_connector.create_tasks(
        [_task(ids[0], "k-open"), _task(ids[1], "k-done"), _task(ids[2], "k-new")])
    assert [(r.ok, r.key) for r in again] == [(True, "k-open"), (True, "k-done"), (True, "k-new")]
    assert again[0].task_id == first[0].task_id  # found, its CRM id returned
    assert again[1].task_id != first[1].task_id  # the closed one does not count
    tasks = _records(hubspot_admin, "tasks").values()
    stored = [t["properties"].get("crmsync_task_key") for t in tasks]
    keys = sorted(k for k in stored if k)
    assert keys == ["k-done", "k-done", "k-new", "k-open"]
    by_endpoint = hubspot_server.call_counts()["by_endpoint"]
    # One lookup search and one create for the batch.
    assert by_endpoint == {"POST /crm/v3/objects/tasks/search": 1,
                           "POST /crm/v3/objects/tasks/batch/create": 1}


def test_one_key_search_covers_five_create_batches(
    hubspot_connector: HubSpotConnector, hubspot_server: SandboxServer, hubspot_admin: HubSpotAdmin,
) -> None:
    """Searches are HubSpot's scarcest calls (5 a second): 500 keys go in one search, 100 in
    each of its five filter groups, and open tasks found in any group are not created again."""
    ids = sorted(_records(hubspot_admin, "contacts"), key=int)
    keys = [f"k-{n:03}" for n in range(520)]
    # Already open in the CRM: a key in the first group, one in the last, one past the 500th.
    earlier = hubspot_connector.create_tasks(
        [_task(ids[0], keys[3]), _task(ids[1], keys[499]), _task(ids[2], keys[510])])
    hubspot_server.reset()
    results = hubspot_connector.create_tasks(
        [_task(ids[n % len(ids)], key) for n, key in enumerate(keys)])
    assert [r.key for r in results] == keys and all(r.ok for r in results)
    assert [results[n].task_id for n in (3, 499, 510)] == [r.task_id for r in earlier]
    by_endpoint = hubspot_server.call_counts()["by_endpoint"]
    # Two searches (500 keys, then 20), six creates (100 x 4 + 98, then 19): 517 new tasks.
    assert by_endpoint == {"POST /crm/v3/objects/tasks/search": 2,
                           "POST /crm/v3/objects/tasks/batch/create": 6}
    stored = [t["properties"].get("crmsync_task_key")
              for t in _records(hubspot_admin, "tasks").values()]
    assert sorted(k for k in stored if k) == keys


def test_tasks_of_older_versions_are_found_by_the_key_in_their_body(
    hubspot_connector: HubSpotConnector, hubspot_server: SandboxServer, hubspot_admin: HubSpotAdmin,
) -> None:
    """Before ``crmsync_task_key`` the key lived only in the body; recovery still finds it."""
    ids = sorted(_records(hubspot_admin, "contacts"), key=int)[:1]
    legacy = HubSpot(access_token=hubspot_server.token, host=hubspot_server.base_url).crm.objects \
        .tasks.basic_api.create({
            "properties": {"hs_timestamp": "2026-12-01T12:00:00.000Z",
                           "hs_task_subject": "Call back", "hs_task_status": "NOT_STARTED",
                           "hs_task_body": "Trial signup\n<!-- crmsync-key:k-old -->"},
            "associations": [{"to": {"id": ids[0]}, "types": [
                {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}]}]})
    assert hubspot_connector.find_tasks(ids, ["k-old"]) == {"k-old": legacy.id}


def test_closing_a_task_a_rep_deleted_counts_as_done(
    hubspot_connector: HubSpotConnector, hubspot_server: SandboxServer, hubspot_admin: HubSpotAdmin,
    hubspot_fieldmap: Any,
) -> None:
    """#13.11: HubSpot answers OBJECT_NOT_FOUND for a deleted task; the close is done, not a
    rejection that would leave every later run ``partial``. Its batch neighbour still closes."""
    ids = sorted(_records(hubspot_admin, "contacts"), key=int)[:2]
    made = hubspot_connector.create_tasks([_task(ids[0], "k-del"), _task(ids[1], "k-keep")])
    HubSpot(access_token=hubspot_server.token, host=hubspot_server.base_url).crm.objects.tasks \
        .basic_api.archive(made[0].task_id)
    closed = hubspot_connector.close_tasks([
        TaskClose(ids[0], "contacts", "k-del", made[0].task_id),
        TaskClose(ids[1], "contacts", "k-keep", made[1].task_id)])
    assert [(r.ok, r.key, r.error_code) for r in closed] == [
        (True, "k-del", None), (True, "k-keep", None)]
    kept = _records(hubspot_admin, "tasks")[made[1].task_id]
    assert kept["properties"]["hs_task_status"] == hubspot_fieldmap.tasks.closed_status


@pytest.mark.parametrize("fault", [{"kind": "disconnect"}, {"status": 502}])
def test_a_create_with_a_lost_response_is_checked_not_blindly_resent(
    hubspot_connector: HubSpotConnector, hubspot_server: SandboxServer, hubspot_admin: HubSpotAdmin,
    fault: dict[str, Any],
) -> None:
    """After a dropped connection or 5xx the connector looks keys up and creates only the missing.

    ``k-1`` already exists (as if the lost create had landed it); the emulator drops this
    connection before processing, so ``k-2``/``k-3`` must be created and ``k-1`` must not be.
    """
    ids = sorted(_records(hubspot_admin, "contacts"), key=int)[:3]
    first = hubspot_connector.create_tasks([_task(ids[0], "k-1")])[0]
    hubspot_server.install_faults({"rules": [
        {"method": "POST", "path": "/crm/v3/objects/tasks/batch/create", "times": 1, **fault}]})
    results = hubspot_connector.create_tasks(
        [_task(ids[0], "k-1"), _task(ids[1], "k-2"), _task(ids[2], "k-3")])
    assert [(r.ok, r.key) for r in results] == [(True, "k-1"), (True, "k-2"), (True, "k-3")]
    assert results[0].task_id == first.task_id
    keys = [task_key(t["properties"]["hs_task_body"])
            for t in _records(hubspot_admin, "tasks").values()]
    assert sorted(keys) == ["k-1", "k-2", "k-3"]  # no duplicates
    by_endpoint = hubspot_server.call_counts()["by_endpoint"]
    assert by_endpoint["POST /crm/v3/objects/tasks/batch/create"] == 3  # first, lost, re-create
    assert hubspot_connector.api_calls() == _server_total(hubspot_server)


def test_a_create_that_landed_after_the_client_timed_out_is_not_duplicated(
    hubspot_server: SandboxServer, hubspot_fieldmap: Any, hubspot_admin: HubSpotAdmin,
) -> None:
    """The realistic lost response: the emulator creates the tasks after the read timed out.

    The create is held 300 ms server-side; the client gives up after 100 ms, waits SETTLE_S
    (really slept here, capped at 0.6 s) before looking, finds both keys and creates nothing.
    """
    ids = sorted(_records(hubspot_admin, "contacts"), key=int)[:2]
    connector = HubSpotConnector(hubspot_fieldmap, token=hubspot_server.token,
                                 base_url=hubspot_server.base_url, timeout=(2.0, 0.1),
                                 sleep=lambda s: time.sleep(min(s, 0.6)))
    hubspot_server.install_faults({"rules": [
        {"kind": "latency", "latency_ms": 300, "method": "POST",
         "path": "/crm/v3/objects/tasks/batch/create", "times": 1}]})
    started = time.monotonic()
    results = connector.create_tasks([_task(ids[0], "k-t1"), _task(ids[1], "k-t2")])
    connector.close()
    # Whatever the connector did, let the held request finish before counting tasks.
    time.sleep(max(0.0, started + 0.6 - time.monotonic()))
    assert [(r.ok, r.key) for r in results] == [(True, "k-t1"), (True, "k-t2")]
    tasks = _records(hubspot_admin, "tasks")
    assert sorted(task_key(t["properties"]["hs_task_body"]) for t in tasks.values()) == [
        "k-t1", "k-t2"]
    assert {r.task_id for r in results} == set(tasks)
    by_endpoint = hubspot_server.call_counts()["by_endpoint"]
    assert by_endpoint["POST /crm/v3/objects/tasks/batch/create"] == 1


def test_a_rate_limited_create_is_resent_as_is(
    hubspot_connector: HubSpotConnector, hubspot_server: SandboxServer, hubspot_admin: HubSpotAdmin,
    hubspot_clock: HubSpotClock,
) -> None:
    ids = sorted(_records(hubspot_admin, "contacts"), key=int)[:1]
    hubspot_server.install_faults({"rules": [
        {"kind": "rate_limit", "method": "POST", "path": "/crm/v3/objects/tasks/batch/create",
         "retry_after": 2}]})
    results = hubspot_connector.create_tasks([_task(ids[0], "k-9")])
    assert results[0].ok
    by_endpoint = hubspot_server.call_counts()["by_endpoint"]
    assert by_endpoint["POST /crm/v3/objects/tasks/batch/create"] == 2
    assert "POST /crm/v4/associations/contacts/tasks/batch/read" not in by_endpoint
    assert max(hubspot_clock.sleeps) >= 2


# -- retries, limits, errors ------------------------------------------------------------------


def test_429_is_retried_after_the_servers_retry_after(
    hubspot_connector: HubSpotConnector, hubspot_server: SandboxServer, hubspot_clock: HubSpotClock,
    hubspot_org: Org,
) -> None:
    hubspot_server.install_faults({"rules": [
        {"kind": "rate_limit", "method": "POST", "path": "/crm/v3/objects/contacts/search",
         "times": 2, "retry_after": 7}]})
    contacts = [c for p in _read_all(hubspot_connector) for c in p.contacts]
    assert len(contacts) == len(hubspot_org.people)
    assert len(hubspot_clock.sleeps) == 2 and all(s >= 7 for s in hubspot_clock.sleeps)
    assert hubspot_connector.api_calls() == _server_total(hubspot_server)


def test_429_without_retry_after_waits_for_the_rolling_window(
    hubspot_connector: HubSpotConnector, hubspot_server: SandboxServer, hubspot_clock: HubSpotClock,
) -> None:
    hubspot_server.install_faults({"rules": [
        {"kind": "rate_limit", "method": "POST", "path": "/crm/v3/objects/deals/batch/read",
         "times": 1}]})
    _read_all(hubspot_connector)
    assert hubspot_clock.sleeps and hubspot_clock.sleeps[0] >= 10


def test_5xx_and_dropped_reads_are_retried(
    hubspot_connector: HubSpotConnector, hubspot_server: SandboxServer, hubspot_org: Org,
) -> None:
    hubspot_server.install_faults({"rules": [
        {"status": 503, "method": "POST", "path": "/crm/v3/objects/contacts/search",
         "times": 1},
        {"kind": "disconnect", "method": "POST", "path": "/crm/v3/objects/deals/batch/read",
         "times": 1}]})
    contacts = [c for p in _read_all(hubspot_connector) for c in p.contacts]
    assert len(contacts) == len(hubspot_org.people)
    assert hubspot_connector.api_calls() == _server_total(hubspot_server)


def test_daily_limit_stops_with_quota_exhausted_and_no_retry(
    hubspot_connector: HubSpotConnector, hubspot_server: SandboxServer,
) -> None:
    hubspot_server.install_faults({"rules": [{"kind": "daily_limit", "times": None}]})
    with pytest.raises(QuotaExhausted, match="daily"):
        _read_all(hubspot_connector)
    assert hubspot_connector.api_calls() == _server_total(hubspot_server) == 1


def test_a_used_up_daily_allowance_stops_before_the_next_call(
    hubspot_connector: HubSpotConnector, hubspot_server: SandboxServer, hubspot_admin: HubSpotAdmin,
) -> None:
    ids = sorted(_records(hubspot_admin, "contacts"), key=int)
    hubspot_admin("POST", "/_sandbox/config", {"rate_limits": {"daily": 2},
                                               "reset_rate_limits": True})
    updates = [RecordUpdate(i, "contacts", {"score": 1}) for i in ids[:10]]
    hubspot_connector.write_fields(updates)
    hubspot_connector.write_fields(updates)
    with pytest.raises(QuotaExhausted, match="2/2"):
        hubspot_connector.write_fields(updates)
    # Two calls answered; the second said none are left, so no third call was sent.
    assert hubspot_connector.api_calls() == _server_total(hubspot_server) == 2


def test_the_emulators_own_rate_limit_is_paced_not_hit(
    hubspot_connector: HubSpotConnector, hubspot_server: SandboxServer, hubspot_admin: HubSpotAdmin,
    hubspot_clock: HubSpotClock,
) -> None:
    hubspot_admin("POST", "/_sandbox/config", {"rate_limits": {"per_10s": 6},
                                               "reset_rate_limits": True})
    ids = sorted(_records(hubspot_admin, "contacts"), key=int)
    updates = [RecordUpdate(i, "contacts", {"score": n}) for n, i in enumerate(ids)]
    results = hubspot_connector.write_fields(updates)
    assert all(r.ok for r in results)
    # 3 batches of 100 fit; more calls would be 429s the pacing avoided.
    for _ in range(4):
        hubspot_connector.write_fields(updates[:100])
    assert hubspot_connector.api_calls() == _server_total(hubspot_server) == 7
    assert hubspot_clock.sleeps  # it waited for the window instead


def test_bad_token_is_an_auth_error(hubspot_server: SandboxServer, hubspot_fieldmap: Any) -> None:
    connector = HubSpotConnector(hubspot_fieldmap, token="pat-wrong",
                                 base_url=hubspot_server.base_url, sleep=lambda s: None)
    with pytest.raises(AuthError) as raised:
        connector.check()
    assert "401" in str(raised.value) and "INVALID_AUTHENTICATION" in str(raised.value)
    assert raised.value.__cause__ is not None
    assert connector.api_calls() == 1


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_refused_connection_names_host_port_and_cause(hubspot_fieldmap: Any) -> None:
    port = _free_port()  # bound then released: nothing listens there
    connector = HubSpotConnector(hubspot_fieldmap, token="pat-x",
                                 base_url=f"http://127.0.0.1:{port}",
                                 policy=RetryPolicy(attempts=2), sleep=lambda s: None)
    with pytest.raises(TransientError) as raised:
        list(connector.read(STREAM, datetime(2026, 1, 1, tzinfo=UTC)))
    # An incremental read searches changed deals first.
    assert str(raised.value) == f"HubSpot search deals: connection refused to 127.0.0.1:{port}"
    assert connector.api_calls() == 2  # retried through the one policy, then given up


def test_each_retry_is_logged_and_reported_as_it_waits(
    hubspot_server: SandboxServer, hubspot_fieldmap: Any, hubspot_clock: HubSpotClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Retries go through crmsync.retry's policy; each is logged (op and cause) before its wait."""
    told: list[tuple[str, float]] = []
    connector = HubSpotConnector(
        hubspot_fieldmap, token=hubspot_server.token, base_url=hubspot_server.base_url,
        policy=RetryPolicy(attempts=4, budget_s=600), sleep=hubspot_clock.sleep,
        clock=hubspot_clock, on_retry=lambda error, wait: told.append((str(error), wait)))
    hubspot_server.install_faults({"rules": [
        {"method": "POST", "path": "/crm/v3/properties/contacts/batch/read", "times": 2,
         "status": 503}]})
    with caplog.at_level("INFO", logger="crmsync.connectors.hubspot"):
        connector.check()
    connector.close()
    assert all(text.startswith("HubSpot read contacts properties: HTTP 503") for text, _ in told)
    assert len(told) == 2 and [w for _, w in told] == hubspot_clock.sleeps
    logged = [r.getMessage() for r in caplog.records if r.name == "crmsync.connectors.hubspot"]
    assert len([m for m in logged if "retrying in" in m]) == 2
    assert all(m.startswith("HubSpot read contacts properties: HTTP 503") for m in logged
               if "retrying in" in m)


def test_a_base_url_that_answers_404_is_a_config_error(
    hubspot_server: SandboxServer, hubspot_fieldmap: Any,
) -> None:
    """A wrong path prefix is bad config (exit 2), not a transient failure (exit 4)."""
    wrong = hubspot_server.base_url + "/hubspot-api"
    connector = HubSpotConnector(hubspot_fieldmap, token=hubspot_server.token, base_url=wrong,
                                 sleep=lambda s: None)
    with pytest.raises(ConfigError) as raised:
        connector.check()
    assert "check [crm] base_url" in str(raised.value) and wrong in str(raised.value)
    assert raised.value.exit_code == 2
    assert connector.api_calls() == 1  # no retries
    with pytest.raises(ConfigError, match="answered 404"):
        list(connector.read(STREAM, None))


def test_a_server_that_is_not_hubspot_is_a_config_error(hubspot_fieldmap: Any) -> None:
    import http.server
    import threading

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>Not Found</html>")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        connector = HubSpotConnector(hubspot_fieldmap, token="pat-x", base_url=url,
                                     sleep=lambda s: None)
        with pytest.raises(ConfigError, match="check \\[crm\\] base_url"):
            connector.check()
        connector.close()
    finally:
        server.shutdown()
        server.server_close()


def test_vendor_errors_are_translated_without_bodies() -> None:
    from hubspot.crm.objects.tasks.exceptions import ApiException as TasksApiException
    from hubspot.crm.properties.exceptions import ForbiddenException
    from urllib3.exceptions import ProtocolError

    secret = '{"status":"error","message":"ana@example.com is bad","category":"VALIDATION_ERROR",' \
             '"correlationId":"c-1","errors":[{"code":"INVALID_EMAIL"}]}'
    bad = TasksApiException(status=400, reason="Bad Request")
    bad.body = secret
    error = translate("batch create tasks", bad)
    assert isinstance(error, CrmRequestError)
    assert "ana@example.com" not in str(error)
    assert "VALIDATION_ERROR" in str(error) and "c-1" in str(error)
    assert isinstance(translate("x", ForbiddenException(status=403, reason="Forbidden")), AuthError)
    assert isinstance(translate("x", ProtocolError("reset")), TransientError)
    limited = TasksApiException(status=429, reason="Too Many Requests")
    limited.body = '{"status":"error","errorType":"RATE_LIMIT","policyName":"SECONDLY"}'
    waited = translate("search contacts", limited)
    assert isinstance(waited, TransientError) and waited.retry_after == 1.0
    limited.body = limited.body.replace("SECONDLY", "DAILY")
    assert isinstance(translate("search contacts", limited), QuotaExhausted)
    assert translate("x", ValueError("ours")) is None


def test_every_hubspot_package_exception_is_translated() -> None:
    """Each generated package has its own ApiException family, with no common base."""
    import importlib

    import hubspot

    root = Path(hubspot.__file__).parent
    modules = sorted(".".join(p.relative_to(root.parent).with_suffix("").parts)
                     for p in root.rglob("exceptions.py"))
    assert len(modules) > 40
    expected = {401: AuthError, 403: AuthError, 404: CrmRequestError, 409: CrmRequestError,
                429: TransientError, 500: TransientError, 503: TransientError}
    for name in modules:
        module = importlib.import_module(name)
        if not hasattr(module, "ApiException"):
            continue  # hubspot.exceptions: the client's own helpers, not HTTP errors
        for status, kind in expected.items():
            error = translate("op", module.ApiException(status=status, reason="x"))
            assert isinstance(error, kind), (name, status)


# -- setup and check --------------------------------------------------------------------------


def test_setup_is_idempotent_and_check_names_missing_properties(
    hubspot_bare_server: SandboxServer, hubspot_fieldmap: Any,
) -> None:
    connector = HubSpotConnector(hubspot_fieldmap, token=hubspot_bare_server.token,
                                 base_url=hubspot_bare_server.base_url, sleep=lambda s: None)
    with pytest.raises(ConfigError, match="crmsync setup") as raised:
        connector.check()
    assert "crmsync_status" in str(raised.value) and "crmsync_status_override" in str(raised.value)
    assert "tasks.crmsync_task_key" in str(raised.value)
    first = connector.setup()
    assert set(first.created) == {*hubspot_fieldmap.output_fields(), "crmsync_status_override",
                                  "tasks.crmsync_task_key"}
    assert first.existing == []
    before = connector.api_calls()
    second = connector.setup()
    assert second.created == [] and set(second.existing) == set(first.created)
    assert connector.api_calls() == before + 2  # one read per object type, nothing created
    connector.check()
    assert connector.api_calls() == before + 4  # check: contact and task properties, one each
    assert connector.api_calls() == _server_total(hubspot_bare_server)


def test_write_to_a_deleted_property_stops_with_a_setup_hint_not_a_bisection(
    hubspot_connector: HubSpotConnector, hubspot_server: SandboxServer, hubspot_admin: HubSpotAdmin,
) -> None:
    ids = sorted(_records(hubspot_admin, "contacts"), key=int)[:50]
    # An admin deletes one of crmsync's properties in the portal, mid-life.
    HubSpot(access_token=hubspot_server.token, host=hubspot_server.base_url).crm.properties \
        .core_api.archive("contacts", "crmsync_reason")
    hubspot_server.reset()
    with pytest.raises(ConfigError, match="crmsync setup"):
        hubspot_connector.write_fields(
            [RecordUpdate(i, "contacts", {"reason": "Fit"}) for i in ids])
    # One refused batch, not 2N-1 calls halving it down to single records.
    assert _server_total(hubspot_server) == 1
