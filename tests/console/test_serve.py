"""``crmsync serve`` as a process: the command the demo prints opens the console."""

from __future__ import annotations

import json
import os
import shlex
import signal
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


def test_demo_serve_keeps_the_sandbox_up_so_the_console_explains_from_the_crm(
        tmp_path: Path) -> None:
    workdir = tmp_path / "d"
    process = subprocess.Popen(
        [sys.executable, "-m", "crmsync", "demo", "--contacts", "40", "--dir", str(workdir),
         "--serve", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"})
    try:
        assert process.stdout is not None and process.stderr is not None
        printed = []
        for line in process.stdout:
            printed.append(line)
            if line.startswith("Console:"):
                break
        assert "Ctrl-C" in printed[-1], printed
        samples = [line.split("e.g. ", 1)[1].split(":", 1)[0]
                   for line in printed if line.startswith("  e.g. ")]
        assert samples, printed
        first = process.stderr.readline().strip()
        assert first.startswith("crmsync console on http://127.0.0.1:"), first
        url = first.split(" on ", 1)[1].split(" ", 1)[0]
        # The rule trace is read from the demo's CRM: the sandbox is still up.
        with urllib.request.urlopen(f"{url}contacts?id={samples[0]}&explain=1",
                                    timeout=60) as response:
            page = response.read().decode()
        assert "rule / step" in page and "refused" not in page
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    # Ctrl-C stops the console and the sandbox: the usual 130 of an interrupted command.
    assert process.returncode == 130, err
    assert "Traceback" not in err, err
    # Stopped, the sandbox saved its data for a later `crmsync sandbox serve --state`.
    assert (workdir / "sandbox-hubspot.json").stat().st_size > 0
