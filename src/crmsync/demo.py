"""``crmsync demo``: the whole product against a seeded sandbox CRM, with zero configuration.

It starts an emulator on loopback, writes a settings file pointing at it, creates crmsync's
fields, runs a full sync with the default rules and reports the API calls it used next to the
minimum the CRM's page and batch sizes allow. The sandbox's data and the state store stay in the
work folder, so the result can be looked at afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crmsync.config import load_settings
from crmsync.connectors.base import SetupReport
from crmsync.funnel_source import live_report
from crmsync.report import write_report
from crmsync.sandbox.launch import build_sandbox
from crmsync.sync import RunSummary, SyncOptions, SyncRun, minimum_api_calls
from crmsync.wiring import load_parts

ProgressFactory = Callable[[int | None], AbstractContextManager[Callable[[int], None]]]


@dataclass
class DemoResult:
    """What the demo did and where it left things."""

    setup: SetupReport
    summary: RunSummary
    api_calls: int
    minimum_calls: int
    calls_by_endpoint: dict[str, int]
    config_path: Path
    sandbox_state: Path
    report: Path
    rules_path: Path

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict for ``--output json``."""
        return {
            "setup": {"created": self.setup.created, "existing": self.setup.existing},
            "run": self.summary.to_json(),
            "api_calls": self.api_calls,
            "minimum_api_calls": self.minimum_calls,
            "calls_by_endpoint": self.calls_by_endpoint,
            "config": str(self.config_path),
            "sandbox_state": str(self.sandbox_state),
            "report": str(self.report),
        }


def run_demo(
    *, crm: str, contacts: int, seed: int, workdir: Path, progress: ProgressFactory,
    then: Callable[[DemoResult], None] | None = None,
) -> DemoResult:
    """Run the demo in ``workdir`` and return what happened.

    ``then`` is called with the result while the sandbox CRM still runs (its state is saved
    when it stops, so a later ``crmsync sandbox serve --state`` brings it back).
    """
    # Absolute: the settings file's relative paths are read from its own folder, workdir.
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    sandbox_state = workdir / f"sandbox-{crm}.json"
    server = build_sandbox(crm, contacts=contacts, seed=seed, state_file=sandbox_state)
    server.start()
    try:
        config_path = workdir / "crmsync.toml"
        config_path.write_text(
            "# Written by `crmsync demo`: points at a sandbox CRM that is gone once the demo "
            "ends.\n"
            f'[crm]\ntype = "{crm}"\nbase_url = "{server.base_url}"\ntoken = "{server.token}"\n'
            f'[state]\nurl = "sqlite:///{(workdir / "state.db").as_posix()}"\n',
            "utf-8",
        )
        parts = load_parts(load_settings(config_path, env={}))
        try:
            setup = parts.connector.setup()
            server.reset()  # count only what the sync itself costs
            with progress(contacts) as advance:
                summary = SyncRun(
                    parts.connector, parts.ruleset, parts.store, options=SyncOptions(full=True),
                    on_progress=lambda stream, n: advance(n),
                ).execute()
            calls = server.call_counts()
            limits = parts.connector.limits
            rules_file = parts.ruleset.filename
            _, report = live_report(parts.store, 20, summary.started_at)
            report_html, _ = write_report(report, workdir / "report")
        finally:
            parts.close()
        deals = sum(len(person.deals) for person in server.org.people) if server.org else 0
        minimum = minimum_api_calls(summary, limits, related_records=deals)
        result = DemoResult(setup, summary, int(calls["total"]), minimum, calls["by_endpoint"],
                            config_path, sandbox_state, report_html, Path(rules_file))
        if then is not None:
            then(result)  # the sandbox CRM is still up: `demo --serve` runs the console here
    finally:
        server.stop()
    return result
