"""``crmsync rules diff``: its numbers recomputed from ``crmsync evaluate`` output, its CRM
read left the CRM and the state store untouched, and its guards trip exactly when they should.
"""

from __future__ import annotations

import json
import re
import shlex
from collections import Counter
from pathlib import Path

import pytest

from sync.conftest import Crm, crm_state
from workbench.conftest import DEFAULT_RULES, NOW, decisions, invoke


def _exported(crm: Crm, tmp_path: Path) -> Path:
    crm.setup()
    contacts = tmp_path / "contacts.jsonl"
    code, _, err = invoke("export", contacts, "--config", crm.config)
    assert code == 0, err
    return contacts


def _diff_json(old: Path, new: Path, *source: object, extra: tuple[str, ...] = ()) -> dict:
    code, out, err = invoke("rules", "diff", old, new, *source, "--now", NOW,
                            "--output", "json", *extra)
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("crm", ["hubspot"], indirect=True)
@pytest.mark.parametrize("direction", ["forward", "back"])
def test_diff_numbers_match_a_count_of_evaluate_outputs(crm: Crm, candidate: Path,
                                                        tmp_path: Path, direction: str) -> None:
    contacts = _exported(crm, tmp_path)
    old, new = (DEFAULT_RULES, candidate) if direction == "forward" else (candidate,
                                                                          DEFAULT_RULES)
    result = _diff_json(old, new, "--input", contacts, extra=("--samples", "3"))
    before = decisions(old, contacts, tmp_path / "old.jsonl")
    after = decisions(new, contacts, tmp_path / "new.jsonl")
    assert result["contacts"] == len(before) == 150
    for output in ("status", "miss_type"):
        pairs = Counter((before[c][output], after[c][output]) for c in before)
        matrix = result["transitions"][output]["matrix"]
        assert {(o, n): k for o, row in matrix.items() for n, k in row.items() if k} == pairs
        for move in result["transitions"][output]["moves"]:
            assert 0 < len(move["samples"]) <= 3
            for cid in move["samples"]:
                assert (before[cid][output], after[cid][output]) == (move["from"], move["to"])
            assert f"--rules {new}" in move["explain"]
            assert all(f"--contact {cid}" in move["explain"] for cid in move["samples"])
    moved = result["transitions"]["status"]["moves"]
    assert moved, "raising min_employees should move some statuses"
    score = result["score"]
    assert score["old_mean"] == round(sum(d["score"] for d in before.values()) / 150, 2)
    assert score["new_mean"] == round(sum(d["score"] for d in after.values()) / 150, 2)
    assert score["lowered"] == sum(after[c]["score"] < before[c]["score"] for c in before)
    assert sum(b["new"] for b in score["bands"]) == 150
    assert result["reasons"]["changed"] == sum(
        after[c]["reason"] != before[c]["reason"] for c in before)
    creates = Counter(p for c in before for p in {t["purpose"] for t in after[c]["tasks"]}
                      - {t["purpose"] for t in before[c]["tasks"]})
    gone = Counter(p for c in before for p in {t["purpose"] for t in before[c]["tasks"]}
                   - {t["purpose"] for t in after[c]["tasks"]})
    assert result["tasks"]["creates"] == dict(creates)
    assert Counter({**result["tasks"]["closes"], **result["tasks"]["left_open"]}) == gone
    assert (creates if direction == "back" else gone), "the change should move some tasks"
    hits_old = Counter(r for d in before.values() for r in d["rules"])
    hits_new = Counter(r for d in after.values() for r in d["rules"])
    for row in result["rules"]:
        assert (row["old"], row["new"]) == (hits_old[row["id"]], hits_new[row["id"]])
    assert result["dead"] == [r["id"] for r in result["rules"]
                              if hits_old[r["id"]] and not hits_new[r["id"]]]
    assert set(result["never_fire_new"]) == {r["id"] for r in result["rules"]
                                             if not hits_new[r["id"]]}
    top = max(abs(hits_new[r["id"]] - hits_old[r["id"]]) for r in result["rules"])
    assert abs(result["movers"][0]["delta"]) == top > 0


def test_diff_reads_the_crm_read_only(crm: Crm, candidate: Path, tmp_path: Path) -> None:
    crm.setup()
    crm.run()  # a CRM that has been synced: the outputs are there to be left alone
    contacts = _exported(crm, tmp_path)
    state_before = crm_state(crm)
    state_db = crm.workdir / "state.db"
    ledger = state_db.read_bytes()
    live = _diff_json(DEFAULT_RULES, candidate, "--config", crm.config)
    offline = _diff_json(DEFAULT_RULES, candidate, "--input", contacts)
    for key in ("contacts", "transitions", "score", "reasons", "tasks", "rules", "dead"):
        if key == "transitions":
            for output in live[key]:
                for move in [*live[key][output]["moves"], *offline[key][output]["moves"]]:
                    move.pop("explain")
        assert live[key] == offline[key], key
    assert crm_state(crm) == state_before
    assert state_db.read_bytes() == ledger, "the state store must not be touched"


@pytest.mark.parametrize("crm", ["hubspot"], indirect=True)
def test_guards_trip_and_do_not(crm: Crm, candidate: Path, tmp_path: Path) -> None:
    contacts = _exported(crm, tmp_path)
    base = _diff_json(DEFAULT_RULES, candidate, "--input", contacts)
    [move] = [m for m in base["transitions"]["status"]["moves"]
              if (m["from"], m["to"]) == ("lead", "disqualified")]
    leads = sum(base["transitions"]["status"]["matrix"]["lead"].values())
    share = 100 * move["count"] / leads
    cases = {
        f"status:lead->disqualified>{share - 0.5:.1f}%": 1,
        f"status:lead->disqualified>{share + 0.5:.1f}%": 0,
        f"status:lead->disqualified>{move['count'] - 1}": 1,
        f"status:lead->disqualified>{move['count']}": 0,
        f"status:lead->disqualified>={move['count']}": 1,
        "status:opportunity->disqualified>0": 0,
        f"status:*->disqualified>{move['count'] - 1}": 1,
    }
    for guard, expected in cases.items():
        code, out, err = invoke("rules", "diff", DEFAULT_RULES, candidate, "--input", contacts,
                                "--now", NOW, "--fail-on", guard, "--output", "json")
        assert code == expected, (guard, err)
        [checked] = json.loads(out)["guards"]
        assert checked["tripped"] is bool(expected)
    # Several guards: one trips, the exit code says so.
    code, out, _ = invoke("rules", "diff", DEFAULT_RULES, candidate, "--input", contacts,
                          "--now", NOW, "--fail-on", "status:opportunity->lead>0",
                          "--fail-on", "status:lead->disqualified>0")
    assert code == 1
    assert re.search(r"status:lead->disqualified>0: TRIPPED", out)


@pytest.mark.parametrize(("guard", "says"), [
    ("status:opportunity=>disqualified>5%", "write OUTPUT:FROM->TO>LIMIT"),
    ("status:oportunity->disqualified>5%", "did you mean 'opportunity'"),
    ("stauts:lead->prospect>1", "did you mean 'status'"),
    ("status:lead->lead>1", "watches no change"),
    ("status:lead->prospect>150%", "over 100%"),
])
def test_a_malformed_guard_is_a_usage_error_with_a_hint(guard: str, says: str,
                                                        tmp_path: Path) -> None:
    contacts = tmp_path / "contacts.jsonl"
    contacts.write_text('{"id": "c1", "employees": 120}\n', "utf-8")
    code, out, err = invoke("rules", "diff", DEFAULT_RULES, DEFAULT_RULES, "--input", contacts,
                            "--fail-on", guard)
    assert code == 2
    assert says in err and "--fail-on" in err
    assert out == ""


def test_invalid_rule_files_are_located_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text(DEFAULT_RULES.read_text("utf-8").replace('"min_employees": 10',
                                                               '"min_employees": "ten"', 1))
    assert broken.read_text("utf-8") != DEFAULT_RULES.read_text("utf-8")
    contacts = tmp_path / "contacts.jsonl"
    contacts.write_text('{"id": "c1"}\n', "utf-8")
    code, _, err = invoke("rules", "diff", DEFAULT_RULES, broken, "--input", contacts)
    assert code == 2
    assert re.search(rf"{re.escape(str(broken))}:\d+:\d+", err)
    assert "Traceback" not in err


@pytest.mark.parametrize("crm", ["hubspot"], indirect=True)
def test_text_and_html_show_the_same_moves(crm: Crm, candidate: Path, tmp_path: Path) -> None:
    contacts = _exported(crm, tmp_path)
    page = tmp_path / "diff.html"
    code, text, err = invoke("rules", "diff", DEFAULT_RULES, candidate, "--input", contacts,
                             "--now", NOW, "--html", page)
    assert code == 0, err
    result = _diff_json(DEFAULT_RULES, candidate, "--input", contacts)
    html = page.read_text("utf-8")
    assert html.count("<figure class='chart'") >= 3 and "<script" not in html
    assert "aria-label='Status: contacts by old (rows) and new (columns) value'" in html
    for move in result["transitions"]["status"]["moves"]:
        line = f"{move['from']} → {move['to']}: {move['count']} "
        assert line in text
        assert f"<td>{move['from']}</td><td>{move['to']}</td><td>{move['count']}</td>" in html
        assert all(cid in text for cid in move["samples"])


def test_offline_diff_imports_no_database_layer_or_sdk(tmp_path: Path) -> None:
    from cli.test_startup import _probe

    contacts = tmp_path / "contacts.jsonl"
    contacts.write_text('{"id": "c1", "employees": 120, "country": "US"}\n', "utf-8")
    result = _probe(["rules", "diff", str(DEFAULT_RULES), str(DEFAULT_RULES), "--input",
                     str(contacts), "--now", NOW], tmp_path)
    assert result["exit"] in (0, None), result
    assert result["heavy"] == []


def test_field_map_without_input_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = invoke("rules", "diff", DEFAULT_RULES, DEFAULT_RULES, "--field-map",
                          tmp_path / "map.json")
    assert code == 2
    assert "--field-map goes with --input" in err


def test_bad_input_lines_are_named_and_skipped(tmp_path: Path) -> None:
    contacts = tmp_path / "contacts.jsonl"
    contacts.write_text('{"id": "c1", "employees": 5}\nnot json\n{"employees": 9}\n'
                        '{"id": "c2", "employees": 40}\n', "utf-8")
    code, out, err = invoke("rules", "diff", DEFAULT_RULES, DEFAULT_RULES, "--input",
                            contacts, "--now", NOW, "--output", "json")
    assert code == 0, err
    assert f"{contacts}:2: skipped" in err and f"{contacts}:3: skipped" in err
    result = json.loads(out)
    assert (result["contacts"], result["skipped"], result["changed"]) == (2, 2, 0)


@pytest.mark.parametrize("crm", ["hubspot"], indirect=True)
def test_a_diff_of_a_named_connection_prints_explain_commands_that_read_it(
        crm: Crm, candidate: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    crm.setup()
    config = tmp_path / "named.toml"
    config.write_text(
        f'[connections.sb]\ntype = "hubspot"\nbase_url = "{crm.server.base_url}"\n'
        f'rules = "{DEFAULT_RULES.as_posix()}"\n'
        f'[state]\nurl = "sqlite:///{(tmp_path / "named.db").as_posix()}"\n', "utf-8")
    monkeypatch.setenv("CRMSYNC_CONNECTIONS__SB__TOKEN", crm.server.token)
    result = _diff_json(DEFAULT_RULES, candidate, "--config", config, "--connection", "sb")
    moves = [m for output in result["transitions"].values() for m in output["moves"]
             if m.get("explain")]
    assert moves, "the candidate moves some contacts"
    command = shlex.split(moves[0]["explain"])
    assert command[:2] == ["crmsync", "explain"] and "--connection" in command
    code, out, err = invoke(*command[1:], "--output", "json")
    assert code == 0, err
    assert {d["id"] for d in json.loads(out)} == set(moves[0]["samples"])
