"""One error format: ``crmsync: error: ...`` on stderr, one JSON shape, no secret, no emoji."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from crmsync.cli import main
from crmsync.errors import ExitCode
from crmsync.state import StateStore
from sync.conftest import Crm

#: A HubSpot private-app token shape: what must never reach a terminal.
SECRET = "pat-na1-0a1b2c3d-4e5f-6789-abcd-ef0123456789"


def _crmsync(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "crmsync", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=120)


def test_an_unexpected_error_prints_its_class_and_a_redacted_message(tmp_path: Path) -> None:
    # A damaged sandbox data file: restoring it raises a plain ValueError from int(), whose
    # message quotes the bad value, here a bearer token.
    state = tmp_path / "sandbox.json"
    state.write_text(json.dumps({"next_id": f"Bearer {SECRET}", "last_ms": 0}), "utf-8")
    args = ("sandbox", "serve", "--port", "0", "--contacts", "3", "--state", str(state))
    done = _crmsync(*args, cwd=tmp_path)
    assert done.returncode == 1
    assert SECRET not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[0].startswith("crmsync: error: ValueError: invalid literal for int()")
    assert "Bearer ***" in lines[0]
    assert lines[1].startswith("hint: re-run with --debug")

    debug = _crmsync("--debug", *args, cwd=tmp_path)
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert "restore" in debug.stderr  # where it happened
    assert SECRET not in debug.stderr + debug.stdout


def test_an_unexpected_error_has_the_json_error_shape(crm: Crm) -> None:
    # A hand-damaged ledger row (its rejections are not a list) breaks `runs`.
    store = StateStore.open(f"sqlite:///{(crm.workdir / 'state.db').as_posix()}")
    try:
        run_id = store.start_run(crm.crm, "run")
        store.finish_run(run_id, "ok", 0, {"rejections": 5})
    finally:
        store.close()
    result = CliRunner().invoke(main, ["runs", "--config", str(crm.config), "--output", "json"])
    assert result.exit_code == 1
    payload = json.loads(result.stdout)
    assert payload["error"] == "internal"
    assert payload["exit_code"] == 1
    assert payload["message"].startswith("TypeError: ")
    assert payload["hint"]


def _error_shape(payload: dict[str, object]) -> set[str]:
    return set(payload) - {"diagnostics", "run", "run_id"}


def test_every_command_fails_with_the_same_json_shape(tmp_path: Path, crm: Crm) -> None:
    missing = str(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text(crm.config.read_text("utf-8").replace(crm.server.base_url,
                                                            "http://127.0.0.1:9")
                      + "[sync]\nmax_attempts = 1\n", "utf-8")
    failures = {
        "run": ["run", "--config", missing, "--output", "json"],
        "plan": ["plan", "--config", missing, "--output", "json"],
        "setup": ["setup", "--config", missing, "--output", "json"],
        "undo": ["undo", "r1", "--config", str(crm.config), "--output", "json"],
        "rejections": ["rejections", "r-none", "--config", str(crm.config), "--output", "json"],
        "run (network)": ["run", "--config", str(broken), "--output", "json"],
    }
    shapes = {}
    for name, args in failures.items():
        result = CliRunner().invoke(main, args)
        assert result.exit_code in (ExitCode.BAD_CONFIG, ExitCode.TRANSIENT), (name, result.output)
        payload = json.loads(result.stdout)
        assert payload["exit_code"] == result.exit_code, name
        assert payload["error"] in ("bad_config", "transient"), name
        shapes[name] = _error_shape(payload)
        # Text mode: the same failure is one `crmsync: error:` line (after any diagnostics).
        text = CliRunner().invoke(main, [a for a in args if a not in ("--output", "json")])
        assert text.stdout == "", (name, text.stdout)
        errors = [line for line in text.stderr.splitlines()
                  if line.startswith("crmsync: error")]
        assert len(errors) == 1 and errors[0].startswith("crmsync: error: "), (name, text.stderr)
        assert "Error:" not in errors[0] and "RunInProgress" not in errors[0], errors[0]
        if result.exit_code == ExitCode.TRANSIENT:
            # A scheduler's operator learns the one thing to know: running again is safe.
            assert payload["hint"] and "run again" in payload["hint"], payload
            assert f"hint: {payload['hint']}" in text.stderr
    assert len({frozenset(s) for s in shapes.values()}) == 1, shapes
    assert {"error", "message", "hint", "exit_code"} <= next(iter(shapes.values()))


def test_a_failed_run_prints_no_table_of_zeros(crm: Crm) -> None:
    # No `crmsync setup` yet: the run stops before reading anything.
    result = CliRunner().invoke(main, ["run", "--config", str(crm.config)])
    assert result.exit_code == ExitCode.BAD_CONFIG
    assert result.stdout == ""
    assert result.stderr.startswith("crmsync: error: ")
    assert "crmsync setup" in result.stderr


def test_line_100_is_printed_as_a_line_number_not_an_emoji(tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text("\n" * 99 + '{"version": }\n', "utf-8")
    result = CliRunner().invoke(main, ["rules", "validate", str(rules)])
    assert result.exit_code == ExitCode.BAD_CONFIG
    assert f"{rules}:100:" in result.stderr
    assert "\N{HUNDRED POINTS SYMBOL}" not in result.stderr


def test_the_readme_documents_every_exit_code() -> None:
    from crmsync.cli.failures import EXIT_INTERRUPTED, EXIT_TERMINATED
    from crmsync.errors import ExitCode

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text("utf-8")
    table = [line for line in readme.splitlines() if line.startswith("| ")]
    documented = {cell.strip() for line in table for cell in line.split("|")[1].split("/")}
    for code in [*(int(c) for c in ExitCode), EXIT_INTERRUPTED, EXIT_TERMINATED]:
        assert str(code) in documented, code


def test_a_reader_that_stops_early_ends_the_command_quietly(tmp_path: Path) -> None:
    # `crmsync ... | head -1`: the reader closes the pipe after one line of many.
    contacts = tmp_path / "contacts.jsonl"
    contacts.write_text("".join(json.dumps({"id": f"c{i}", "employees": 120}) + "\n"
                                for i in range(20_000)), "utf-8")
    rules = Path(__file__).resolve().parents[2] / "rules" / "default.json"
    with subprocess.Popen([sys.executable, "-m", "crmsync", "evaluate", "--rules", str(rules),
                           "--input", str(contacts)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, cwd=tmp_path) as child:
        assert child.stdout is not None and child.stderr is not None
        assert json.loads(child.stdout.readline())["id"] == "c0"
        child.stdout.close()
        errors = child.stderr.read().decode()
        assert child.wait(timeout=120) == 141  # as a program stopped by SIGPIPE
    assert errors == ""
