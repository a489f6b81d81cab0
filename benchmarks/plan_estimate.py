"""How close ``crmsync plan``'s API-call estimate comes to the run that follows it.

Run on demand: ``python benchmarks/plan_estimate.py [contacts ...]`` (default 2000 20000). For
each CRM and size: a fresh sandbox, ``setup``, ``plan``, then ``run``; prints the estimate, the
actual calls and their ratio side by side. Also prints the echo cost: what the run after a
large write run re-reads.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from crmsync.config import load_settings
from crmsync.sandbox.launch import build_sandbox
from crmsync.sync import SyncOptions, SyncRun
from crmsync.wiring import load_parts

ROOT = Path(__file__).resolve().parents[1]


def measure(crm: str, contacts: int) -> dict[str, float]:
    """Plan, run and re-run one fresh sandbox; return the figures."""
    server = build_sandbox(crm, contacts=contacts, seed=3,
                           anchor=datetime(2026, 11, 23, tzinfo=UTC))
    with server, tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "crmsync.toml"
        config.write_text(
            f'[crm]\ntype = "{crm}"\nbase_url = "{server.base_url}"\ntoken = "{server.token}"\n'
            f'[rules]\npath = "{(ROOT / "rules/default.json").as_posix()}"\n'
            f'[state]\nurl = "sqlite:///{tmp}/state.db"\n', "utf-8")
        if crm == "hubspot":
            import json
            import urllib.request
            urllib.request.urlopen(urllib.request.Request(
                f"{server.base_url}/_sandbox/config", method="POST",
                data=json.dumps({"rate_limits": {"enabled": False}}).encode(),
                headers={"Content-Type": "application/json"}), timeout=30).read()
        parts = load_parts(load_settings(config, env={}))
        try:
            parts.connector.setup()
            plan = SyncRun(parts.connector, parts.ruleset, parts.store,
                           options=SyncOptions(dry_run=True)).execute()
            run = SyncRun(parts.connector, parts.ruleset, parts.store).execute()
            echo = SyncRun(parts.connector, parts.ruleset, parts.store).execute()
        finally:
            parts.close()
    estimate = plan.api_calls + plan.estimated_write_calls
    return {"estimate": estimate, "actual": run.api_calls, "ratio": estimate / run.api_calls,
            "written": run.counts.get("field_writes", 0), "echo_read": echo.counts.get("read", 0),
            "echo_calls": echo.api_calls}


def main(sizes: list[int]) -> None:
    print(f"{'crm':<11}{'contacts':>9}{'estimate':>10}{'actual':>8}{'ratio':>7}"
          f"{'written':>9}{'echo read':>11}{'echo calls':>11}")
    for size in sizes:
        for crm in ("hubspot", "salesforce"):
            m = measure(crm, size)
            print(f"{crm:<11}{size:>9}{m['estimate']:>10}{m['actual']:>8}{m['ratio']:>7.3f}"
                  f"{m['written']:>9}{m['echo_read']:>11}{m['echo_calls']:>11}", flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [2000, 20000])
