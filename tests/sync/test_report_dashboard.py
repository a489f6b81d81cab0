"""The dashboard report on stores built by real sandbox runs, checked against the CRM's records.

Every expected number is read from the sandbox CRM itself (owners, lead sources, the status and
``status since`` crmsync wrote onto each record), never from the report code or the store.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmsync.cli import main
from crmsync.coerce import coerce
from crmsync.config import load_settings
from crmsync.report import build_report, current_funnel, load_runs, render_html, summary_lines
from crmsync.sandbox.launch import build_sandbox
from crmsync.state import StateStore

from .conftest import ANCHOR, Crm

#: Stage limits as DOMAIN.md states them (days), written out rather than read from the code.
STUCK_DAYS = {"lead": 90, "prospect": 45, "opportunity": 30}
#: Each CRM's names for the fields the breakdowns use.
FIELDS = {
    "hubspot": {"owner": "hubspot_owner_id", "source": "hs_analytics_source",
                "since": "crmsync_status_since", "task_status": "hs_task_status",
                "task_due": "hs_timestamp"},
    "salesforce": {"owner": "OwnerId", "source": "LeadSource", "since": "Crmsync_Status_Since__c",
                   "task_status": "Status", "task_due": "ActivityDate"},
}
LATER = ANCHOR + timedelta(days=100)
RULES = Path(__file__).resolve().parents[2] / "rules" / "default.json"


def _report(crm: Crm, now: datetime) -> dict[str, Any]:
    store = StateStore.open(load_settings(crm.config, env={}).state.url)
    try:
        runs = load_runs(store, 20)
        return build_report(runs, current_funnel(store, runs, now))
    finally:
        store.close()


def _first_run(crm: Crm) -> Any:
    store = StateStore.open(load_settings(crm.config, env={}).state.url)
    try:
        return store.runs(limit=50)[-1]
    finally:
        store.close()


def _crm_rows(crm: Crm) -> list[dict[str, Any]]:
    names = FIELDS[crm.crm]
    return [{"id": c["id"], "status": c.get(crm.shape["status"]),
             "owner": c.get(names["owner"]) or "(none)",
             "source": c.get(names["source"]) or "(none)",
             "since": coerce(c.get(names["since"]), "datetime")} for c in crm.contacts()]


@pytest.fixture(scope="module", params=["hubspot", "salesforce"])
def aged(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crm]:
    """A first run at the anchor, then a full run 100 days later: contacts that kept their stage
    are now stuck, and opportunities nobody touched breach the follow-up SLA.

    One store per CRM for the module (the tests only read it; the one that adds a run is last).
    """
    with build_sandbox(request.param, contacts=150, seed=7, anchor=ANCHOR) as server:
        crm = Crm(request.param, server, tmp_path_factory.mktemp(f"report-{request.param}"))
        crm.quiet_rate_limits()
        yield _age(crm)


def _age(crm: Crm) -> Crm:
    crm.setup()
    first = crm.run(now=ANCHOR)
    assert first.status == "ok", first.error
    later = crm.run(now=LATER, full=True)
    assert later.status == "ok", later.error
    return crm


def test_breakdowns_by_owner_and_source_match_the_crm(aged: Crm) -> None:
    report = _report(aged, LATER)
    rows = _crm_rows(aged)
    stages = Counter(r["status"] for r in rows)
    assert {k: v for k, v in report["stages"].items() if v} == dict(stages)
    # Per owner and per source, each stage's count is the CRM's; the rows sum to the stages.
    for key, field in (("by_owner", "owner"), ("by_source", "source")):
        name = "owner_id" if key == "by_owner" else "lead_source"
        expected = Counter((r[field], r["status"]) for r in rows)
        got = Counter({(row[name], stage): row[stage] for row in report[key]
                       for stage in report["stages"] if row[stage]})
        assert got == expected, key
        for stage, n in report["stages"].items():
            assert sum(row[stage] for row in report[key]) == n, (key, stage)
    assert len(report["by_owner"]) > 1 and len(report["by_source"]) > 1
    assert sum(b["contacts"] for b in report["score_distribution"]) == len(rows)
    assert {r["stage"]: r["contacts"] for r in report["time_in_stage"]} == {
        s: stages.get(s, 0) for s in report["stages"]}


def test_stuck_contacts_are_those_past_their_stages_limit(aged: Crm) -> None:
    report = _report(aged, LATER)
    expected = {r["id"] for r in _crm_rows(aged) if r["status"] in STUCK_DAYS
                and LATER - r["since"] > timedelta(days=STUCK_DAYS[r["status"]])}
    assert expected, "the scenario must leave some contacts stuck"
    stuck = report["stuck_contacts"]
    assert stuck["total"] == len(expected) == sum(report["stuck"].values())
    assert {s["record_id"] for s in stuck["listed"]} == expected
    assert stuck["threshold_days"] == STUCK_DAYS
    for entry in stuck["listed"]:
        assert entry["days_in_stage"] > STUCK_DAYS[entry["status"]]
    # The owner table's stuck column adds up to the same contacts.
    assert sum(o["stuck"] for o in report["by_owner"]) == len(expected)
    html = render_html(report)
    assert "Why a contact counts as stuck" in html and "a lead after 90 days" in html
    for record_id in list(expected)[:5]:
        assert f"<td>{record_id}</td>" in html  # the drill-down lists CRM ids
    text = "\n".join(summary_lines(report))
    assert "stuck contacts (in their stage longer than its limit)" in text


def test_sla_breaches_by_rep_list_real_opportunities(aged: Crm) -> None:
    report = _report(aged, LATER)
    sla = report["sla"]
    assert sla["breaches"] == report["sla_breaches"] > 0
    assert sum(o["breaches"] for o in sla["by_owner"]) == sla["breaches"]
    crm = {r["id"]: r for r in _crm_rows(aged)}
    assert len(sla["listed"]) == sla["breaches"]  # fewer than the listing cap here
    for breach in sla["listed"]:
        record = crm[breach["record_id"]]
        assert record["status"] == "opportunity"
        assert (breach["owner_id"] or "(none)") == record["owner"]
    by_owner = Counter(b["owner_id"] or "(none)" for b in sla["listed"])
    assert {o["owner_id"]: o["breaches"] for o in sla["by_owner"]} == dict(by_owner)


def test_open_follow_up_tasks_by_rep_match_the_crms_tasks(aged: Crm) -> None:
    names = FIELDS[aged.crm]
    open_tasks = [t for t in aged.tasks()
                  if t.get(names["task_status"]) != aged.closed_task_status]
    expected = Counter(t.get(names["owner"]) or "(none)" for t in open_tasks)
    # Overdue: the due date the CRM holds is before the report's day (tasks of the first run,
    # 100 days earlier, are; those of the later run are not).
    overdue = Counter(t.get(names["owner"]) or "(none)" for t in open_tasks
                      if coerce(t.get(names["task_due"]), "datetime").date() < LATER.date())
    assert expected, "the scenario must leave open tasks"
    assert 0 < sum(overdue.values()) < sum(expected.values()), "some overdue, some not"
    report = _report(aged, LATER)
    assert {t["owner_id"]: t["open"] for t in report["open_tasks"]} == dict(expected)
    assert {t["owner_id"]: t["overdue"] for t in report["open_tasks"]
            if t["overdue"]} == dict(overdue)
    for row in report["open_tasks"]:
        assert sum(row["by_purpose"].values()) == row["open"]
    html = render_html(report)
    assert "Open follow-up tasks by rep" in html
    assert f"{sum(overdue.values())} overdue)" in html


def test_stage_counts_over_time_have_a_point_per_run(aged: Crm) -> None:
    report = _report(aged, LATER)
    points = report["stages_over_time"]
    assert [p["run_id"] for p in points] == [r["run_id"] for r in reversed(report["runs"])]
    assert {k: points[-1][k] for k in report["stages"]} == report["stages"]
    for point in points:
        assert sum(point[s] for s in report["stages"]) == len(aged.contacts())
    html = render_html(report)
    # Every section has its chart drawn (inline SVG, light and dark) and no script.
    assert html.count("<figure class='chart'") >= 8
    assert "<script" not in html and "http://" not in html.split("</style>")[1].split("<svg")[0]


def test_cli_date_filter_keeps_the_runs_of_those_days(aged: Crm, tmp_path: Path) -> None:
    out = tmp_path / "out"
    day = LATER.date().isoformat()
    result = CliRunner().invoke(main, ["report", "--config", str(aged.config), "--out", str(out),
                                       "--since", day, "--output", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["window"]["runs"] == 1 and data["snapshot"]["mode"] == "full"
    assert data["by_owner"], "a report that ends now has its breakdowns"
    # Ending on the first run's day: only that run, and no "now" sections.
    result = CliRunner().invoke(main, ["report", "--config", str(aged.config), "--out", str(out),
                                       "--until", ANCHOR.date().isoformat(), "--output", "json"])
    data = json.loads(result.output)
    assert data["window"]["runs"] == 1 and data["snapshot"]["mode"] == "run"
    assert data["by_owner"] == [] and data["stuck_contacts"]["listed"] == []


def test_rule_health_lists_a_dead_rule_until_it_fires(aged: Crm) -> None:
    report = _report(aged, LATER)
    health = report["rule_health"]
    assert health["runs"] == 2 and health["evaluated"] == len(aged.contacts()) * 2
    # Nobody in the seeded CRM has a status set by hand: the override rule never fired.
    assert "status_override" in health["dead"]
    assert all(r["hits"] == 0 for r in health["rules"] if r["rule"] in health["dead"])
    assert any(r["hits"] > 0 for r in health["rules"])
    # A task template fires once per contact it asks a task for, and the first run found no
    # task open: its task templates' hits are the tasks it planned, one each.
    first = _first_run(aged)
    templates = {t["id"] for t in json.loads(RULES.read_text())["tasks"]}
    assert sum(n for rule, n in first.counts["rule_hits"].items() if rule in templates) == (
        first.counts["counts"]["planned_task_creates"]) > 0
    assert "status_override" in render_html(report)

    target = aged.contacts()[0]["id"]
    aged.edit(target, {aged.shape["override"]: "prospect"})
    # Full: the runs' clock is 100 days ahead of the sandbox's, so an incremental cursor is too.
    aged.run(now=LATER + timedelta(hours=1), full=True)
    health = _report(aged, LATER + timedelta(hours=1))["rule_health"]
    assert health["runs"] == 3
    assert "status_override" not in health["dead"]
    assert next(r for r in health["rules"] if r["rule"] == "status_override")["hits"] == 1
