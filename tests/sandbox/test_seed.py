"""Seeded history: realistic sub-hour timestamps, the same for the same seed (#13.10)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from crmsync.sandbox.seed import Org, generate_org

HUBSPOT_ANCHOR = datetime(2026, 11, 23, tzinfo=UTC)  # as in conftest.py
HttpCall = Callable[..., tuple[int, Any, dict[str, str]]]


def _stamps(org: Org) -> list[datetime]:
    out: list[datetime] = []
    for person in org.people:
        out += [person.created_at, person.modified_at]
        out += [s for s in (person.last_activity_at, person.last_contacted_at) if s is not None]
        out += [d.close_date for d in person.deals if d.close_date <= org.anchor]
    return out


def _on_the_hour(moment: datetime) -> bool:
    return moment.minute == 0 and moment.second == 0


def test_seeded_activity_stamps_are_not_on_whole_hours() -> None:
    org = generate_org(400, 11, HUBSPOT_ANCHOR)
    activity = [p.last_activity_at for p in org.people if p.last_activity_at is not None]
    assert len(activity) > 300
    # Second-level jitter: almost none on the hour, and every second of a minute occurs.
    assert sum(map(_on_the_hour, activity)) < len(activity) // 20
    assert len({moment.second for moment in activity}) >= 55
    # Nothing else lands on whole hours either (created, contacted, closed deals).
    stamps = _stamps(org)
    assert sum(map(_on_the_hour, stamps)) < len(stamps) // 20
    # And no seeded event lies after the seed's "now".
    assert max(stamps) <= org.anchor


def test_the_jitter_is_deterministic_per_seed() -> None:
    assert _stamps(generate_org(200, 4, HUBSPOT_ANCHOR)) == _stamps(
        generate_org(200, 4, HUBSPOT_ANCHOR))
    assert _stamps(generate_org(200, 4, HUBSPOT_ANCHOR)) != _stamps(
        generate_org(200, 5, HUBSPOT_ANCHOR))


def test_served_activity_stamps_carry_the_jitter(hubspot_http: HttpCall) -> None:
    status, body, _ = hubspot_http("GET", "/_sandbox/records/contacts")
    assert status == 200
    stamps = [r["properties"]["notes_last_updated"] for r in body["results"]
              if r["properties"].get("notes_last_updated")]
    assert len(stamps) > 100
    whole_hours = [s for s in stamps if s.endswith(":00:00.000Z") or s.endswith(":00:00Z")]
    assert len(whole_hours) < len(stamps) // 20
