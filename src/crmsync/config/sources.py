"""Where raw values come from: TOML files (settings and secrets) and the secrets file lookup."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crmsync.config.coerce import _did_you_mean
from crmsync.config.connections import NAMED_SECTIONS, Named, collect_named
from crmsync.config.keys import _KEYS, _SECRET_KEYS
from crmsync.config.settings import SECRETS_FILE_ENV


@dataclass
class _Source:
    """Where a raw value came from, for messages (``CRMSYNC_CRM__TOKEN``, ``crmsync.toml``)."""

    label: str
    base: Path | None  # relative paths in files resolve against the file's folder

def _secrets_file(
    env: Mapping[str, str],
    env_values: Mapping[tuple[str, str], tuple[Any, _Source]],
    file_values: Mapping[tuple[str, str], tuple[Any, _Source]],
    problems: list[str],
) -> tuple[Path | None, str]:
    """Find the secrets file; return it (None when there is none) and how to describe it."""
    if env.get(SECRETS_FILE_ENV):
        path, origin = Path(env[SECRETS_FILE_ENV]), f"env {SECRETS_FILE_ENV}"
    else:
        chosen = env_values.get(("crm", "secrets_file")) or file_values.get(("crm", "secrets_file"))
        if chosen is None:
            return None, f"secrets file (none: set {SECRETS_FILE_ENV} or [crm] secrets_file)"
        raw, source = chosen
        if not isinstance(raw, str):
            return None, "secrets file (invalid [crm] secrets_file)"  # reported by _coerce
        path = (source.base / raw) if source.base is not None else Path(raw)
        origin = source.label
    if not path.is_file():
        problems.append(f"secrets file {path} does not exist (named by {origin})")
        return None, f"secrets file {path} (not found)"
    return path, f"secrets file {path}"


def _read_toml(
    path: Path,
    what: str,
    into: dict[tuple[str, str], tuple[Any, _Source]],
    problems: list[str],
    *,
    allowed: set[tuple[str, str]] | None,
    named: Named | None = None,
) -> None:
    """Read a TOML file's ``[section] key`` values into ``into``, noting every problem.

    With ``named``, ``[connections.NAME]`` and ``[schedules.NAME]`` tables are kept there.
    """
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{what} file {path}: cannot read ({type(exc).__name__})")
        return
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message is "<what> (at line L, column C)": positions, never the value.
        problems.append(f"{path}: invalid TOML: {exc}")
        return
    source = _Source(str(path), path.absolute().parent)
    for section, table in data.items():
        if section in NAMED_SECTIONS and named is not None:
            collect_named(section, table, source, named, problems, where=str(path),
                          secrets=allowed is not None)
            continue
        if section not in _KEYS:
            problems.append(f"{path}: unknown section [{section}]"
                            + _did_you_mean(section, [*_KEYS, *NAMED_SECTIONS]))
            continue
        if not isinstance(table, dict):
            problems.append(f"{path}: {section} must be a table ([{section}])")
            continue
        for key, value in table.items():
            if key not in _KEYS[section]:
                problems.append(f"{path}: unknown key [{section}] {key}"
                                + _did_you_mean(key, _KEYS[section]))
            elif allowed is not None and (section, key) not in allowed:
                problems.append(f"{path}: [{section}] {key} does not belong in a secrets file")
            else:
                into[(section, key)] = (value, source)


def _own_secrets(path: Path, problems: list[str]) -> dict[str, tuple[Any, _Source]]:
    """Read a named connection's own secrets file (shaped like the default one: ``[crm]``)."""
    if not path.is_file():
        problems.append(f"secrets file {path} does not exist (named by a connection's "
                        "secrets_file)")
        return {}
    raw: dict[tuple[str, str], tuple[Any, _Source]] = {}
    _read_toml(path, "secrets", raw, problems, allowed=_SECRET_KEYS)
    return {("state_url" if section == "state" else key): value
            for (section, key), value in raw.items()}
