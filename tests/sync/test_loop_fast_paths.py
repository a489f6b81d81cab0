"""The sync loop's fast paths decide exactly what the plain code they replaced decided.

``plan_contact`` skips ``same_value`` for equal plain values and the task work of contacts with
no task; ``Tally`` builds a sample's text only when its rank has room; ``slot_init`` installs a
cheaper ``__init__``. Each is checked against the plain version (kept here as the reference).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import pickle
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from crmsync.connectors.base import Page, RecordUpdate, WriteResult
from crmsync.model import Contact, Decision, TaskClose, TaskCreate, TaskSpec
from crmsync.plan import (
    ContactPlan,
    OpenTask,
    PlanOptions,
    plan_contact,
    same_value,
    task_key,
)
from crmsync.sync.summary import RunSummary
from crmsync.sync.tally import Tally

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _reference_plan(contact: Contact, decision: Decision, *, now: datetime,
                    open_tasks: Any = None, closed_counts: Any = None,
                    options: PlanOptions | None = None) -> ContactPlan:
    """plan_contact as it was before its fast paths (the plain diff)."""
    options = options or PlanOptions()
    open_tasks = open_tasks or {}
    wanted = {"status": decision.status, "miss_type": decision.miss_type,
              "score": decision.score, "reason": decision.reason[:255],
              "ruleset": decision.ruleset_version or decision.ruleset_hash[:12]}
    if decision.extra:
        wanted.update(decision.extra)
    stored = contact.outputs
    updates = {n: v for n, v in wanted.items() if not same_value(stored.get(n), v)}
    if not options.restamp and set(updates) == {"ruleset"}:
        updates = {}
    if updates:
        updates["evaluated_at"] = now.astimezone(UTC)
    if "status" in updates or (stored.get("status_since") is None and decision.status):
        updates["status_since"] = now.astimezone(UTC)
        updates.setdefault("evaluated_at", now.astimezone(UTC))
    previous = {name: stored.get(name) for name in updates}
    closed_counts = closed_counts or {}
    open_purposes = {task.purpose for task in open_tasks.values()}
    wanted_purposes = {spec.purpose for spec in decision.tasks}
    creates = [TaskCreate(contact.id, contact.object_type,
                          task_key(contact.id, s.purpose, closed_counts.get(s.purpose, 0)),
                          s, contact.owner_id)
               for s in decision.tasks if s.purpose not in open_purposes]
    closes = []
    if options.close_obsolete_tasks:
        closes = [TaskClose(contact.id, contact.object_type, key, task.task_id)
                  for key, task in sorted(open_tasks.items())
                  if task.purpose not in wanted_purposes
                  and task.purpose not in options.keep_open_purposes]
    return ContactPlan(contact, decision, updates, previous, tuple(creates), tuple(closes))


# Stored spellings a CRM hands back, and decided values, crossed with each other.
STORED = [None, "", "prospect", "lead", 40, "40", "40.0", 40.0, 41, True, "true", False,
          NOW, NOW.replace(tzinfo=None), "2026-11-23T09:00:00Z", float("nan"), "x" * 300]
WANTED = [None, "", "prospect", 40, 40.0, True, False, NOW, float("nan"), "x" * 300, 0]


def _task(purpose: str) -> TaskSpec:
    return TaskSpec(purpose=purpose, subject="Call", body="Call them", due=date(2026, 11, 24))


def _assert_same_plan(fast: ContactPlan, plain: ContactPlan) -> None:
    assert list(fast.updates.items()) == list(plain.updates.items())  # order too
    assert list(fast.previous.items()) == list(plain.previous.items())
    assert fast.task_creates == plain.task_creates
    assert fast.task_closes == plain.task_closes
    assert (fast.contact, fast.decision) == (plain.contact, plain.decision)


@pytest.mark.parametrize("restamp", [False, True])
def test_plan_contact_equals_the_plain_diff_on_every_pair_of_spellings(restamp: bool) -> None:
    options = PlanOptions(restamp=restamp)
    for stored, wanted in itertools.product(STORED, WANTED):
        outputs = {"status": "prospect", "miss_type": stored, "score": stored,
                   "reason": stored, "ruleset": "v1", "icp_tier": stored}
        decision = Decision("1", "prospect", "none", 40 if wanted is None else wanted,  # type: ignore[arg-type]
                            "r" if not isinstance(wanted, str) else wanted,
                            ruleset_version="v1", extra={"icp_tier": wanted})
        contact = Contact("1", {}, outputs)
        _assert_same_plan(plan_contact(contact, decision, now=NOW, options=options),
                          _reference_plan(contact, decision, now=NOW, options=options))


def test_plan_contact_equals_the_plain_diff_with_tasks_extras_and_clashing_names() -> None:
    open_tasks = {"k2": OpenTask("k2", "call", "T2"), "k1": OpenTask("k1", "old", "T1")}
    cases = [
        (Decision("1", "lead", "soft", 10, "r", tasks=(_task("call"), _task("demo")),
                  ruleset_hash="h" * 64), open_tasks, {"demo": 2}),
        (Decision("1", "lead", "none", 10, "r"), open_tasks, None),
        (Decision("1", "lead", "none", 10, "r", tasks=(_task("demo"),)), None, None),
        # A declared output named like a built-in one: it replaces the value in place.
        (Decision("1", "lead", "none", 10, "r", extra={"score": 11, "tier": "A"}), None, None),
        (Decision("1", "", "none", 10, "r"), None, None),
    ]
    stored_sets = [{}, {"status": "lead", "miss_type": "none", "score": 10, "reason": "r",
                        "ruleset": "hhhhhhhhhhhh", "status_since": NOW - timedelta(days=3)}]
    for (decision, tasks, closed), stored in itertools.product(cases, stored_sets):
        for options in (PlanOptions(), PlanOptions(close_obsolete_tasks=False),
                        PlanOptions(keep_open_purposes=frozenset({"old"}))):
            contact = Contact("1", {}, stored, "Lead", NOW, "005")
            _assert_same_plan(
                plan_contact(contact, decision, now=NOW, open_tasks=tasks,
                             closed_counts=closed, options=options),
                _reference_plan(contact, decision, now=NOW, open_tasks=tasks,
                                closed_counts=closed, options=options))


def test_tally_rule_hits_count_every_fired_rule_in_first_fired_order() -> None:
    fired = [("b", "a"), ("c",), ("b", "a"), ("d", "d"), (), ("a", "e")]
    tally = Tally(RunSummary("r", "hubspot", "run", NOW), NOW, frozenset(), 5, rules=["z"])
    plain: Counter[str] = Counter({"z": 0})
    for index, rules in enumerate(fired):
        decision = Decision(str(index), "lead", "none", 1, "r", rules=rules)
        tally.add("s", plan_contact(Contact(str(index), {}), decision, now=NOW), by_rules=False)
        plain.update(rules)
    tally.finish()
    assert list(tally.summary.rule_hits.items()) == list(plain.items())


def test_tally_keeps_the_first_samples_of_each_rank() -> None:
    tally = Tally(RunSummary("r", "hubspot", "run", NOW), NOW, frozenset(), 2)
    stored = {"status": "lead", "miss_type": "none", "score": 5, "reason": "r",
              "ruleset": "v", "status_since": NOW}
    for index in range(5):
        moved = Decision(f"m{index}", "prospect", "none", 5, "r", ruleset_version="v")
        scored = Decision(f"s{index}", "lead", "none", 6, "r", ruleset_version="v")
        for decision in (scored, moved):
            contact = Contact(decision.contact_id, {}, stored)
            tally.add("s", plan_contact(contact, decision, now=NOW), by_rules=False)
    tally.finish()
    assert [(s["id"], s["transition"]) for s in tally.summary.samples] == [
        ("m0", "lead → prospect"), ("m1", "lead → prospect")]
    assert tally._samples[2][0]["transition"] == "lead: score 5 → 6 changed"
    assert len(tally._samples[2]) == 2


@pytest.mark.parametrize("make", [
    lambda: Contact("1", {"a": 1}, {"status": "lead"}, "Lead", NOW, "005"),
    lambda: Contact("1", {}),
    lambda: WriteResult("1", False, error_code="E", retryable=True),
    lambda: RecordUpdate("1", "Lead", {"status": "lead"}),
    lambda: Page("s", [Contact("1", {})], related=True),
    lambda: TaskClose("1", "Lead", "k", "T"),
    lambda: ContactPlan(Contact("1", {}), Decision("1", "lead", "none", 1, "r"), {}, {}),
])
def test_slot_init_records_stay_frozen_comparable_and_copyable(make: Any) -> None:
    record, twin = make(), make()
    cls = type(record)
    assert record == twin and repr(record) == repr(twin)
    values = {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}
    assert cls(**values) == record  # every field stored, by keyword too
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.__setattr__(dataclasses.fields(record)[0].name, "x")
    assert pickle.loads(pickle.dumps(record)) == record
    assert copy.deepcopy(record) == record
    assert dataclasses.replace(record) == record
    if cls in (WriteResult, TaskClose):  # the others hold dicts or lists
        assert hash(record) == hash(twin)


def test_slot_init_keeps_defaults_and_a_fresh_default_per_instance() -> None:
    first, second = Contact("1", {}), Contact("2", {})
    assert first.outputs == {} and first.outputs is not second.outputs
    assert (first.object_type, first.modified_at, first.owner_id) == ("contact", None, None)
    result = WriteResult("1", True)
    assert (result.error_code, result.message, result.retryable, result.task_id,
            result.key) == (None, None, False, None, None)
    with pytest.raises(TypeError):
        Contact("1")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        WriteResult("1", True, nope=1)  # type: ignore[call-arg]


def test_bulk_csv_lines_from_one_writer_equal_one_writer_per_line() -> None:
    from crmsync.connectors.salesforce.bulk import _csv_line, _CsvLines

    rows = [["001", "plain", ""], ["002", 'quote "this"', "a,b"], ["003", "two\nlines", "é ü"],
            ["004", " padded ", "#N/A"], ["005", "", ""], ["006", "\r", "x" * 500]]
    line_of = _CsvLines()
    assert [line_of(cells) for cells in rows] == [_csv_line(cells) for cells in rows]
