"""The state store's report columns: owner and lead source, and the schema 2 -> 3 migration."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from crmsync.report import current_funnel
from crmsync.state import SCHEMA_VERSION, StateStore
from pgschema import state_url_for

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
STREAM = "hubspot:contacts"


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from state_url_for(request.param, tmp_path)


def _row(record_id: str, status: str, since: datetime, **extra: object) -> dict[str, object]:
    return {"record_id": record_id, "status": status, "miss_type": "none", "score": 42.0,
            "status_since": since, "ruleset_hash": "h", "modified_at": T0, **extra}


def test_a_schema_2_store_is_migrated_in_place_and_keeps_its_rows(state_url: str) -> None:
    assert SCHEMA_VERSION == 3
    with StateStore.open(state_url) as store:
        run = store.start_run("hubspot", "full", started_at=T0)
        store.save_contact_states(run, STREAM, [_row("1", "lead", T0), _row("2", "prospect", T0)])
        store.finish_run(run, "ok", 0, {"counts": {"read": 2}, "statuses": {"lead": 1}})
        # Make it what crmsync wrote before the report's columns: schema version 2.
        with store._engine.begin() as conn:
            for column in ("owner_id", "lead_source"):
                conn.execute(sa.text(f'ALTER TABLE crmsync_contacts DROP COLUMN "{column}"'))
            conn.execute(sa.text("DELETE FROM crmsync_schema_version"))
            conn.execute(sa.text("INSERT INTO crmsync_schema_version (version) VALUES (2)"))
    with StateStore.open(state_url) as store:
        with store._engine.connect() as conn:
            version = conn.execute(sa.text("SELECT max(version) FROM crmsync_schema_version"))
            assert version.scalar() == 3
        rows = {r.record_id: r for r in store.report_rows()}
        assert {k: (r.status, r.score, r.owner_id, r.lead_source) for k, r in rows.items()} == {
            "1": ("lead", 42.0, None, None), "2": ("prospect", 42.0, None, None)}
        assert store.get_run(run).status == "ok"
        # The next decision fills the new columns in.
        store.save_contact_states(run, STREAM, [_row("1", "lead", T0, owner_id="77",
                                                     lead_source="Web")])
        one = next(r for r in store.report_rows() if r.record_id == "1")
        assert (one.owner_id, one.lead_source, one.stream) == ("77", "Web", STREAM)
    with StateStore.open(state_url) as store:  # opening again changes nothing
        assert len(store.report_rows()) == 2


def test_current_funnel_counts_owners_sources_and_stuck(tmp_path: Path) -> None:
    now = T0 + timedelta(days=100)
    with StateStore.open(f"sqlite:///{tmp_path / 'state.db'}") as store:
        run = store.start_run("hubspot", "full", started_at=T0)
        store.save_contact_states(run, STREAM, [
            # 100 days a lead (limit 90): stuck. 44 days a prospect (limit 45): not yet.
            _row("a", "lead", T0, owner_id="7", lead_source="Web"),
            _row("b", "prospect", now - timedelta(days=44), owner_id="7", lead_source="Web"),
            # 31 days an opportunity (limit 30): stuck; no owner in the CRM.
            _row("c", "opportunity", now - timedelta(days=31), lead_source="Trade Show"),
            # Disqualified for 100 days: never stuck.
            _row("d", "disqualified", T0, owner_id="8", score=95.0),
        ])
        store.finish_run(run, "ok", 0, {"counts": {"read": 4}, "statuses": {"lead": 1}})
        current = current_funnel(store, store.runs(), now)
    assert current["stuck"] == {"lead": 1, "opportunity": 1}
    assert [(s["record_id"], s["days_in_stage"], s["threshold_days"])
            for s in current["stuck_contacts"]["listed"]] == [("a", 100, 90), ("c", 31, 30)]
    owners = {o["owner_id"]: (o["total"], o["stuck"]) for o in current["by_owner"]}
    assert owners == {"7": (2, 1), "(none)": (1, 1), "8": (1, 0)}
    sources = {s["lead_source"]: s["total"] for s in current["by_source"]}
    assert sources == {"Web": 2, "Trade Show": 1, "(none)": 1}
    assert [(b["label"], b["contacts"]) for b in current["score_distribution"]] == [
        ("40–49", 3), ("50–59", 0), ("60–69", 0), ("70–79", 0), ("80–89", 0), ("90–100", 1)]
    lead = next(t for t in current["time_in_stage"] if t["stage"] == "lead")
    assert (lead["contacts"], lead["median_days"], lead["stuck_after_days"]) == (1, 100.0, 90)
