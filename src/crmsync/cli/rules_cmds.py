"""CLI commands of the rules family: ``rules validate|test|schema``, ``evaluate``, ``explain``.

``evaluate`` streams JSON Lines in and out, one contact at a time, so memory stays flat however
long the input is; a bad input line is reported with its number and skipped (exit code 1).
"""

from __future__ import annotations

import codecs
import json
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import click
import orjson

from crmsync.cli.common import connection_option, emit_json, output_option, stderr, stdout
from crmsync.cli.evaluate_input import InputCheck
from crmsync.cli.promote_cmds import promote
from crmsync.errors import ConfigError, Diagnostic, ExitCode, InvalidFileError
from crmsync.model import CANONICAL_FACTS, Decision
from crmsync.rules import RuleSet, load_ruleset, ruleset_schema
from crmsync.rules.selftest import SuiteResult, run_tests

_FIELD_MAP_HELP = ("A CRM field map whose custom facts the rules may also use (validate also "
                   "checks that it maps the rule file's declared outputs and facts).")


def register(group: click.Group) -> None:
    """Attach this family's commands to the root group."""
    group.add_command(rules)
    group.add_command(evaluate)
    group.add_command(explain)


def _extra_facts(field_map: str | None) -> dict[str, str] | None:
    if not field_map:
        return None
    from crmsync.connectors.fieldmap_load import load_fieldmap

    return dict(load_fieldmap(field_map).custom_facts)


def _check_against_field_map(ruleset: RuleSet, field_map: str) -> None:
    """What a run checks at its start: the map provides the rule file's declared outputs and
    facts (raises InvalidFileError, located in the field map)."""
    from crmsync.connectors.fieldmap_load import bind_rules, load_fieldmap

    bind_rules(load_fieldmap(field_map), ruleset.declared_outputs, ruleset.declared_facts)


def _diagnostic_json(diagnostic: Diagnostic) -> dict[str, Any]:
    return {
        "file": diagnostic.file, "line": diagnostic.line, "col": diagnostic.col,
        "pointer": diagnostic.pointer, "message": diagnostic.message,
        "hint": diagnostic.suggestion,
    }


@click.group()
def rules() -> None:
    """Check, test, compare and promote rule files; export their schema."""


# `rules promote` rewrites the config: its own module, attached to the group here.
rules.add_command(promote)


@rules.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--field-map", type=click.Path(dir_okay=False), help=_FIELD_MAP_HELP)
@output_option
def validate_cmd(files: tuple[str, ...], field_map: str | None, output_format: str) -> None:
    """Check rule FILES (schema and meaning); report every problem with file:line:col."""
    extra = _extra_facts(field_map)
    report = []
    all_problems: list[Diagnostic] = []
    for file in files:
        try:
            ruleset = load_ruleset(file, extra_facts=extra)
            if field_map:
                _check_against_field_map(ruleset, field_map)
        except InvalidFileError as error:
            all_problems.extend(error.diagnostics)
            report.append({"file": file, "ok": False,
                           "problems": [_diagnostic_json(d) for d in error.diagnostics]})
            continue
        counts = _counts(ruleset)
        report.append({"file": file, "ok": True, "version": ruleset.version, **counts})
        if output_format == "text":
            stdout.print(f"{file}: ok (version {ruleset.version}: {counts['rules']} rules, "
                         f"{counts['tasks']} task templates, {counts['tests']} tests)",
                         markup=False)
    if output_format == "json":
        emit_json({"ok": not all_problems, "files": report})
        if all_problems:
            raise click.exceptions.Exit(int(ExitCode.BAD_CONFIG))
        return
    if all_problems:
        raise InvalidFileError(all_problems)


def _counts(ruleset: RuleSet) -> dict[str, int]:
    tree = ruleset.tree
    return {
        "rules": sum(len(d.rules) for d in tree.decisions),
        "tasks": len(tree.tasks),
        "tests": len(tree.tests),
    }


@rules.command("test")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--field-map", type=click.Path(dir_okay=False), help=_FIELD_MAP_HELP)
@click.option("-v", "--verbose", is_flag=True, help="List every test, not only failures.")
@output_option
def test_cmd(files: tuple[str, ...], field_map: str | None, verbose: bool,
             output_format: str) -> None:
    """Run the tests embedded in rule FILES; exit 1 when one fails.

    Also lists the rules no test makes fire (rule coverage).
    """
    extra = _extra_facts(field_map)
    started = time.perf_counter()
    suites: list[SuiteResult] = []
    problems: list[Diagnostic] = []
    for file in files:
        try:
            suites.append(run_tests(load_ruleset(file, extra_facts=extra)))
        except InvalidFileError as error:
            problems.extend(error.diagnostics)
    if problems:
        raise InvalidFileError(problems)
    elapsed = time.perf_counter() - started
    failed = sum(len(suite.failed) for suite in suites)
    passed = sum(len(suite.cases) for suite in suites) - failed
    if output_format == "json":
        emit_json({
            "ok": failed == 0, "passed": passed, "failed": failed,
            "files": [_suite_json(suite) for suite in suites],
        })
    else:
        for suite in suites:
            _print_suite(suite, verbose)
        colour = "red" if failed else "green"
        stdout.print(f"[{colour}]{passed} passed, {failed} failed[/] in {elapsed:.2f}s")
    if failed:
        raise click.exceptions.Exit(int(ExitCode.PARTIAL))


def _suite_json(suite: SuiteResult) -> dict[str, Any]:
    total = sum(1 for d in suite.ruleset.tree.decisions for _ in d.rules) + len(
        suite.ruleset.tree.tasks)
    return {
        "file": suite.ruleset.filename,
        "cases": [{"name": c.name, "pointer": c.pointer, "passed": c.passed,
                   "failures": list(c.failures)} for c in suite.cases],
        "rules": total,
        "uncovered_rules": suite.uncovered,
    }


def _print_suite(suite: SuiteResult, verbose: bool) -> None:
    ruleset = suite.ruleset
    marks = "".join("." if case.passed else "F" for case in suite.cases)
    stdout.print(f"{ruleset.filename} {marks}", markup=False)
    smap_lines = _test_lines(ruleset)
    for case in suite.cases:
        if case.passed and not verbose:
            continue
        where = f"{ruleset.filename}:{smap_lines.get(case.pointer, 1)}"
        label = "PASSED" if case.passed else "FAILED"
        stdout.print(f"  {label} {where} {case.name}", markup=False)
        for failure in case.failures:
            stdout.print(f"      {failure}", markup=False)
        if case.failures:
            stdout.print(f"      reason: {case.decision.reason}", markup=False)
    total = sum(len(d.rules) for d in ruleset.tree.decisions) + len(ruleset.tree.tasks)
    covered = total - len(suite.uncovered)
    stdout.print(f"  rule coverage: {covered}/{total} rules fired by at least one test",
                 markup=False)
    if suite.uncovered:
        stdout.print(f"  no test fires: {', '.join(suite.uncovered)}", markup=False)


def _test_lines(ruleset: RuleSet) -> dict[str, int]:
    """Line of each test case, for ``file:line`` in failure reports."""
    from crmsync.rules.jsonpos import parse

    try:
        _, smap = parse(Path(ruleset.filename).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {case.pointer: smap.locate(case.pointer)[0] for case in ruleset.tree.tests}


@rules.command("schema")
def schema_cmd() -> None:
    """Print the rule-file JSON Schema (for editors: save it and point "$schema" at it)."""
    sys.stdout.write(json.dumps(ruleset_schema(), indent=2) + "\n")


# -- evaluate / explain -------------------------------------------------------------------


def _parse_now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)  # noqa: TID251 - the CLI owns the clock
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date-time "
                                 "(like 2026-01-05T09:00:00Z)", param_hint="--now") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@contextmanager
def _open_in(path: str) -> Iterator[IO[bytes]]:
    if path == "-":
        yield sys.stdin.buffer
        return
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    with handle:
        yield handle


@contextmanager
def _open_out(path: str) -> Iterator[IO[bytes]]:
    if path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    try:
        handle = open(path, "wb", buffering=1 << 16)  # noqa: SIM115 - closed below
    except OSError as error:
        raise ConfigError(f"cannot write {path}: {error.strerror}") from None
    with handle:
        yield handle


def _records(stream: IO[bytes], name: str) -> Iterator[tuple[int, Mapping[str, Any] | None]]:
    """Yield ``(line number, contact)``; ``None`` (after a message) for a line that is bad."""
    loads = orjson.loads
    for number, line in enumerate(stream, 1):
        if number == 1 and line.startswith(codecs.BOM_UTF8):
            # Editors on Windows write a byte order mark; rule files accept it, so do inputs.
            line = line[len(codecs.BOM_UTF8):]
        if not line.strip():
            continue
        try:
            record = loads(line)
        except orjson.JSONDecodeError as error:
            stderr.print(f"{name}:{number}: skipped: invalid JSON ({error})", markup=False)
            yield number, None
            continue
        if not isinstance(record, dict):
            stderr.print(f"{name}:{number}: skipped: expected a JSON object per line",
                         markup=False)
            yield number, None
            continue
        if record.get("id") in (None, ""):
            stderr.print(f"{name}:{number}: skipped: the contact has no \"id\"", markup=False)
            yield number, None
            continue
        yield number, record


def decision_json(decision: Decision) -> dict[str, Any]:
    """The JSON object ``crmsync evaluate`` writes for one decision."""
    result: dict[str, Any] = {
        "id": decision.contact_id,
        "status": decision.status,
        "miss_type": decision.miss_type,
        "score": decision.score,
        "reason": decision.reason,
    }
    if decision.extra:
        result["outputs"] = dict(decision.extra)  # the rule file's declared outputs
    result["rules"] = decision.rules
    result["tasks"] = decision.tasks
    if decision.trace is not None:
        result["trace"] = decision.trace
    return result


@click.command()
@click.option("--rules", "rules_file", required=True, type=click.Path(dir_okay=False),
              help="The rule file.")
@click.option("--input", "input_file", required=True,
              help="Contacts as JSON Lines (canonical facts, 'id' required); '-' for stdin.")
@click.option("--now", "now_text", help="The evaluation clock, ISO 8601 (default: now, UTC).")
@click.option("--output", "output_file", default="-", show_default=True,
              help="Where to write decisions (JSON Lines); '-' for stdout.")
@click.option("--explain", is_flag=True, help="Add the full trace to every decision.")
@click.option("--field-map", type=click.Path(dir_okay=False), help=_FIELD_MAP_HELP)
def evaluate(rules_file: str, input_file: str, now_text: str | None, output_file: str,
             explain: bool, field_map: str | None) -> None:
    """Decide every contact of a JSON Lines file; write one decision per line.

    Streams: memory does not grow with the input. A bad line is reported on stderr with its
    number and skipped; the exit code is then 1.
    """
    extra_facts = _extra_facts(field_map)
    ruleset = load_ruleset(rules_file, extra_facts=extra_facts)
    now = _parse_now(now_text)
    started = time.perf_counter()
    done = skipped = 0
    dumps = orjson.dumps
    evaluate_one = ruleset.evaluate
    check = InputCheck({**CANONICAL_FACTS, **ruleset.declared_facts, **(extra_facts or {})})
    see = check.see
    with _open_in(input_file) as source, _open_out(output_file) as sink:
        write = sink.write
        for number, record in _records(source, input_file):
            if record is None:
                skipped += 1
                continue
            see(number, record)
            decision = evaluate_one(record, now=now, explain=explain)
            write(dumps(decision_json(decision), option=orjson.OPT_APPEND_NEWLINE))
            done += 1
    elapsed = time.perf_counter() - started
    for note in check.notes(input_file):
        stderr.print(note, markup=False)
    if output_file != "-" or skipped:
        stderr.print(f"crmsync: evaluated {done} contacts"
                     f"{f', skipped {skipped} bad lines' if skipped else ''} in {elapsed:.2f}s",
                     markup=False)
    if skipped:
        raise click.exceptions.Exit(int(ExitCode.PARTIAL))


@click.command()
@click.option("--rules", "rules_file", required=True, type=click.Path(dir_okay=False),
              help="The rule file.")
@click.option("--input", "input_file",
              help="Contacts as JSON Lines; '-' for stdin. Without it, --contact ids are read "
                   "from the CRM configured in crmsync.toml.")
@click.option("--contact", "contact_ids", multiple=True,
              help="Explain only the contact with this id (repeatable).")
@click.option("--now", "now_text", help="The evaluation clock, ISO 8601 (default: now, UTC).")
@click.option("--field-map", type=click.Path(dir_okay=False), help=_FIELD_MAP_HELP)
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Settings file for reading --contact ids from the CRM "
                   "(default: ./crmsync.toml).")
@connection_option
@output_option
def explain(rules_file: str, input_file: str | None, contact_ids: tuple[str, ...],
            now_text: str | None, field_map: str | None, config_path: Path | None,
            connection: str, output_format: str) -> None:
    """Show which rules fired for each contact, which missed or were unknown, and why."""
    if input_file is None and not contact_ids:
        raise click.UsageError("give --input FILE, or --contact ID to read it from the CRM")
    now = _parse_now(now_text)
    if input_file is None:
        _explain_from_crm(rules_file, contact_ids, now, config_path, connection, output_format)
        return
    ruleset = load_ruleset(rules_file, extra_facts=_extra_facts(field_map))
    wanted = set(contact_ids)
    found: list[dict[str, Any]] = []
    skipped = 0
    with _open_in(input_file) as source:
        for _number, record in _records(source, input_file):
            if record is None:
                skipped += 1
                continue
            if wanted and str(record.get("id")) not in wanted:
                continue
            decision = ruleset.evaluate(record, now=now, explain=True)
            if output_format == "json":
                found.append(decision_json(decision))
            else:
                _print_explanation(decision)
                found.append({})
    if output_format == "json":
        emit_json(found)
    if wanted and not found:
        raise ConfigError(f"no contact with id {', '.join(sorted(wanted))} in {input_file}")
    if skipped:
        raise click.exceptions.Exit(int(ExitCode.PARTIAL))


def _explain_from_crm(rules_file: str, contact_ids: tuple[str, ...], now: datetime,
                      config_path: Path | None, connection: str, output_format: str) -> None:
    """Read the contacts from the configured CRM (read-only) and explain their decisions."""
    from crmsync.config import load_settings
    from crmsync.lookup import explain_from_crm

    settings = load_settings(config_path, connection=connection)
    decisions = explain_from_crm(settings, contact_ids, now,
                                 rules_file=Path(rules_file))
    if output_format == "json":
        emit_json([decision_json(d) for d in decisions])
        return
    for decision in decisions:
        _print_explanation(decision)


def _print_checks(entry: Mapping[str, Any]) -> None:
    """Print the checks of a trace entry that were false or unknown (why it did not hold)."""
    for check in entry.get("checks", ()):
        if check["result"] is True:
            continue
        result = {False: "false", None: "unknown"}[check["result"]]
        seen = f"  (seen: {json.dumps(check['value'])})" if "value" in check else ""
        stdout.print(f"        {result}: {check['test']}{seen}", markup=False)


_OUTCOME_MARK = {"fired": "✔", "missed": "✘", "unknown": "?", "not reached": "·"}


def _print_explanation(decision: Decision) -> None:
    out = stdout.print
    out(f"[bold]contact {decision.contact_id}[/]: {decision.status}, miss {decision.miss_type}, "
        f"score {decision.score}")
    out(f"  reason: {decision.reason}", markup=False)
    if decision.extra:  # the rule file's declared outputs, as a run writes them
        out("  outputs: " + ", ".join(f"{name} = {json.dumps(value, ensure_ascii=False)}"
                                      for name, value in decision.extra.items()), markup=False)
    for entry in decision.trace or ():
        if "derived" in entry:
            out(f"  derived {entry['derived']} = {json.dumps(entry['value'])}", markup=False)
            continue
        if "condition" in entry:
            result = {True: "true", False: "false", None: "unknown"}[entry["result"]]
            out(f"  condition {entry['condition']}: {result}", markup=False)
            _print_checks(entry)
            continue
        if "rule" not in entry:
            by = f" (by {entry['decided_by']})" if entry.get("decided_by") else ""
            out(f"  → {entry['output']} = {json.dumps(entry['value'])}{by}", markup=False)
            continue
        mark = _OUTCOME_MARK.get(entry["outcome"], " ")
        label = f"task {entry['task']}" if "task" in entry else entry["output"]
        line = f"    {mark} {entry['rule']} [{label}] {entry['outcome']}"
        if entry.get("because"):
            line += f": {entry['because']}"
        if entry.get("note"):
            line += f" ({entry['note']})"
        out(line, markup=False)
        if entry["outcome"] in ("missed", "unknown"):
            _print_checks(entry)
    for task in decision.tasks:
        out(f"  task {task.purpose}: due {task.due.isoformat()}, {task.priority}, "
            f"{task.approach}: {task.subject}", markup=False)


# `rules diff` lives in its own module (it imports nothing heavy at load time either).
from crmsync.cli.rules_diff_cmds import diff as _diff  # noqa: E402 - after the group exists

rules.add_command(_diff)

__all__ = ["decision_json", "evaluate", "explain", "register", "rules"]
