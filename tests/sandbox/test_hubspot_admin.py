"""HubSpot emulator: admin extras (records, user edits, config) and persistence."""

from __future__ import annotations

import json
from pathlib import Path

from crmsync.sandbox.hubspot import HubSpotEmulator, RateLimits
from crmsync.sandbox.server import SandboxServer


def test_records_show_all_properties_and_associations(hubspot_http) -> None:
    status, body, _ = hubspot_http("GET", "/_sandbox/records/deals")
    assert status == 200
    deal = body["results"][0]
    assert {"dealname", "dealstage", "hs_lastmodifieddate", "createdate"} <= set(deal["properties"])
    assert deal["associations"]["contacts"][0]["typeIds"] == [3]
    assert hubspot_http("GET", "/_sandbox/calls")[1]["total"] == 0  # admin calls are not counted


def test_user_edit_bumps_lastmodifieddate_and_may_move_lifecycle_back(
    hubspot_http, hubspot_clock
) -> None:
    hubspot_clock.advance(120)
    status, body, _ = hubspot_http(
        "PATCH", "/_sandbox/records/contacts/101",
        {"properties": {"lifecyclestage": "subscriber", "notes_last_updated": "2026-11-23"}},
    )
    assert status == 200
    _, read, _ = hubspot_http(
        "GET", "/crm/v3/objects/contacts/101?properties=lifecyclestage,notes_last_updated")
    assert read["properties"]["lifecyclestage"] == "subscriber"
    assert read["updatedAt"] == "2026-11-23T01:02:00.000Z"
    assert hubspot_http("GET", "/_sandbox/calls")[1]["by_endpoint"] == {
        "GET /crm/v3/objects/contacts/{id}": 1}


def test_config_knobs_round_trip(hubspot_http) -> None:
    status, config, _ = hubspot_http("POST", "/_sandbox/config", {
        "rate_limits": {"per_10s": 190, "search_per_s": 5, "daily": 625000},
        "search_lag_seconds": 2.5, "lifecycle_forward_only": False})
    assert status == 200
    assert config == {
        "rate_limits": {"per_10s": 190, "search_per_s": 5, "daily": 625000, "enabled": True,
                        "retry_after": True, "window_s": 10.0},
        "search_lag_seconds": 2.5, "lifecycle_forward_only": False,
    }
    assert hubspot_http("GET", "/_sandbox/config")[1] == config
    assert hubspot_http("POST", "/_sandbox/config", {"rate_limits": {"per_10s": 0}})[0] == 400


def test_state_survives_a_restart(tmp_path: Path, hubspot_org, hubspot_clock) -> None:
    state = tmp_path / "hubspot.json"
    first = HubSpotEmulator(hubspot_org, clock=hubspot_clock,
                            rate_limits=RateLimits(enabled=False))
    first.account.registries["contacts"].create_group({"name": "crmsync", "label": "CRM Sync"})
    first.user_edit("contacts", "101", {"jobtitle": "Persisted"})
    with SandboxServer(first, state_file=state):
        pass
    second = HubSpotEmulator(clock=hubspot_clock)
    second.restore(json.loads(state.read_text("utf-8")))  # what SandboxServer does on start
    assert second.records("contacts") == first.records("contacts")
    assert second.records("deals") == first.records("deals")
    assert "crmsync" in second.account.registries["contacts"].groups
    assert second.account.new_id() == first.account.new_id()
    assert second.rate_limits.enabled is False
