"""The state store's shadow comparisons, on SQLite and PostgreSQL: rows, sums, the migration."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from crmsync.state import RUN_PART, SCHEMA_VERSION, StateStore
from pgschema import state_url_for

T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from state_url_for(request.param, tmp_path)


def comparison(contacts: int, moved: int, *, candidate: str = "h1") -> dict[str, Any]:
    """A comparison of ``contacts`` contacts of which ``moved`` go lead → prospect."""
    return {
        "candidate_version": "candidate-1", "candidate_hash": candidate, "contacts": contacts,
        "status_matrix": {"lead": {"lead": contacts - moved, "prospect": moved}},
        "miss_matrix": {"none": {"none": contacts}}, "score_shift": 2.5 * contacts,
        "hits_production": {"qual_icp_fit": contacts - moved},
        "hits_candidate": {"qual_icp_fit": contacts},
        "moved": moved, "movers": [{"id": f"c{i}", "status": "lead → prospect",
                                    "miss_type": "none → none", "score": "10 → 30"}
                                   for i in range(moved)],
    }


def test_parts_add_up_and_a_part_recorded_again_replaces_itself(state_url: str) -> None:
    with StateStore.open(state_url) as store:
        run = store.start_run("hubspot", "run", started_at=T0)
        store.record_shadow(run, RUN_PART, comparison(4, 1))
        store.record_shadow(run, 0, comparison(10, 3))
        store.record_shadow(run, 1, comparison(6, 0))
        store.record_shadow(run, 1, comparison(7, 2))  # shard 1 run again: replaces its row
        total = store.shadow_comparison(run)
        assert total is not None
        assert total["contacts"] == 4 + 10 + 7 and total["moved"] == 1 + 3 + 2
        assert total["status_matrix"] == {"lead": {"lead": 3 + 7 + 5, "prospect": 6}}
        assert total["score_shift"] == 2.5 * 21
        assert total["hits_candidate"] == {"qual_icp_fit": 21}
        assert len(total["movers"]) == 6
        assert store.shadow_comparison(store.start_run("hubspot", "run")) is None


def test_shadow_runs_are_this_connections_newest_first(state_url: str) -> None:
    with StateStore.open(state_url) as store:
        emea = store.scoped("emea")
        runs = []
        for hours in range(3):
            run = store.start_run("hubspot", "run", started_at=T0 + timedelta(hours=hours))
            store.record_shadow(run, RUN_PART, comparison(5 + hours, hours,
                                                          candidate=f"h{hours}"))
            runs.append(run)
        other = emea.start_run("hubspot", "run", started_at=T0 + timedelta(hours=9))
        emea.record_shadow(other, RUN_PART, comparison(50, 5))
        store.start_run("hubspot", "run", started_at=T0 + timedelta(hours=8))  # no candidate

        latest = store.shadow_runs(2)
        assert [r.run_id for r in latest] == [runs[2], runs[1]]
        assert [r.comparison["contacts"] for r in latest] == [7, 6]
        assert latest[0].candidate_hashes == ("h2",)
        assert [r.run_id for r in emea.shadow_runs(10)] == [other]


def test_a_schema_2_store_is_upgraded_in_place(state_url: str) -> None:
    with StateStore.open(state_url) as store:
        run = store.start_run("hubspot", "run", started_at=T0)
        store.finish_run(run, "ok", 0, {"read": 3})
        # Make it what crmsync wrote before shadow runs: no table, schema version 2.
        with store._engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE crmsync_shadow"))
            conn.execute(sa.text("DELETE FROM crmsync_schema_version"))
            conn.execute(sa.text("INSERT INTO crmsync_schema_version (version) VALUES (2)"))
    with StateStore.open(state_url) as store:
        with store._engine.connect() as conn:
            version = conn.execute(sa.text("SELECT max(version) FROM crmsync_schema_version"))
            assert version.scalar() == SCHEMA_VERSION == 3
        assert [r.id for r in store.runs()] == [run]
        store.record_shadow(run, RUN_PART, comparison(3, 1))
        assert store.shadow_comparison(run)["contacts"] == 3  # type: ignore[index]
    with StateStore.open(state_url) as store:  # opening again changes nothing
        assert [r.run_id for r in store.shadow_runs()] == [run]
