"""Admin edges: init's schema, undo --dry-run, a taken sandbox port, the demo's follow-ups,
``-v`` and ``--log-format``."""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from crmsync.cli import main
from crmsync.errors import ExitCode
from crmsync.sandbox.launch import build_sandbox
from sync.conftest import ANCHOR, Crm


def test_init_writes_a_rule_file_whose_schema_resolves_beside_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["init", "--dir", str(tmp_path / "new")])
    assert result.exit_code == 0, result.output
    rules = tmp_path / "new" / "rules" / "default.json"
    document = json.loads(rules.read_text("utf-8"))
    schema_path = (rules.parent / document["$schema"]).resolve()
    assert schema_path.is_file(), f"$schema {document['$schema']!r} does not resolve"
    schema = json.loads(schema_path.read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(document)  # what VS Code checks
    # The written folder is usable as it is: the rules validate and their tests pass.
    check = CliRunner().invoke(main, ["rules", "test", str(rules)])
    assert check.exit_code == 0, check.output


def test_undo_dry_run_shows_what_undo_would_write_and_writes_nothing(crm: Crm) -> None:
    crm.setup()
    done = crm.run()
    edited = crm.contacts()[0]["id"]
    crm.edit(edited, {crm.shape["reason"]: "set by a rep"})
    crm.server.reset()
    result = CliRunner().invoke(main, ["undo", done.run_id, "--dry-run", "--config",
                                       str(crm.config), "--output", "json"])
    assert result.exit_code == 0, result.output
    preview = json.loads(result.stdout)
    assert crm.server.call_counts()["writes"] == 0
    restores = {r["record_id"]: r for r in preview["restores"]}
    assert edited not in restores and preview["would_skip"] == 1
    assert preview["would_restore"] == len(restores) == done.counts["field_writes"] - 1
    some = next(iter(restores.values()))
    assert some["fields"]["status"]["restore"] in (None, "")
    assert some["fields"]["status"]["now"]
    assert preview["would_close_tasks"] == done.counts["tasks_created"]

    # Nothing recorded, nothing changed: the real undo then does exactly what was shown.
    undone = CliRunner().invoke(main, ["undo", done.run_id, "--config", str(crm.config),
                                       "--output", "json"])
    real = json.loads(undone.stdout)
    assert (real["restored"], real["skipped"], real["tasks_closed"]) == (
        preview["would_restore"], preview["would_skip"], preview["would_close_tasks"])

    text = CliRunner().invoke(main, ["undo", done.run_id, "--dry-run", "--config",
                                     str(crm.config)])
    assert text.stdout.startswith(f"undo of {done.run_id} (dry run, nothing written): "
                                  "would restore 0 records")


def test_sandbox_serve_on_a_taken_port_is_one_line_and_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "crmsync", "sandbox", "serve", "--port", str(port),
             "--contacts", "5"], capture_output=True, text=True, timeout=60)
    assert done.returncode == ExitCode.BAD_CONFIG
    assert done.stderr.strip().splitlines() == [
        f"crmsync: error: port {port} is in use; try --port 0"]


def _serve_first_line(args: list[str], cwd: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-m", "crmsync", *args], cwd=cwd, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def test_the_demo_look_closer_commands_work_as_printed(tmp_path: Path) -> None:
    demo = CliRunner().invoke(main, ["demo", "--contacts", "60", "--dir", str(tmp_path / "d")])
    assert demo.exit_code == 0, demo.output
    printed = demo.stdout.split("Look closer:", 1)[1].split("\nConsole:", 1)[0].splitlines()
    commands = [line.split("   #", 1)[0].strip() for line in printed if line.strip()]
    assert len(commands) == 4 and all(c.startswith("crmsync ") for c in commands), commands
    for command in commands:
        argv = shlex.split(command)[1:]
        if argv[:2] == ["sandbox", "serve"]:
            process, first = _serve_first_line(argv, tmp_path)
            try:
                assert first.startswith("http://127.0.0.1:") and " token=" in first, first
            finally:
                process.terminate()
                process.communicate(timeout=30)  # also closes the pipes
            assert process.returncode in (0, 143, -15)
            continue
        result = CliRunner().invoke(main, argv)
        assert result.exit_code == 0, (command, result.output)


def test_verbose_and_json_log_format_work_for_every_command(tmp_path: Path, crm: Crm) -> None:
    crm.setup()
    # JSON log lines, accepted before or after the command name.
    for args in (["--log-format", "json", "-v", "run", "--config", str(crm.config)],
                 ["run", "--config", str(crm.config), "-v", "--log-format", "json"]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        logged = [json.loads(line) for line in result.stderr.splitlines()
                  if line.startswith("{")]
        assert logged, result.stderr
        assert {"ts", "level", "logger", "message"} <= set(logged[0])
        assert any(entry["logger"] == "crmsync.sync" and "crmsync_run=" in entry["message"]
                   for entry in logged)
    # Every command accepts the options.
    for args in (["runs"], ["rejections"], ["report", "--out", str(tmp_path / "report")],
                 ["plan"], ["setup"]):
        result = CliRunner().invoke(main, [*args, "--config", str(crm.config), "-v",
                                           "--log-format", "text"])
        assert result.exit_code in (0, 1), (args, result.output)


def test_retries_are_said_as_they_wait(crm: Crm) -> None:
    crm.setup()
    crm.server.install_faults({"rules": [{"method": "*", "path": "/", "times": 1,
                                          "status": 503, "retry_after": 0}]})
    started = time.monotonic()
    result = CliRunner().invoke(main, ["run", "--config", str(crm.config)])
    assert time.monotonic() - started < 120
    assert result.exit_code == 0, result.output
    assert any(line.startswith("crmsync: warning: retrying in ") and "(1/4)" in line
               for line in result.stderr.splitlines()), result.stderr


def test_the_progress_bar_shows_rate_and_says_when_it_paces(tmp_path: Path) -> None:


    # Several pages (full reads search 200 contacts a page), so the bar has a rate to show.
    with build_sandbox("hubspot", contacts=650, seed=7, anchor=ANCHOR) as server:
        crm = Crm("hubspot", server, tmp_path)
        crm.setup()
        # A 10-second allowance of 8 calls: the run (about 12 calls) must wait for the window.
        crm.admin("POST", "config", {"rate_limits": {"enabled": True, "per_10s": 8}})
        result = CliRunner().invoke(main, ["run", "--full", "--config", str(crm.config)],
                                    env={"TTY_COMPATIBLE": "1", "COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "contacts/s" in result.stderr
    assert "pacing for the rate limit" in result.stderr


def test_a_demo_in_a_relative_folder_keeps_its_state_in_that_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    demo = CliRunner().invoke(main, ["demo", "--contacts", "20", "--dir", "d"])
    assert demo.exit_code == 0, demo.output
    assert (tmp_path / "d" / "state.db").is_file()
    assert not (tmp_path / "d" / "d").exists()
