"""What a shadow candidate (``[rules] shadow``) costs a run, side by side with none.

Run on demand (not a test):

    python benchmarks/shadow_bench.py [--contacts 5000] [--rounds 3]

Two measurements, interleaved rounds, best of ``--rounds``:

* **in memory**: the contacts' facts (read once through the connector) decided by production
  alone, then by production plus :class:`crmsync.sync.shadow.ShadowTally` (a second
  evaluation and the counting);
* **plan**: ``crmsync plan`` end to end (read every page from the sandbox over HTTP, decide,
  count; no writes), without and with the candidate. The sandbox runs in a child process.

The machine is shared and noisy: compare the ratios, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from crmsync.config import load_settings
from crmsync.rules import load_ruleset
from crmsync.sync import SyncOptions, SyncRun
from crmsync.sync.shadow import ShadowTally
from crmsync.wiring import load_parts

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sync_bench import Sandbox  # noqa: E402 - the sandbox child process of the sync benchmark

ROOT = Path(__file__).resolve().parents[1]


def candidate(path: Path) -> Path:
    """The rules README's walkthrough candidate (lower ICP and page-view thresholds)."""
    doc = json.loads((ROOT / "rules/default.json").read_text("utf-8"))
    doc["version"] = "candidate-1"
    doc["params"]["icp_min_employees"] = 20
    doc["params"]["many_page_views"] = 3
    path.write_text(json.dumps(doc), "utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="crmsync-shadow-bench-"))
    shadow_file = candidate(work / "candidate.json")
    sandbox = Sandbox("hubspot", args.contacts, extra=["--no-rate-limits"])
    try:
        configs = {}
        for name, extra in (("none", ""), ("shadow", f'shadow = "{shadow_file}"\n')):
            configs[name] = work / f"{name}.toml"
            configs[name].write_text(
                f'[crm]\ntype = "hubspot"\nbase_url = "{sandbox.base_url}"\n'
                f'token = "{sandbox.token}"\n[rules]\npath = "{ROOT / "rules/default.json"}"\n'
                f'{extra}[state]\nurl = "sqlite:///{work / name}.db"\n', "utf-8")
        parts = load_parts(load_settings(configs["none"], env={}))
        try:
            parts.connector.setup()
            contacts = [c for stream in parts.connector.streams()
                        for page in parts.connector.read(stream, None) if not page.related
                        for c in page.contacts]
        finally:
            parts.close()
        production = load_ruleset(ROOT / "rules/default.json")
        shadow = load_ruleset(shadow_file)
        now = contacts[0].modified_at or None
        memory: dict[str, float] = {"none": float("inf"), "shadow": float("inf")}
        plans: dict[str, float] = {"none": float("inf"), "shadow": float("inf")}
        for _ in range(args.rounds):
            for name in ("none", "shadow"):
                started = time.perf_counter()
                tally = ShadowTally(shadow) if name == "shadow" else None
                for contact in contacts:
                    decision = production.evaluate(contact.facts, now=now, contact_id=contact.id,
                                                   coerced=True)
                    if tally is not None:
                        tally.add(contact, decision, now=now, coerced=True)
                memory[name] = min(memory[name], time.perf_counter() - started)
            for name in ("none", "shadow"):
                parts = load_parts(load_settings(configs[name], env={}))
                try:
                    started = time.perf_counter()
                    summary = SyncRun(parts.connector, parts.ruleset, parts.store,
                                      options=SyncOptions(dry_run=True),
                                      shadow=parts.shadow).execute()
                    plans[name] = min(plans[name], time.perf_counter() - started)
                    assert summary.counts["evaluated"] == len(contacts)
                finally:
                    parts.close()
    finally:
        sandbox.close()
    print(f"{len(contacts)} HubSpot contacts, best of {args.rounds} interleaved rounds")
    print(f"{'':28}{'no shadow':>12}{'shadow':>12}{'ratio':>8}")
    for label, table in (("decide in memory (s)", memory), ("crmsync plan (s)", plans)):
        print(f"{label:28}{table['none']:>12.3f}{table['shadow']:>12.3f}"
              f"{table['shadow'] / table['none']:>8.2f}")


if __name__ == "__main__":
    main()
