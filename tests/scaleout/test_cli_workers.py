"""``crmsync run --via workers`` and ``crmsync worker`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from crmsync.cli import main
from crmsync.sandbox.launch import build_sandbox
from sync.conftest import Crm

from .conftest import ANCHOR, write_config


def test_run_via_workers_without_a_broker_says_what_to_set(tmp_path: Path) -> None:
    with build_sandbox("hubspot", contacts=20, seed=3, anchor=ANCHOR) as server:
        crm = Crm("hubspot", server, tmp_path)
        for command in (["run", "--via", "workers"], ["worker"]):
            result = CliRunner().invoke(main, [*command, "--config", str(crm.config)])
            assert result.exit_code == 2, result.output
            assert "[workers] broker_url is not set" in result.stderr
            assert "Traceback" not in result.output


def test_run_via_workers_from_the_command_line(
    tmp_path: Path, broker_url: str, state_url: str, queue: str, workers_for: Any,
) -> None:
    with build_sandbox("hubspot", contacts=300, seed=3, anchor=ANCHOR) as server:
        crm = Crm("hubspot", server, tmp_path)
        crm.quiet_rate_limits()
        crm.setup()
        config = write_config(tmp_path / "workers.toml", crm="hubspot", base_url=server.base_url,
                              token=server.token, state_url=state_url, broker_url=broker_url,
                              queue=queue, shards=4)
        pool = workers_for(config)
        pool.start(2)
        result = CliRunner().invoke(main, ["run", "--via", "workers", "--full", "--config",
                                           str(config), "--output", "json"])
        assert result.exit_code == 0, f"{result.output}\n{pool.logs()}"
        summary = json.loads(result.stdout)
        assert summary["status"] == "ok"
        assert sum(summary["workers"].values()) == 4
        assert summary["counts"]["read"] == len(crm.contacts())
        history = CliRunner().invoke(main, ["runs", "--config", str(config), "--output", "json"])
        assert history.exit_code == 0, history.output
        assert json.loads(history.stdout)[0]["workers"] == summary["workers"]
