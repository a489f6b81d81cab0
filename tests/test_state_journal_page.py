"""``journal_page`` stores exactly what ``journal_fields`` then ``task_intents`` store."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from crmsync.model import TaskCreate, TaskSpec
from crmsync.state import StateStore
from pgschema import postgres_url

T0 = datetime(2026, 11, 23, 14, 23, 1, 123456, tzinfo=UTC)
STREAM = "hubspot:contacts"


@pytest.fixture(params=["sqlite", "postgresql"])
def urls(request: pytest.FixtureRequest, tmp_path) -> Iterator[tuple[str, str]]:
    """Two fresh stores on one backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/apart.db", f"sqlite:///{tmp_path}/together.db"
        return
    first, second = postgres_url(), postgres_url()
    try:
        yield next(first), next(second)
    finally:  # drops both schemas
        first.close()
        second.close()


def _create(contact: str, purpose: str = "follow_up") -> TaskCreate:
    spec = TaskSpec(purpose=purpose, subject="Call", body="Call them", due=date(2026, 11, 25))
    return TaskCreate(contact, "contact", f"{contact}:{purpose}", spec)


WRITES = [("1", "contact", {"status": "lead"}, {"status": "prospect", "score": 40}),
          ("2", "contact", {}, {"status": "lead", "evaluated_at": T0})]


def _history(url: str, *, together: bool, connection: str) -> tuple[object, ...]:
    """Two pages journaled either way (the second re-plans a closed and an open key)."""
    # A fixed clock: the two ways read it a different number of times.
    with StateStore.open(url, connection=connection, clock=lambda: T0) as store:
        run_id = store.start_run("hubspot", "run", started_at=T0)
        answers: list[object] = []
        for creates in ([_create("1"), _create("2", "nurture")],
                        [_create("1"), _create("2", "nurture"), _create("3")]):
            if together:
                answers.append(store.journal_page(run_id, STREAM, WRITES, creates))
            else:
                answers.append((store.journal_fields(run_id, STREAM, WRITES),
                                store.task_intents(run_id, STREAM, creates)))
            if len(answers) == 1:
                store.task_created("1:follow_up", "T-1")
                store.task_closed("2:nurture")
        entries = [dataclasses.replace(e, run_id="") for e in store.journal_for_run(run_id)]
        answers = [(ids, [dataclasses.replace(r, run_id="") for r in records])
                   for ids, records in answers]  # type: ignore[misc]
        tasks = [dataclasses.replace(t, run_id="") if t else None
                 for t in (store.task_lookup(c, k) for c, k in
                           (("1", "1:follow_up"), ("2", "2:nurture"), ("3", "3:follow_up")))]
        intents = [(r.key, r.state) for r in store.pending_task_intents(STREAM)]
        return answers, entries, tasks, intents


@pytest.mark.parametrize("connection", ["default", "eu"])
def test_journal_page_stores_what_the_two_calls_store(urls: tuple[str, str],
                                                      connection: str) -> None:
    apart = _history(urls[0], together=False, connection=connection)
    together = _history(urls[1], together=True, connection=connection)
    assert together == apart
    answers, entries, _, _ = together
    # The field writes come first in the journal, then the page's task creates.
    assert [e.kind for e in entries][:4] == ["fields", "fields", "task_create", "task_create"]
    assert answers[0][0] == [entries[0].id, entries[1].id]  # type: ignore[index]


def test_journal_page_with_nothing_writes_nothing(tmp_path) -> None:
    with StateStore.open(f"sqlite:///{tmp_path}/state.db") as store:
        run_id = store.start_run("hubspot", "run", started_at=T0)
        assert store.journal_page(run_id, STREAM, [], []) == ([], [])
        assert store.journal_page(run_id, STREAM, WRITES, [])[1] == []
        assert [r.key for r in store.journal_page(run_id, STREAM, [], [_create("1")])[1]] == [
            "1:follow_up"]
        assert [e.kind for e in store.journal_for_run(run_id)] == [
            "fields", "fields", "task_create"]
