"""``crmsync rules promote``: the shadow candidate becomes the production rule file.

Promotion rewrites the configuration, not a rule file: ``[rules] path`` (or a connection's
``rules``) is set to the candidate's path as written, and ``shadow`` is removed, in one atomic
replace of ``crmsync.toml`` after a timestamped backup of it. Why not copy the candidate over
the production file instead:

- the config must change anyway (``shadow`` is cleared), so one edit does both, and one backup
  undoes both (``mv crmsync.toml.bak-… crmsync.toml``);
- the old production file stays untouched on disk: rolling back never needs its contents
  recovered from a backup, and version control shows the promotion as a one-line config diff;
- another connection that shares the production file keeps its rules instead of changing
  behind its back.

Comments and layout of the config are kept (tomlkit). A candidate that fails validation or its
embedded tests is refused (exit 2) and nothing is touched. The next run sees another rule set
hash and re-evaluates every contact, as any rule change does.

Imports stay light at start-up (the ``rules`` group must not load SQLAlchemy or an SDK).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from crmsync.cli.common import connection_option, emit_json, output_option, stdout
from crmsync.errors import ConfigError


def _refuse(message: str, hint: str) -> ConfigError:
    error = ConfigError(message)
    error.hint = hint  # type: ignore[attr-defined] - read by the CLI's error report
    return error


@click.command("promote")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Settings file to rewrite (default: ./crmsync.toml).")
@connection_option
@output_option
def promote(config_path: Path | None, connection: str, output_format: str) -> None:
    """Make the shadow candidate production: the config's rules path points at it.

    The candidate must validate and pass its embedded tests (else exit 2, nothing changed).
    The config is backed up first; the next run re-evaluates every contact.
    """
    # Deferred: the `rules` group (and `evaluate`) start without the settings layer.
    from crmsync.config import load_settings
    from crmsync.config.settings import CONFIG_FILE

    config = Path(config_path) if config_path is not None else Path(CONFIG_FILE)
    if not config.is_file():
        raise _refuse(f"config file {config} does not exist",
                      "pass --config with the crmsync.toml runs use")
    settings = load_settings(config, require_crm=False, connection=connection)
    section, path_key = _keys(connection)
    overridden = [var for var in _env_vars(connection, path_key) if os.environ.get(var)]
    if overridden:
        raise _refuse(f"{', '.join(overridden)} is set in the environment: it, not {config}, "
                      "decides the rule files, so rewriting the config would change nothing",
                      f"unset {overridden[0]} (or promote by changing it)")
    candidate = settings.rules.shadow
    if candidate is None:
        raise _refuse(f"{section} shadow is not set in {config}: there is no candidate to "
                      "promote", f'set {section} shadow = "rules/candidate.json", run a few '
                      "times, read `crmsync shadow report`, then promote")
    ruleset = _checked(candidate, settings)
    previous = settings.rules.path
    # Byte-identical files have one content hash: the stamp of the last run still matches.
    same = previous is not None and previous.is_file() and (
        previous.read_bytes() == candidate.read_bytes())
    backup = _rewrite(config, connection, section, path_key)
    promoted = load_settings(config, require_crm=False, connection=connection)
    if promoted.rules.path != candidate or promoted.rules.shadow is not None:
        shutil.copy2(backup, config)  # never leave a config that says something else
        raise _refuse(f"{config} did not read back as intended; restored it from {backup}",
                      f"edit {section} by hand: path = the candidate, no shadow")
    result = {
        "promoted": str(candidate), "previous": str(previous) if previous else None,
        "version": ruleset.version, "hash": ruleset.content_hash, "config": str(config),
        "backup": str(backup), "connection": connection, "re_evaluates_all": not same,
    }
    if output_format == "json":
        emit_json(result)
        return
    stdout.print(f"promoted {_shown(candidate)} (version {ruleset.version}) to production for "
                 f"connection {connection}; was "
                 f"{_shown(previous) if previous else 'the packaged default rules'}",
                 markup=False)
    stdout.print(f"{_shown(config)} rewritten ({section} {path_key} = the candidate, shadow "
                 f"removed); backup: {_shown(backup)}", markup=False)
    stdout.print("the candidate is identical to the old production file: runs carry on as "
                 "before" if same else "the next run re-evaluates every contact (the rules "
                 "changed); workers need the same config", markup=False)


def _shown(path: Path) -> str:
    """A path as the person typed it: relative to the working directory when inside it."""
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _keys(connection: str) -> tuple[str, str]:
    """The config section a connection's rule files live in, and its production key."""
    from crmsync.config.settings import DEFAULT_CONNECTION

    if connection == DEFAULT_CONNECTION:
        return "[rules]", "path"
    return f"[connections.{connection}]", "rules"


def _env_vars(connection: str, path_key: str) -> list[str]:
    """The environment variables that would override the keys promotion rewrites."""
    from crmsync.config.settings import DEFAULT_CONNECTION, ENV_PREFIX

    if connection == DEFAULT_CONNECTION:
        return [f"{ENV_PREFIX}RULES__PATH", f"{ENV_PREFIX}RULES__SHADOW"]
    prefix = f"{ENV_PREFIX}CONNECTIONS__{connection.upper()}__"
    return [f"{prefix}{path_key.upper()}", f"{prefix}SHADOW"]


def _checked(candidate: Path, settings: Any) -> Any:
    """Load the candidate as runs would (field map facts included) and run its tests.

    Raises:
        InvalidFileError: It does not validate (located problems, exit 2).
        ConfigError: An embedded test fails (exit 2).
    """
    from crmsync.connectors.fieldmap_load import load_fieldmap
    from crmsync.rules import load_ruleset
    from crmsync.rules.selftest import run_tests
    from crmsync.wiring import fieldmap_path

    extra: dict[str, str] = {}
    if settings.crm.type or settings.crm.field_map:
        fieldmap = load_fieldmap(fieldmap_path(settings))
        extra = dict(fieldmap.custom_facts)
    ruleset = load_ruleset(candidate, extra_facts=extra)  # InvalidFileError: located problems
    failed = run_tests(ruleset).failed
    if failed:
        names = ", ".join(case.name for case in failed[:5])
        raise _refuse(f"{candidate}: {len(failed)} embedded test(s) fail ({names}); not "
                      "promoted", f"`crmsync rules test {candidate}` shows each failure")
    return ruleset


def _rewrite(config: Path, connection: str, section: str, path_key: str) -> Path:
    """Point the production key at the candidate, drop ``shadow``; return the backup's path."""
    import tomlkit

    from crmsync.config.settings import DEFAULT_CONNECTION

    doc = tomlkit.parse(config.read_text(encoding="utf-8"))
    table: Any = (doc.get("rules") if connection == DEFAULT_CONNECTION
                  else doc.get("connections", {}).get(connection))
    if table is None or "shadow" not in table:
        raise _refuse(f"{section} shadow comes from outside {config} (environment or secrets "
                      "file), so the config cannot be rewritten to promote it",
                      f"put shadow in {section} of {config}, or promote by hand")
    old = table.get(path_key)
    table[path_key] = str(table["shadow"])
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")  # noqa: TID251 - the CLI's clock
    table[path_key].comment(f"promoted from shadow {stamp}; was {old if old else 'the default'}")
    del table["shadow"]
    backup = config.with_name(f"{config.name}.bak-{stamp}")
    shutil.copy2(config, backup)
    # Written beside the config and renamed over it: a crash leaves the old file or the new
    # one, never half of one.
    fd, temp = tempfile.mkstemp(prefix=f".{config.name}.", dir=config.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(tomlkit.dumps(doc))
        shutil.copymode(config, temp)
        os.replace(temp, config)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return backup
