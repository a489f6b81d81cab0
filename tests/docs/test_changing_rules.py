"""The "Changing rules safely" walkthrough of rules/README.md runs as written, and every number
its outputs show is recomputed here from ``crmsync evaluate`` decisions (not from the diff).

The documented commands run in a shell against the demo portal (the HubSpot sandbox with the
demo's 2,000 contacts, seed 1); ``$(date -u +%F)`` is the sandbox's anchor day, which is what
it is for a reader (the sandbox seeds history up to today).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from crmsync.cli import main
from crmsync.sandbox.launch import build_sandbox

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "rules" / "README.md"
ANCHOR = datetime(2026, 11, 23, tzinfo=UTC)
_STEP = re.compile(r"<!-- check: walkthrough(?: exit=(\d+))? -->\n```shell\n(.*?)\n```"
                   r"(?:\n\n```text\n(.*?)\n```)?", re.DOTALL)
_TABLE_ROW = re.compile(r"^│(.*)│$")


def _steps() -> list[tuple[int, str, str | None]]:
    text = README.read_text("utf-8")
    section = text[text.index("## Changing rules safely"):]
    return [(int(m.group(1) or 0), m.group(2), m.group(3)) for m in _STEP.finditer(section)]


def _run_walkthrough(workdir: Path) -> list[tuple[str, int, str, str | None]]:
    """Run every documented step; return (script, exit code, stdout, documented output)."""
    shutil.copytree(ROOT / "rules", workdir / "rules", ignore=shutil.ignore_patterns("*.md"))
    bin_dir = str(Path(sys.executable).parent)
    done = []
    server = build_sandbox("hubspot", contacts=2000, seed=1, anchor=ANCHOR,
                           config={"rate_limits": {"enabled": False}})
    with server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRMSYNC_")}
        # What the walkthrough's `export` line sets, with this sandbox's URL and token.
        env.update(CRMSYNC_CRM__TYPE="hubspot", CRMSYNC_CRM__BASE_URL=server.base_url,
                   CRMSYNC_CRM__TOKEN=server.token, COLUMNS="200",
                   PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}")
        for expected_exit, script, documented in _steps():
            ran = subprocess.run(
                ["bash", "-o", "pipefail", "-c",
                 script.replace("$(date -u +%F)", ANCHOR.date().isoformat())],
                cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
            assert ran.returncode == expected_exit, (script, ran.stderr)
            done.append((script, ran.returncode, ran.stdout, documented))
    return done


def _evaluate(rules: Path, contacts: Path, now: str) -> dict[str, dict[str, Any]]:
    out = contacts.with_name(f"{rules.stem}.decisions.jsonl")
    result = CliRunner().invoke(main, ["evaluate", "--rules", str(rules), "--input",
                                       str(contacts), "--now", now, "--output", str(out)])
    assert result.exit_code == 0, result.stderr
    return {d["id"]: d for d in map(json.loads, out.read_text("utf-8").splitlines())}


def _tables(text: str) -> dict[str, list[list[str]]]:
    """Rich tables of a text output, by the title line above each: rows of cell texts."""
    tables: dict[str, list[list[str]]] = {}
    title = ""
    for line in text.splitlines():
        row = _TABLE_ROW.match(line)
        if row:
            tables.setdefault(title, []).append([c.strip() for c in row.group(1).split("│")])
        elif not line.startswith(("┏", "┃", "┡", "└", " ")):
            title = line
    return tables


def _number(cell: str) -> int:
    return 0 if cell == "·" else int(cell)


def _check_diff_output(text: str, old: dict, new: dict, candidate: dict) -> None:
    """Every number of a `rules diff` text output, against decisions counted here."""
    ids = sorted(old)
    purposes = {c: ({t["purpose"] for t in old[c]["tasks"]},
                    {t["purpose"] for t in new[c]["tasks"]}) for c in ids}
    changed = [c for c in ids if any(old[c][k] != new[c][k]
                                     for k in ("status", "miss_type", "score", "reason"))
               or purposes[c][0] != purposes[c][1]]
    assert f"{len(ids)} contacts, {len(changed)} would change" in text
    tables = _tables(text)
    for output, title in (("status", "Status"), ("miss_type", "Miss type")):
        pairs = Counter((old[c][output], new[c][output]) for c in ids)
        [rows] = [rows for name, rows in tables.items() if name.startswith(f"{title}: old")]
        values = [row[0] for row in rows if row[0] != "total"]
        for row in rows:
            cells = [_number(c) for c in row[1:-1]]
            if row[0] == "total":
                assert cells == [sum(pairs[(o, v)] for o in values) for v in values]
            else:
                assert cells == [pairs[(row[0], v)] for v in values], row
                assert _number(row[-1]) == sum(n for (o, _), n in pairs.items() if o == row[0])
        # The changed cells listed under this matrix (up to the next section's title).
        section = text.split(f"{title}: old", 1)[1].split("\nScore:" if output == "miss_type"
                                                         else "\nMiss type:", 1)[0]
        listed = re.findall(r"^  (\w+) → (\w+): (\d+) \(([\d.]+)% of \1\); e\.g\. (.*)$",
                            section, re.M)
        assert {(frm, to) for frm, to, *_ in listed} == {p for p in pairs if p[0] != p[1]}
        for frm, to, count, share, samples in listed:
            assert int(count) == pairs[(frm, to)]
            base = sum(n for (o, _), n in pairs.items() if o == frm)
            assert float(share) == round(100 * int(count) / base, 1)
            for cid in samples.split(", "):
                assert (old[cid][output], new[cid][output]) == (frm, to)
    mean_old = round(sum(old[c]["score"] for c in ids) / len(ids), 2)
    mean_new = round(sum(new[c]["score"] for c in ids) / len(ids), 2)
    lowered = sum(new[c]["score"] < old[c]["score"] for c in ids)
    raised = sum(new[c]["score"] > old[c]["score"] for c in ids)
    assert (f"Score: mean {mean_old} → {mean_new} ({mean_new - mean_old:+.2f}); raised "
            f"{raised}, lowered {lowered}, unchanged {len(ids) - raised - lowered}") in text
    [bands] = [rows for name, rows in tables.items() if name.startswith("Score:")]
    for band, n_old, n_new, _change in bands:
        low, high = map(int, band.split("-"))
        assert int(n_old) == sum(low <= old[c]["score"] <= high for c in ids)
        assert int(n_new) == sum(low <= new[c]["score"] <= high for c in ids)
    reasons = sum(old[c]["reason"] != new[c]["reason"] for c in ids)
    assert f"Reasons changed: {reasons}" in text
    creates = Counter(p for c in ids for p in purposes[c][1] - purposes[c][0])
    keep_open = {t["purpose"] for t in candidate["tasks"] if not t["close_when_obsolete"]}
    closes = Counter(p for c in ids for p in purposes[c][0] - purposes[c][1]
                     if p not in keep_open)
    assert (f"Tasks: {sum(creates.values())} would be created, "
            f"{sum(closes.values())} closed") in text
    for purpose, n in closes.items():
        assert f"  closes {purpose}: {n}" in text
    hits_old = Counter(r for c in ids for r in old[c]["rules"])
    hits_new = Counter(r for c in ids for r in new[c]["rules"])
    moved = {r for r in hits_old.keys() | hits_new.keys() if hits_old[r] != hits_new[r]}
    [movers] = [rows for name, rows in tables.items() if name.startswith("Rules whose hits")]
    assert {row[0] for row in movers} == moved
    for rule, _output, n_old, n_new, _change in movers:
        assert (int(n_old), int(n_new)) == (hits_old[rule], hits_new[rule])
    deltas = [abs(int(row[3]) - int(row[2])) for row in movers]
    assert deltas == sorted(deltas, reverse=True)
    rule_ids = [r["id"] for d in candidate["decisions"] for r in d["rules"]]
    rule_ids += [t["id"] for t in candidate["tasks"]]
    never = [r for r in rule_ids if not hits_new[r]]
    line = re.search(r"^Never fire under the new rules: (.*)$", text, re.M)
    assert (line.group(1).split(", ") if line else []) == never


@pytest.mark.skipif(shutil.which("bash") is None or shutil.which("sed") is None,
                    reason="the walkthrough's commands are written for a POSIX shell with sed")
def test_walkthrough_runs_and_its_numbers_are_what_the_decisions_say(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = _run_walkthrough(tmp_path)
    assert len(steps) == 4
    contacts = tmp_path / "contacts.jsonl"
    assert len(contacts.read_text("utf-8").splitlines()) == 2000
    assert "@" not in contacts.read_text("utf-8"), "the export was redacted"
    candidate_path = tmp_path / "rules" / "candidate.json"
    candidate = json.loads(candidate_path.read_text("utf-8"))
    default = json.loads((tmp_path / "rules" / "default.json").read_text("utf-8"))
    assert (default["params"]["min_employees"], candidate["params"]["min_employees"]) == (10, 50)
    now = f"{ANCHOR.date().isoformat()}T09:00:00Z"
    old = _evaluate(tmp_path / "rules" / "default.json", contacts, now)
    new = _evaluate(candidate_path, contacts, now)
    diff_steps = [s for s in steps if s[3] is not None]
    [(_, _, diff_out, diff_doc), (guard_script, _, guard_out, guard_doc)] = diff_steps
    # The documented output and today's output both say what the decisions say.
    _check_diff_output(diff_doc, old, new, candidate)
    _check_diff_output(diff_out, old, new, candidate)
    assert _tables(diff_doc).keys() == _tables(diff_out).keys()
    # The explain commands shown for a cell show those contacts deciding as the cell says.
    explain = re.search(r"^    (crmsync explain .*)$", diff_doc, re.M)
    assert explain
    words = shlex.split(explain.group(1).replace("2026-11-23", ANCHOR.date().isoformat()))
    monkeypatch.chdir(tmp_path)  # the command names files relative to the walkthrough's folder
    shown = CliRunner().invoke(main, [*words[1:], "--output", "json"])
    assert shown.exit_code == 0, shown.stderr
    cell = re.search(r"^  (\w+) → (\w+): ", diff_doc, re.M)
    assert cell
    assert {d["status"] for d in json.loads(shown.stdout)} == {cell.group(2)}
    # The guard: its share of the "from" contacts, recomputed.
    guard = re.search(r'--fail-on "([^"]+)"', guard_script)
    assert guard
    frm, to, limit = re.fullmatch(r"status:(\w+)->(\w+)>([\d.]+)%", guard.group(1)).groups()
    base = sum(old[c]["status"] == frm for c in old)
    count = sum(old[c]["status"] == frm and new[c]["status"] == to for c in old)
    tripped = 100 * count / base > float(limit)
    assert tripped, "the documented guard is one that trips"
    line = (f"guard {guard.group(1)}: TRIPPED ({count} of {base}, "
            f"{100 * count / base:.1f}%)")
    assert guard_doc.strip() == line
    assert guard_out.strip() == line
