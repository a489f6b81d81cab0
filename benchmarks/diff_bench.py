"""``crmsync rules diff`` against the two ``crmsync evaluate`` runs it replaces, side by side.

Run: ``python benchmarks/diff_bench.py [--sizes 20000 100000] [--repeats 3]`` (a minute or two).

The population is the demo portal's (the HubSpot sandbox, 2,000 contacts, seed 1) exported with
``crmsync export``, repeated under fresh ids up to each size. Each repeat runs, interleaved:
``rules diff OLD NEW --input FILE --output json`` and ``evaluate`` of FILE with OLD, then with
NEW (writing to /dev/null). OLD is ``rules/default.json``; NEW raises ``min_employees`` to 50
(the README walkthrough's change). Reported: median wall time, the ratio of the diff to the two
evaluates together, and peak memory (max RSS) at each size, which should not grow with it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from crmsync.sandbox.launch import build_sandbox

ROOT = Path(__file__).resolve().parents[1]
NOW = "2026-11-23T09:00:00Z"


def _export(workdir: Path) -> list[bytes]:
    server = build_sandbox("hubspot", contacts=2000, seed=1,
                           anchor=datetime(2026, 11, 23, tzinfo=UTC),
                           config={"rate_limits": {"enabled": False}})
    with server:
        env = {**os.environ, "CRMSYNC_CRM__TYPE": "hubspot",
               "CRMSYNC_CRM__BASE_URL": server.base_url, "CRMSYNC_CRM__TOKEN": server.token,
               "CRMSYNC_STATE__URL": f"sqlite:///{workdir / 'state.db'}"}
        for args in (["setup"], ["export", str(workdir / "demo.jsonl")]):
            subprocess.run([sys.executable, "-m", "crmsync", *args], cwd=workdir, env=env,
                           check=True, capture_output=True)
    return (workdir / "demo.jsonl").read_bytes().splitlines()


def _population(lines: list[bytes], size: int, path: Path) -> None:
    with path.open("wb") as sink:
        for n in range(size):
            record = orjson.loads(lines[n % len(lines)])
            record["id"] = f"{record['id']}-{n // len(lines)}"
            sink.write(orjson.dumps(record) + b"\n")


def _timed(args: list[str]) -> float:
    """Wall seconds of one crmsync command (start-up included, as a user waits for it)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "crmsync", *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--repeats", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        old = ROOT / "rules" / "default.json"
        document = json.loads(old.read_text("utf-8"))
        document["params"]["min_employees"] = 50
        new = workdir / "candidate.json"
        new.write_text(json.dumps(document), "utf-8")
        lines = _export(workdir)
        print(f"{'contacts':>9} {'diff s':>8} {'2x evaluate s':>14} {'ratio':>6} "
              f"{'diff peak MB':>13}")
        for size in options.sizes:
            population = workdir / f"contacts-{size}.jsonl"
            _population(lines, size, population)
            diffs, evaluates = [], []
            for _ in range(options.repeats):
                seconds = _timed(["rules", "diff", str(old), str(new), "--input",
                                     str(population), "--now", NOW, "--output", "json"])
                diffs.append(seconds)
                both = 0.0
                for rules in (old, new):
                    both += _timed(["evaluate", "--rules", str(rules), "--input",
                                    str(population), "--now", NOW, "--output", os.devnull])
                evaluates.append(both)
            peak = _peak_of(["rules", "diff", str(old), str(new), "--input", str(population),
                             "--now", NOW, "--output", "json"])
            diff_s, eval_s = statistics.median(diffs), statistics.median(evaluates)
            print(f"{size:>9} {diff_s:>8.2f} {eval_s:>14.2f} {diff_s / eval_s:>6.2f} "
                  f"{peak:>13}")


def _peak_of(args: list[str]) -> int:
    """Peak RSS (MB) of one crmsync command, as the command's own process reports it."""
    code = ("import resource, runpy, sys; sys.argv = ['crmsync', *sys.argv[1:]]\n"
            "try:\n    runpy.run_module('crmsync', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, *args], check=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return int(done.stderr.strip().splitlines()[-1]) // 1024


if __name__ == "__main__":
    main()
