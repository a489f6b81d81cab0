"""``crmsync serve`` as a process: the command the demo prints opens the console."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from crmsync.cli import main


def test_the_demo_prints_a_console_command_that_serves_its_runs(tmp_path: Path) -> None:
    demo = CliRunner().invoke(main, ["demo", "--contacts", "40", "--dir", str(tmp_path / "d")])
    assert demo.exit_code == 0, demo.output
    line = demo.stdout.split("\nConsole: ", 1)[1].splitlines()[0]
    command = shlex.split(line.split("   #", 1)[0])
    assert command[:2] == ["crmsync", "serve"] and "--config" in command, line
    process = subprocess.Popen(
        [sys.executable, "-m", "crmsync", *command[1:], "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        first = process.stderr.readline().strip()
        assert first.startswith("crmsync console on http://127.0.0.1:"), first
        assert "no login" in first
        url = first.split(" on ", 1)[1].split(" ", 1)[0]
        with urllib.request.urlopen(url + "runs", timeout=30) as response:
            page = response.read().decode()
        runs = CliRunner().invoke(main, ["runs", "--config", command[-1], "--output", "json"])
        run_ids = [r["run_id"] for r in json.loads(runs.stdout)]
        assert run_ids and all(f'href="/runs/{run_id}"' in page for run_id in run_ids)
    finally:
        process.terminate()
        out, err = process.communicate(timeout=30)
    assert "Traceback" not in err, err
