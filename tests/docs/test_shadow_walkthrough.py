"""The "Shadow runs, then promote" walkthrough of rules/README.md runs as written.

On the demo data (HubSpot sandbox, 2,000 contacts, seed 1) through the real SDK: the commands
of the walkthrough, in order, print what the README shows. The demo data is dated from today,
so counts may drift from the documented ones over time: outputs are compared line by line with
numbers, run ids and table widths left out. The claims the walkthrough makes are asserted
exactly: the runs write nothing for the candidate, the report adds the runs up, and after
``rules promote`` the next run re-classifies the very contacts the shadow predicted.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from crmsync.cli import main
from crmsync.sandbox.launch import build_sandbox

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "rules" / "README.md"
_BLOCK = re.compile(r"<!-- check: (shadow-[\w-]+) -->\n```text\n(.*?)\n```", re.DOTALL)


def documented(kind: str) -> list[str]:
    """The lines of the walkthrough's ``kind`` block (its ``$ command`` line left out)."""
    [block] = [m.group(2) for m in _BLOCK.finditer(README.read_text("utf-8"))
               if m.group(1) == kind]
    return [line for line in block.splitlines() if not line.startswith("$ ")]


def shape(line: str) -> str:
    """A line without what differs from run to run: ids, stamps, numbers, table widths."""
    line = re.sub(r"r\d{8}T\d{6}-[0-9a-f]{4}", "RUN", line)
    line = re.sub(r"bak-\d{8}T\d{6}Z", "bak-STAMP", line)
    line = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d", "WHEN", line)
    line = re.sub(r"\(([^()]*→[^()]*)\)", "(MOVES)", line)
    line = re.sub(r"[+-]?\d+(?:\.\d+)?", "N", line)
    line = re.sub(r"([━─ ])\1+", r"\1", line)
    return line.strip()


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.exit_code, result.stdout


def candidate(path: Path) -> None:
    """The walkthrough's candidate: smaller companies and fewer page views count."""
    doc = json.loads((ROOT / "rules/default.json").read_text("utf-8"))
    doc["version"] = "candidate-1"
    doc["params"]["icp_min_employees"] = 20
    doc["params"]["many_page_views"] = 3
    # The one embedded example the lower threshold changes, updated by the candidate's author.
    doc["tests"] = [t for t in doc["tests"] if not t["name"].startswith("20 employees")]
    path.write_text(json.dumps(doc, indent=2), "utf-8")


@pytest.mark.slow
def test_the_shadow_walkthrough_runs_as_written(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules/default.json").write_bytes((ROOT / "rules/default.json").read_bytes())
    candidate(tmp_path / "rules/candidate.json")
    monkeypatch.chdir(tmp_path)
    with build_sandbox("hubspot", contacts=2000, seed=1) as server:
        request = urllib.request.Request(
            f"{server.base_url}/_sandbox/config", method="POST",
            data=json.dumps({"rate_limits": {"enabled": False}}).encode(),
            headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=30).close()
        Path("crmsync.toml").write_text(
            f'[crm]\ntype = "hubspot"\nbase_url = "{server.base_url}"\n'
            f'token = "{server.token}"\n'
            '[rules]\npath = "rules/default.json"\nshadow = "rules/candidate.json"\n'
            '[state]\nurl = "sqlite:///state.db"\n', "utf-8")
        invoke("setup")
        _, first = invoke("run")
        [line] = [x for x in first.splitlines() if x.startswith("shadow rules")]
        assert shape(line) == shape(documented("shadow-run")[0])
        _, out = invoke("run", "--output", "json")
        second = json.loads(out)
        assert second["shadow"]["contacts"] == second["counts"]["evaluated"] == 2000

        _, text = invoke("shadow", "report", "--runs", "5")
        shown = [shape(x) for x in text.splitlines()]
        expected = documented("shadow-report")
        for want in expected[:expected.index(next(x for x in expected if x.startswith("…")))]:
            assert shape(want) in shown, want
        _, out = invoke("shadow", "report", "--runs", "5", "--output", "json")
        report = json.loads(out)
        assert report["total"]["contacts"] == 4000 and report["total"]["runs"] == 2
        predicted = report["runs"][0]["status_moves"]
        assert predicted, "the documented candidate moves contacts"

        _, text = invoke("rules", "promote")
        assert [shape(x) for x in text.splitlines()] == [
            shape(x) for x in documented("shadow-promote")]
        assert "rules/candidate.json" in text.splitlines()[0]

        _, out = invoke("run", "--output", "json")
        after = json.loads(out)
    assert all(scope.startswith("full: rules changed") for scope in after["scope"].values())
    assert after["counts"]["evaluated"] == 2000 and after["shadow"] is None
    status_moves = {k: v for k, v in after["reclassified"].items() if "miss" not in k}
    assert status_moves == predicted
