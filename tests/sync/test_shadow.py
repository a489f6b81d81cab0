"""Shadow runs and ``rules promote`` against both sandbox CRMs, through the real SDKs.

A candidate rule file (``[rules] shadow``) is evaluated beside production on every contact a
run evaluates: the CRM receives exactly what a run without it receives, and the comparison
recorded per run matches an independent count (both rule files evaluated on the same facts,
read through the connector before the run). ``shadow report`` adds runs up; ``rules promote``
makes the candidate production and the next run re-evaluates every contact.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmsync.cli import main
from crmsync.config import load_settings
from crmsync.errors import ExitCode
from crmsync.rules import RuleSet, load_ruleset
from crmsync.sandbox.launch import build_sandbox
from crmsync.state import StateStore
from crmsync.sync import RunSummary, SyncOptions, SyncRun
from crmsync.sync.run import LEASE_TTL
from crmsync.sync.shard import ShardSpec
from crmsync.wiring import Parts, load_parts
from crmsync.workers.execute import execute_shard

from .conftest import ANCHOR, ROOT, Crm, crm_state

#: The rules' clock of every run here: both rule files, and both sandboxes, decide at one time.
NOW = ANCHOR + timedelta(hours=9)
#: No overlap window: these runs follow each other within seconds (see test_sync_e2e).
QUICK = timedelta(0)
#: The test the candidate's lower employee threshold breaks (its author updated the tests).
BROKEN_BY_CANDIDATE = "20 employees: stays a lead even with budget, authority and a trial"


def write_candidate(path: Path, *, keep_broken_test: bool = False) -> Path:
    """A candidate: smaller companies count as ICP and fewer page views as interest."""
    doc = json.loads((ROOT / "rules/default.json").read_text("utf-8"))
    doc["version"] = "candidate-1"
    doc["params"]["icp_min_employees"] = 20
    doc["params"]["many_page_views"] = 3
    if not keep_broken_test:
        doc["tests"] = [t for t in doc["tests"] if t["name"] != BROKEN_BY_CANDIDATE]
    path.write_text(json.dumps(doc, indent=2), "utf-8")
    return path


def add_shadow(crm: Crm, candidate: Path) -> None:
    """Put ``shadow = candidate`` into the test config's ``[rules]``."""
    text = crm.config.read_text("utf-8")
    crm.config.write_text(text.replace("[state]", f'shadow = "{candidate.as_posix()}"\n[state]'),
                          "utf-8")


def run(crm: Crm, now: datetime | None = None, **options: Any) -> RunSummary:
    """One in-process run as ``crmsync run`` makes it (the candidate from the config).

    On the wall clock unless ``now`` is given: a run reads what changed before its clock, so
    a run after another one's writes needs a later clock than those writes.
    """
    parts = load_parts(load_settings(crm.config, env={}))
    try:
        return SyncRun(parts.connector, parts.ruleset, parts.store, now=now,
                       options=SyncOptions(**options), shadow=parts.shadow).execute()
    finally:
        parts.close()


def independent_count(crm: Crm, production: RuleSet, candidate: RuleSet,
                      now: datetime = NOW) -> dict[str, Any]:
    """Evaluate both rule files on every contact's facts, read through the connector."""
    parts = load_parts(load_settings(crm.config, env={}))
    status: Counter[tuple[str, str]] = Counter()
    miss: Counter[tuple[str, str]] = Counter()
    hits_old: Counter[str] = Counter()
    hits_new: Counter[str] = Counter()
    shift = 0
    try:
        for stream in parts.connector.streams():
            for page in parts.connector.read(stream, None):
                if page.related:
                    continue
                for contact in page.contacts:
                    old = production.evaluate(contact.facts, now=now, contact_id=contact.id,
                                              coerced=True)
                    new = candidate.evaluate(contact.facts, now=now, contact_id=contact.id,
                                             coerced=True)
                    status[(old.status, new.status)] += 1
                    miss[(old.miss_type, new.miss_type)] += 1
                    hits_old.update(old.rules)
                    hits_new.update(new.rules)
                    shift += new.score - old.score
    finally:
        parts.close()
    return {"status": status, "miss": miss, "hits_production": hits_old,
            "hits_candidate": hits_new, "score_shift": shift}


def cells(matrix: dict[str, dict[str, int]]) -> Counter[tuple[str, str]]:
    return Counter({(old, new): n for old, row in matrix.items() for new, n in row.items()})


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("crm_name", ["hubspot", "salesforce"])
def test_a_shadow_run_writes_exactly_what_a_run_without_shadow_writes(
    crm_name: str, tmp_path: Path
) -> None:
    outcomes = {}
    for shadowed in (False, True):
        workdir = tmp_path / f"shadow-{shadowed}"
        workdir.mkdir()
        with build_sandbox(crm_name, contacts=150, seed=7, anchor=ANCHOR) as server:
            crm = Crm(crm_name, server, workdir)
            crm.quiet_rate_limits()
            crm.setup()
            if shadowed:
                add_shadow(crm, write_candidate(workdir / "candidate.json"))
            server.reset()
            summary = run(crm, now=NOW)
            assert summary.exit_code == ExitCode.OK, summary.error
            assert (summary.shadow is not None) == shadowed
            outcomes[shadowed] = (crm_state(crm), server.call_counts()["writes"],
                                  summary.counts["field_writes"], summary.counts["tasks_created"])
    assert outcomes[True] == outcomes[False]
    assert outcomes[True][1] > 0, "the comparison is about a run that wrote something"


def test_the_recorded_comparison_matches_an_independent_count(crm: Crm, tmp_path: Path) -> None:
    crm.setup()
    candidate_file = write_candidate(tmp_path / "candidate.json")
    add_shadow(crm, candidate_file)
    production = load_ruleset(ROOT / "rules/default.json")
    candidate = load_ruleset(candidate_file)
    expected = independent_count(crm, production, candidate)

    summary = run(crm, now=NOW)
    assert summary.exit_code == ExitCode.OK, summary.error
    with StateStore.open(load_settings(crm.config, env={}).state.url) as store:
        recorded = store.shadow_comparison(summary.run_id)
    assert recorded is not None
    assert recorded["contacts"] == summary.counts["evaluated"] == sum(expected["status"].values())
    assert cells(recorded["status_matrix"]) == expected["status"]
    assert cells(recorded["miss_matrix"]) == expected["miss"]
    assert recorded["hits_production"] == dict(expected["hits_production"])
    assert recorded["hits_candidate"] == dict(expected["hits_candidate"])
    assert recorded["score_shift"] == expected["score_shift"]
    assert (recorded["candidate_version"], recorded["candidate_hash"]) == (
        "candidate-1", candidate.content_hash)
    # The candidate is meant to differ: the test would prove little if nothing moved.
    moved = sum(n for (old, new), n in expected["status"].items() if old != new)
    assert moved > 0
    assert recorded["moved"] >= moved
    assert all(m["status"].split(" → ")[0] != m["status"].split(" → ")[1]
               or m["miss_type"].split(" → ")[0] != m["miss_type"].split(" → ")[1]
               for m in recorded["movers"])
    # The CRM holds production's decisions, not the candidate's.
    statuses = Counter(c.get(crm.shape["status"]) for c in crm.contacts())
    assert statuses == _rows(expected["status"])


def _rows(matrix: Counter[tuple[str, str]]) -> Counter[str]:
    rows: Counter[str] = Counter()
    for (old, _), n in matrix.items():
        rows[old] += n
    return rows


def test_shadow_report_adds_up_the_runs(crm: Crm, tmp_path: Path) -> None:
    crm.setup()
    add_shadow(crm, write_candidate(tmp_path / "candidate.json"))
    runs = [run(crm), run(crm, overlap=QUICK)]  # the second re-reads crmsync's own writes
    time.sleep(1.1)  # past the cursor's second (SOQL literals have whole seconds)
    for contact in crm.contacts()[:5]:
        crm.edit(contact["id"], crm.shape["edit_hot"])
    runs.append(run(crm, overlap=QUICK))
    second = runs[-1]
    assert {r.exit_code for r in runs} == {ExitCode.OK}
    assert 5 <= second.counts["evaluated"] <= 5 + 2  # the edited ones, plus cursor-tie re-reads
    with StateStore.open(load_settings(crm.config, env={}).state.url) as store:
        parts = [store.shadow_comparison(r.run_id) or {} for r in runs]

    code, out, _ = invoke("shadow", "report", "--config", str(crm.config), "--output", "json")
    assert code == 0
    report = json.loads(out)
    assert [r["run_id"] for r in report["runs"]] == [r.run_id for r in reversed(runs)]
    total = report["total"]
    assert total["runs"] == 3
    assert total["contacts"] == sum(r.counts["evaluated"] for r in runs)
    assert cells(total["status_matrix"]) == sum((cells(p["status_matrix"]) for p in parts),
                                                Counter())
    assert cells(total["miss_type_matrix"]) == sum((cells(p["miss_matrix"]) for p in parts),
                                                   Counter())
    hits = {row["rule"]: (row["production"], row["candidate"]) for row in total["rule_hits"]}
    for name, side in (("hits_production", 0), ("hits_candidate", 1)):
        summed = sum((Counter(p[name]) for p in parts), Counter())
        assert {rule: counts[side] for rule, counts in hits.items() if counts[side]} == summed

    code, out, _ = invoke("shadow", "report", "--config", str(crm.config), "--runs", "1",
                          "--output", "json")
    latest = json.loads(out)
    assert [r["run_id"] for r in latest["runs"]] == [second.run_id]
    assert latest["total"]["contacts"] == second.counts["evaluated"]

    code, out, _ = invoke("shadow", "report", "--config", str(crm.config))
    assert code == 0
    assert "production ↓ / candidate →" in out and second.run_id in out
    assert f"{total['contacts']} contacts compared" in out


def test_plan_shows_the_comparison_and_records_none(crm: Crm, tmp_path: Path) -> None:
    crm.setup()
    add_shadow(crm, write_candidate(tmp_path / "candidate.json"))
    code, out, _ = invoke("plan", "--config", str(crm.config), "--output", "json")
    planned = json.loads(out)
    assert code == ExitCode.OK
    assert planned["shadow"]["contacts"] == planned["counts"]["evaluated"] > 0
    assert planned["shadow"]["moved"] > 0
    code, out, _ = invoke("shadow", "report", "--config", str(crm.config), "--output", "json")
    assert json.loads(out)["runs"] == []
    code, out, _ = invoke("plan", "--config", str(crm.config))
    assert "shadow rules candidate-1: compared on" in out


def test_promote_makes_the_candidate_production_and_the_next_run_re_evaluates_all(
    crm: Crm, tmp_path: Path
) -> None:
    crm.setup()
    candidate_file = write_candidate(tmp_path / "candidate.json")
    # A comment the promotion must keep (the config is a file people edit).
    crm.config.write_text("# owned by sales ops\n" + crm.config.read_text("utf-8"), "utf-8")
    add_shadow(crm, candidate_file)
    first = run(crm)
    total = first.counts["evaluated"]
    assert first.exit_code == ExitCode.OK and total == len(crm.contacts())
    run(crm, overlap=QUICK)  # re-reads crmsync's own writes once
    time.sleep(1.1)
    # Quiet now: an incremental run re-evaluates (about) nobody.
    assert run(crm, overlap=QUICK).counts["evaluated"] <= 2
    before = crm.config.read_text("utf-8")

    code, out, err = invoke("rules", "promote", "--config", str(crm.config), "--output", "json")
    assert code == 0, err
    promoted = json.loads(out)
    assert promoted["re_evaluates_all"] and promoted["version"] == "candidate-1"
    assert Path(promoted["backup"]).read_text("utf-8") == before
    settings = load_settings(crm.config, env={})
    assert settings.rules.path == candidate_file and settings.rules.shadow is None
    assert crm.config.read_text("utf-8").startswith("# owned by sales ops\n")

    later = datetime.now(UTC)  # noqa: TID251 - read once, shared with the independent count
    after = run(crm, now=later, overlap=QUICK)
    assert after.exit_code == ExitCode.OK, after.error
    assert after.counts["evaluated"] == total
    assert all(scope.startswith("full: rules changed") for scope in after.scope.values())
    assert after.shadow is None
    # The CRM now holds the candidate's decisions.
    candidate = load_ruleset(candidate_file)
    expected = independent_count(crm, candidate, candidate, now=later)
    assert Counter(c.get(crm.shape["status"]) for c in crm.contacts()) == _rows(expected["status"])


def test_promote_refuses_a_candidate_that_fails_its_tests_or_validation(
    crm: Crm, tmp_path: Path
) -> None:
    config = str(crm.config)
    code, _, err = invoke("rules", "promote", "--config", config)
    assert code == ExitCode.BAD_CONFIG and "no candidate to promote" in err
    assert "hint:" in err

    add_shadow(crm, write_candidate(tmp_path / "candidate.json", keep_broken_test=True))
    before = crm.config.read_text("utf-8")
    code, out, err = invoke("rules", "promote", "--config", config, "--output", "json")
    assert code == ExitCode.BAD_CONFIG
    failure = json.loads(out)
    assert failure["error"] == "bad_config" and BROKEN_BY_CANDIDATE in failure["message"]
    assert crm.config.read_text("utf-8") == before
    assert not list(crm.config.parent.glob("*.bak-*"))

    broken = tmp_path / "candidate.json"
    broken.write_text('{\n  "version": "x",\n  "decisions": [\n    {"output": 1}\n  ]\n}\n')
    code, _, err = invoke("rules", "promote", "--config", config)
    assert code == ExitCode.BAD_CONFIG
    assert f"{broken}:" in err and "Traceback" not in err
    assert crm.config.read_text("utf-8") == before


def test_a_run_refuses_an_invalid_candidate_before_contacting_the_crm(
    crm: Crm, tmp_path: Path
) -> None:
    crm.setup()
    broken = tmp_path / "candidate.json"
    broken.write_text('{\n  "version": "x",\n  "decisions": [\n    {"output": 1}\n  ]\n}\n')
    add_shadow(crm, broken)
    crm.server.reset()
    result = CliRunner().invoke(main, ["run", "--config", str(crm.config)])
    assert result.exit_code == ExitCode.BAD_CONFIG
    assert f"{broken}:" in result.stderr and "Traceback" not in result.output
    assert crm.server.call_counts()["total"] == 0


def test_each_shard_records_its_part_and_the_run_adds_them_up(tmp_path: Path) -> None:
    """Shards executed as a worker executes them (``execute_shard``, without Celery)."""
    with build_sandbox("hubspot", contacts=200, seed=5, anchor=ANCHOR) as server:
        crm = Crm("hubspot", server, tmp_path)
        crm.quiet_rate_limits()
        crm.setup()
        candidate_file = write_candidate(tmp_path / "candidate.json")
        add_shadow(crm, candidate_file)
        expected = independent_count(crm, load_ruleset(ROOT / "rules/default.json"),
                                     load_ruleset(candidate_file))

        def build_parts(connection: str) -> Parts:
            return load_parts(load_settings(crm.config, env={}, connection=connection))

        parts = build_parts("default")
        try:
            store, stream = parts.store, parts.connector.streams()[0]
            run_id = store.start_run(crm="hubspot", mode="full")
            store.acquire_lease("sync:hubspot", run_id, LEASE_TTL)
            ranges = parts.connector.shard_ranges(stream, 4)  # type: ignore[attr-defined]
            assert parts.shadow is not None and len(ranges) == 4
            # The last shard names another candidate than this worker's: it is executed but
            # not compared (production work does not wait on an experiment).
            hashes = [parts.shadow.content_hash] * 3 + ["another-candidate"]
            specs = [ShardSpec(run_id=run_id, shard=i, stream=stream, lo=lo, hi=hi, since=None,
                               now=NOW, mode="full", shadow_hash=hashes[i])
                     for i, (lo, hi) in enumerate(ranges)]
            store.add_shards(run_id, [{"shard": s.shard, "stream": stream} for s in specs])
            outcomes = [execute_shard(spec.to_json(), build_parts) for spec in specs]
            shards = store.shards(run_id)
            total = store.shadow_comparison(run_id)
        finally:
            parts.close()
    assert outcomes == ["done"] * 4
    assert total is not None
    evaluated = [s.summary["counts"]["evaluated"] for s in shards]  # type: ignore[index]
    assert sum(evaluated) == sum(expected["status"].values())
    assert total["contacts"] == sum(evaluated[:3]) > 0
    assert shards[3].summary["shadow"] is None  # type: ignore[index]
    compared = sum((cells(s.summary["shadow"]["status_matrix"])  # type: ignore[index]
                    for s in shards[:3]), Counter())
    assert cells(total["status_matrix"]) == compared
    assert sum(compared.values()) + evaluated[3] == sum(expected["status"].values())
