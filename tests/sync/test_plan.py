"""plan.py: minimal diffs, stable task keys, one open task per purpose."""

from __future__ import annotations

from datetime import UTC, date, datetime

from crmsync.model import Contact, Decision, TaskSpec
from crmsync.plan import OpenTask, plan_contact, task_key

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def _decision(**overrides: object) -> Decision:
    values: dict[str, object] = {
        "contact_id": "51", "status": "prospect", "miss_type": "none", "score": 40,
        "reason": "Prospect: ICP fit; budget confirmed", "ruleset_version": "2026.11",
    }
    values.update(overrides)
    return Decision(**values)  # type: ignore[arg-type]


def _task(purpose: str) -> TaskSpec:
    return TaskSpec(purpose=purpose, subject="Call", body="Call them", due=date(2026, 11, 24))


def test_first_evaluation_writes_every_output_and_stamps_times() -> None:
    plan = plan_contact(Contact("51", {}), _decision(), now=NOW)
    assert plan.updates["status"] == "prospect"
    assert plan.updates["score"] == 40
    assert plan.updates["evaluated_at"] == NOW
    assert plan.updates["status_since"] == NOW
    assert plan.transition == ("new", "prospect")


def test_unchanged_decision_writes_nothing_even_when_the_crm_spells_values_differently() -> None:
    stored = {
        "status": "prospect", "miss_type": "none", "score": "40.0",
        "reason": "Prospect: ICP fit; budget confirmed", "ruleset": "2026.11",
        "status_since": NOW, "evaluated_at": NOW,
    }
    plan = plan_contact(Contact("51", {}, outputs=stored), _decision(), now=NOW)
    assert plan.updates == {}
    assert not plan.changed


def test_score_only_change_keeps_status_since() -> None:
    stored = {"status": "prospect", "miss_type": "none", "score": 30,
              "reason": "Prospect: ICP fit; budget confirmed", "ruleset": "2026.11",
              "status_since": datetime(2026, 1, 1, tzinfo=UTC)}
    plan = plan_contact(Contact("51", {}, outputs=stored), _decision(), now=NOW)
    assert set(plan.updates) == {"score", "evaluated_at"}
    assert plan.previous == {"score": 30, "evaluated_at": None}


def test_status_move_restamps_status_since_and_reports_transition() -> None:
    stored = {"status": "lead", "miss_type": "none", "score": 40,
              "status_since": datetime(2026, 1, 1, tzinfo=UTC)}
    plan = plan_contact(Contact("51", {}, outputs=stored), _decision(status="opportunity"), now=NOW)
    assert plan.updates["status_since"] == NOW
    assert plan.transition == ("lead", "opportunity")


def test_reason_is_cut_to_the_crm_field_length() -> None:
    plan = plan_contact(Contact("51", {}), _decision(reason="x" * 400), now=NOW)
    assert len(plan.updates["reason"]) == 255


def test_task_keys_are_deterministic_and_distinct_per_contact_and_purpose() -> None:
    assert task_key("51", "sla") == task_key("51", "sla")
    assert len({task_key("51", "sla"), task_key("52", "sla"), task_key("51", "nurture")}) == 3


def test_open_task_for_a_purpose_is_not_created_again() -> None:
    key = task_key("51", "sla")
    open_tasks = {key: OpenTask(key, "sla", "901")}
    plan = plan_contact(Contact("51", {}), _decision(tasks=(_task("sla"),)), now=NOW,
                        open_tasks=open_tasks)
    assert plan.task_creates == ()
    assert plan.task_closes == ()


def test_new_purpose_creates_a_task_for_the_owner_and_obsolete_one_is_closed() -> None:
    old = task_key("51", "nurture")
    plan = plan_contact(
        Contact("51", {}, owner_id="7"),
        _decision(tasks=(_task("sla"),)),
        now=NOW,
        open_tasks={old: OpenTask(old, "nurture", "900")},
    )
    assert [(c.key, c.owner_id) for c in plan.task_creates] == [(task_key("51", "sla"), "7")]
    assert [(c.key, c.task_id) for c in plan.task_closes] == [(old, "900")]


def test_a_purpose_that_applies_again_after_its_task_was_closed_gets_a_new_key() -> None:
    # Reusing the old key would reopen (on Salesforce: upsert over) the task a rep completed.
    first = plan_contact(Contact("51", {}), _decision(tasks=(_task("sla"),)), now=NOW)
    again = plan_contact(Contact("51", {}), _decision(tasks=(_task("sla"),)), now=NOW,
                         closed_counts={"sla": 1})
    assert first.task_creates[0].key == task_key("51", "sla")
    assert again.task_creates[0].key == task_key("51", "sla", 1) != first.task_creates[0].key
