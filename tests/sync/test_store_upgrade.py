"""A store upgraded to schema 3 fills every contact's owner and lead source on the next run.

Schema 3 added the two columns the report's breakdowns read. Rows saved before hold neither, and
a contact the CRM has not changed since would never be decided again by an incremental run, so
the report would show it under "(none)" forever. The upgrade makes the next run read and decide
every contact once: it saves both, and writes nothing to the CRM (the decisions are the same).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from crmsync.errors import ExitCode
from crmsync.state import StateStore

from .conftest import Crm


def _as_schema_2(state_url: str) -> None:
    """Make the store what crmsync wrote before schema 3 (as its migration test does)."""
    with StateStore.open(state_url) as store, store._engine.begin() as conn:
        for column in ("owner_id", "lead_source"):
            conn.execute(sa.text(f'ALTER TABLE crmsync_contacts DROP COLUMN "{column}"'))
        conn.execute(sa.text("DELETE FROM crmsync_schema_version"))
        conn.execute(sa.text("INSERT INTO crmsync_schema_version (version) VALUES (2)"))


def _breakdowns(state_url: str) -> dict[str, tuple[str | None, str | None]]:
    with StateStore.open(state_url) as store:
        return {r.record_id: (r.owner_id, r.lead_source) for r in store.report_rows()}


def test_the_run_after_an_upgrade_decides_everyone_once_and_writes_nothing(crm: Crm) -> None:
    crm.setup()
    now = datetime.now(UTC) + timedelta(hours=1)  # noqa: TID251 - read once, then fixed
    first = crm.run(full=True, now=now)
    assert first.exit_code == ExitCode.OK, first.error
    state_url = f"sqlite:///{(crm.workdir / 'state.db').as_posix()}"
    filled = _breakdowns(state_url)
    assert sum(owner is not None for owner, _ in filled.values()) > len(filled) // 2
    crm.run(now=now)  # settles the echo of the first run's own writes

    _as_schema_2(state_url)
    assert set(_breakdowns(state_url).values()) == {(None, None)}  # what the report showed
    crm.server.reset()
    upgraded = crm.run(now=now)
    assert upgraded.exit_code == ExitCode.OK, upgraded.error
    assert all(scope.startswith("full: store upgraded") for scope in upgraded.scope.values())
    assert upgraded.counts["evaluated"] == len(filled)
    assert crm.server.call_counts()["writes"] == 0
    assert _breakdowns(state_url) == filled

    # Once: the run after that is incremental again and reads nothing new.
    crm.server.reset()
    again = crm.run(now=now)
    assert not any(scope.startswith("full") for scope in again.scope.values())
    assert again.counts.get("evaluated", 0) == 0
