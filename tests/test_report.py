"""The funnel health report: numbers from hand-made ledger runs, HTML escaping, the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmsync.cli import main
from crmsync.report import build_report, diagnose, render_html, summary_lines
from crmsync.state import RunRecord, StateStore

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def _summary(mode: str, *, statuses: dict[str, int], transitions: dict[str, int],
             stuck: dict[str, int] | None = None, sla: int = 0,
             reasons: dict[str, dict[str, int]] | None = None) -> dict[str, Any]:
    """A RunSummary.to_json()-shaped dict, as sync.py writes it to the ledger."""
    read = sum(statuses.values())
    reasons = reasons or {"soft": {}, "hard": {}}
    return {
        "run_id": "set-by-ledger", "crm": "hubspot", "mode": mode, "status": "ok", "exit_code": 0,
        "error": None, "started_at": T0.isoformat(), "finished_at": T0.isoformat(),
        "counts": {"read": read, "evaluated": read, "updated": sum(transitions.values()),
                   "unchanged": read - sum(transitions.values()), "field_writes": 7,
                   "tasks_created": 3, "tasks_closed": 1, "rejected": 0,
                   "planned_task_creates": 3},
        "statuses": statuses,
        "miss_types": {"none": read - sum(map(sum, (r.values() for r in reasons.values()))),
                       **{k: sum(v.values()) for k, v in reasons.items()}},
        "transitions": transitions,
        "funnel": {"stuck": stuck or {}, "sla_breaches": sla, "miss_reasons": reasons},
        "read_by_stream": {"contacts": read}, "api_calls": 12, "estimated_write_calls": 4,
        "samples": [{"id": "0031x00000SECRET", "reason": "contact data never reaches the report"}],
    }


def _record(store: StateStore, mode: str, hours: int, summary: dict[str, Any],
            status: str = "ok") -> str:
    run_id = store.start_run("hubspot", mode, ruleset_version="1", ruleset_hash="abc",
                             started_at=T0 + timedelta(hours=hours))
    store.finish_run(run_id, status, 0, summary, finished_at=T0 + timedelta(hours=hours, minutes=5))
    return run_id


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")


@pytest.fixture
def ledger(store: StateStore) -> list[RunRecord]:
    # A full scan, then two incremental runs; a dry run and an undo that must not count.
    _record(store, "full", 0, _summary(
        "full", statuses={"lead": 100, "prospect": 40, "opportunity": 12, "disqualified": 30},
        transitions={"new → lead": 100, "new → prospect": 40, "new → opportunity": 12,
                     "new → disqualified": 30, "none miss → soft miss": 6},
        stuck={"lead": 20, "prospect": 8, "opportunity": 2}, sla=3,
        reasons={"soft": {"budget": 4, "timing": 2}, "hard": {"went with competitor": 1}}))
    _record(store, "run", 1, _summary(
        "run", statuses={"prospect": 10, "disqualified": 5},
        transitions={"lead → prospect": 10, "lead → disqualified": 5}))
    _record(store, "plan", 2, _summary(
        "plan", statuses={"opportunity": 50}, transitions={"prospect → opportunity": 50}))
    _record(store, "run", 3, _summary(
        "run", statuses={"prospect": 2, "opportunity": 6, "disqualified": 2},
        transitions={"lead → prospect": 5, "prospect → opportunity": 6,
                     "prospect → disqualified": 2}))
    _record(store, "undo", 4, _summary("undo", statuses={}, transitions={"opportunity → lead": 9}))
    return store.runs(limit=50)


def _conversion(report: dict[str, Any], source: str, target: str) -> dict[str, Any]:
    return next(c for c in report["conversion"] if (c["from"], c["to"]) == (source, target))


def test_funnel_shape_comes_from_the_full_run_and_conversion_from_all_sync_runs(
        ledger: list[RunRecord]) -> None:
    report = build_report(ledger)
    assert report["window"]["runs"] == 3  # plan and undo are left out
    assert report["snapshot"]["mode"] == "full" and report["snapshot"]["scope"] == "full"
    assert report["stages"] == {"lead": 100, "prospect": 40, "opportunity": 12,
                                "disqualified": 30}
    # 20 contacts left lead: 15 became prospects, 5 were disqualified.
    assert _conversion(report, "lead", "prospect") == {
        "from": "lead", "to": "prospect", "contacts": 15, "left_from": 20, "rate": 0.75}
    assert _conversion(report, "lead", "disqualified")["rate"] == 0.25
    # 8 left prospect: 6 to opportunity (the plan run's 50 do not count), 2 disqualified.
    assert _conversion(report, "prospect", "opportunity")["rate"] == 0.75
    assert _conversion(report, "prospect", "disqualified")["rate"] == 0.25
    assert _conversion(report, "opportunity", "disqualified")["rate"] is None  # nobody left
    assert report["new_contacts"] == 182
    assert report["stuck"] == {"lead": 20, "prospect": 8, "opportunity": 2}
    assert report["sla_breaches"] == 3
    assert report["misses"]["soft"] == {"contacts": 6, "top_reasons": [("budget", 4),
                                                                     ("timing", 2)]}
    assert report["misses"]["hard"]["top_reasons"] == [("went with competitor", 1)]
    assert [r["mode"] for r in report["runs"]] == ["run", "run", "full"]
    assert report["diagnosis"][0]["shape"] == "healthy"
    assert "SECRET" not in json.dumps(report) + render_html(report)


def test_without_a_full_run_the_latest_run_is_a_flagged_partial_view(store: StateStore) -> None:
    _record(store, "full", 0, _summary("full", statuses={"lead": 5}, transitions={}), "failed")
    _record(store, "run", 1, _summary("run", statuses={"lead": 3, "prospect": 1},
                                      transitions={"lead → prospect": 1}))
    report = build_report(store.runs())
    assert report["snapshot"]["scope"] == "partial" and report["snapshot"]["mode"] == "run"
    assert report["stages"]["lead"] == 3
    assert "No finished full run" in render_html(report)


@pytest.mark.parametrize(("stages", "stuck", "shapes"), [
    ({"lead": 200, "prospect": 10, "opportunity": 5}, {}, ["thin_middle"]),
    ({"lead": 100, "prospect": 50, "opportunity": 20}, {"lead": 40, "prospect": 10},
     ["bloated_middle"]),
    ({"lead": 100, "prospect": 60, "opportunity": 3}, {}, ["small_bottom"]),
    ({"lead": 5, "prospect": 1, "opportunity": 0}, {}, ["too_few"]),
])
def test_diagnosis_names_domain_shapes(stages: dict[str, int], stuck: dict[str, int],
                                       shapes: list[str]) -> None:
    assert [d["shape"] for d in diagnose(stages, stuck)] == shapes


def test_reasons_from_crm_data_are_escaped(store: StateStore) -> None:
    evil = "<script>alert('x')</script> & budget"
    _record(store, "full", 0, _summary(
        "full", statuses={"lead": 30, "prospect": 10, "opportunity": 4}, transitions={},
        reasons={"soft": {evil: 3}, "hard": {}}))
    html = render_html(build_report(store.runs()))
    assert "<script" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; budget" in html
    # Charts draw counts only; the reason (CRM text) is in the tables, escaped, never in an SVG.
    assert html.count("<figure class='chart'") >= 3  # funnel, stages over time, misses per run
    assert all(evil.split("<")[1] not in svg for svg in html.split("<svg")[1:])


def test_long_labels_are_never_cut(store: StateStore) -> None:
    # The longest stage pair and a long rule-set version, in the HTML charts and the text lines.
    version = "enterprise-emea-and-north-america-2026.12-with-partner-channel-rules"
    _record(store, "full", 0, _summary("full", statuses={"opportunity": 10, "lead": 40},
                                       transitions={}))
    _record(store, "run", 1, _summary(
        "run", statuses={"opportunity": 2, "disqualified": 8},
        transitions={"opportunity → disqualified": 8, "disqualified → opportunity": 1}))
    report = build_report(store.runs())
    report["reclassified"] = {version: {"opportunity → disqualified": 8, "lead → prospect": 3,
                                        "prospect → lead": 2, "lead → disqualified": 1,
                                        "prospect → opportunity": 1}}
    html = render_html(report)
    # Every chart has a table whose cells grow with their text; the charts' own axis labels
    # are never cut either (Vega would end a long one with "…").
    assert "<svg" in html and "…" not in html
    for label in ("opportunity → disqualified", "lead", "opportunity", "soft", "hard"):
        assert f"<td>{label}</td>" in html, label
    assert f"Re-classified by rules {version}" in html
    text = "\n".join(summary_lines(report))
    assert version in text
    assert "prospect → opportunity 1" in text, "every re-classified move is listed"


def test_empty_ledger_gives_an_empty_report() -> None:
    report = build_report([])
    assert report["snapshot"] is None and report["runs"] == [] and report["diagnosis"] == []
    assert "No sync runs recorded yet" in render_html(report)


def _settings(tmp_path: Path) -> Path:
    config = tmp_path / "crmsync.toml"
    config.write_text(f'[crm]\ntype="hubspot"\n[state]\nurl="sqlite:///{tmp_path / "state.db"}"\n')
    return config


def test_cli_writes_html_and_json(tmp_path: Path, ledger: list[RunRecord]) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["report", "--config", str(_settings(tmp_path)),
                                       "--out", str(out), "--runs", "2"])
    assert result.exit_code == 0, result.output
    # The 2 latest sync runs: 15 of the 20 leads that moved became prospects.
    assert "lead→prospect 75%" in result.output
    assert f"wrote {out / 'report.html'}" in result.output
    data = json.loads((out / "report.json").read_text())
    assert data["window"]["runs"] == 2 and data["snapshot"]["scope"] == "partial"
    assert (out / "report.html").read_text().startswith("<!doctype html>")

    as_json = CliRunner().invoke(main, ["report", "--config", str(_settings(tmp_path)),
                                        "--out", str(out), "--output", "json"])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output)["window"]["runs"] == 3


def test_cli_on_an_empty_store_says_so_and_exits_0(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["report", "--config", str(_settings(tmp_path)),
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "No sync runs recorded yet" in result.output
    assert not out.exists()


def test_cli_with_dates_before_every_run_names_the_latest_run_not_a_first_sync(
        tmp_path: Path, ledger: list[RunRecord]) -> None:
    result = CliRunner().invoke(main, ["report", "--config", str(_settings(tmp_path)),
                                       "--out", str(tmp_path / "out"), "--until", "2020-01-01"])
    assert result.exit_code == 0, result.output
    assert "No sync runs started in that date range" in result.output
    assert f"the latest started {ledger[0].started_at:%Y-%m-%d}" in result.output
    assert "crmsync run" not in result.output


def test_runs_from_before_the_dashboard_fields_are_left_out_not_zeroed(
        ledger: list[RunRecord]) -> None:
    # The hand-made ledger's runs carry no stage totals and no rule hits (an older crmsync).
    report = build_report(ledger)
    # The full run's contacts were all of them: its statuses are a point; incremental runs not.
    assert [(p["mode"], p["lead"], p["prospect"]) for p in report["stages_over_time"]] == [
        ("full", 100, 40)]
    assert report["rule_health"] == {"runs": 0, "evaluated": 0, "rules": [], "dead": []}
    assert [(m["kind"], m["reason"], m["contacts"]) for m in report["misses_over_time"]] == [
        ("soft", "budget", 4), ("soft", "timing", 2), ("hard", "went with competitor", 1)]
    # Without the store's current decisions there are no "now" sections, and the page says why.
    assert report["by_owner"] == [] and report["stuck_contacts"]["listed"] == []
    assert "describe contacts as they are now" in render_html(report)


def test_rule_health_sums_hits_over_the_window_and_names_dead_rules(store: StateStore) -> None:
    for hours, hits in ((0, {"a": 3, "b": 0, "gone": 2}), (1, {"a": 1, "b": 0, "c": 0})):
        summary = _summary("run", statuses={"lead": 4}, transitions={})
        summary["rule_hits"] = hits
        _record(store, "run", hours, summary)
    health = build_report(store.runs())["rule_health"]
    # The newest run's rule set is judged ("gone" was deleted); 8 evaluations in 2 runs.
    assert [(r["rule"], r["hits"], r["rate"]) for r in health["rules"]] == [
        ("a", 4, 0.5), ("b", 0, 0.0), ("c", 0, 0.0)]
    assert health["dead"] == ["b", "c"] and health["runs"] == 2
    assert "rules that never fired in 2 runs: b, c" in "\n".join(
        summary_lines(build_report(store.runs())))


@pytest.mark.parametrize(("args", "runs"), [
    (["--since", "2026-11-01"], 3),
    (["--since", "2026-11-01", "--until", "2026-11-01"], 3),
    (["--until", "2026-10-31"], 0),
    (["--since", "2026-11-02"], 0),
])
def test_cli_date_filter(tmp_path: Path, ledger: list[RunRecord], args: list[str],
                         runs: int) -> None:
    result = CliRunner().invoke(main, ["report", "--config", str(_settings(tmp_path)),
                                       "--out", str(tmp_path / "out"), "--output", "json",
                                       *args])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["window"]["runs"] == runs
    if runs:
        assert data["window"]["since"] == "2026-11-01T00:00:00+00:00"


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "2026-11-02", "--days", "3"], "not both"),
    (["--since", "2026-11-02", "--until", "2026-11-01"], "--since is after --until"),
    (["--since", "yesterday"], "yesterday"),
])
def test_cli_date_filter_mistakes_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["report", "--config", str(_settings(tmp_path)), *args])
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output
