"""Turning raw TOML/environment values into typed settings values."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from crmsync.config.keys import _KEYS, _Key
from crmsync.config.secret import Secret

#: C0 controls, DEL and C1 controls: never meaningful inside a setting, and fatal in an HTTP
#: header (a token with a CR left from a Windows-edited secrets file made the SDK print it).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: What a value with a control character was expected to be (never shows the value).
NO_CONTROL_CHARACTERS = (
    "no control characters (a CR, LF or tab inside the value; e.g. a file saved with Windows "
    "line ends)"
)


def _secret(value: Any) -> Secret | None:
    return value if value is None or isinstance(value, Secret) else Secret(str(value))


def _coerce(raw: Any, spec: _Key, *, from_env: bool, base: Path | None) -> tuple[bool, Any]:
    """Return ``(True, value)``, or ``(False, what was expected)``."""
    kind = spec.kind
    if kind in ("str", "url", "path"):
        if isinstance(raw, str):
            # Surrounding whitespace is never part of a value (a trailing CR/LF from a secrets
            # file or `export X=$(cat file)` is the common case); inside, it is an error.
            raw = raw.strip()
            if _CONTROL.search(raw):
                return False, NO_CONTROL_CHARACTERS
        if not isinstance(raw, str) or (not raw and not spec.secret):
            return False, "a non-empty string" if isinstance(raw, str) else "a string"
        if kind == "url" and not raw.startswith(("http://", "https://")):
            return False, "an http:// or https:// URL"
        if kind == "path":
            path = Path(raw).expanduser()
            return True, base / path if base is not None and not path.is_absolute() else path
        if spec.secret:
            return True, Secret(_sqlite_relative(raw, base) if spec is _KEYS["state"]["url"]
                                else raw)
        return True, raw
    if kind == "bool":
        if isinstance(raw, bool):
            return True, raw
        if from_env and isinstance(raw, str) and raw.strip().lower() in _BOOLS:
            return True, _BOOLS[raw.strip().lower()]
        return False, "true or false"
    if kind in ("int", "float"):
        if isinstance(raw, bool):
            return False, "a number" if kind == "float" else "an integer"
        if from_env and isinstance(raw, str):
            try:
                return True, int(raw) if kind == "int" else float(raw)
            except ValueError:
                return False, "a number" if kind == "float" else "an integer"
        if isinstance(raw, int) or (kind == "float" and isinstance(raw, float)):
            return True, float(raw) if kind == "float" else raw
        return False, "a number" if kind == "float" else "an integer"
    # list of strings: a TOML array, or comma-separated in the environment
    if from_env and isinstance(raw, str):
        return True, tuple(part.strip() for part in raw.split(",") if part.strip())
    if isinstance(raw, list) and all(isinstance(item, str) and item for item in raw):
        return True, tuple(raw)
    return False, "a list of strings"


_BOOLS = {"1": True, "true": True, "yes": True, "on": True,
          "0": False, "false": False, "no": False, "off": False}


def _sqlite_relative(url: str, base: Path | None) -> str:
    """Anchor a relative SQLite path written in a file at that file's folder, like other paths."""
    prefix = "sqlite:///"
    if base is None or not url.startswith(prefix) or url == prefix:
        return url
    rest = url[len(prefix):]
    if rest.startswith("/") or rest.startswith(":memory:"):
        return url
    return prefix + (base / rest).as_posix()


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""
