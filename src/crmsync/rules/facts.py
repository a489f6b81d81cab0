"""The fact catalogue rules are checked against, and how odd values are coerced.

Rules read canonical facts (DESIGN.md §2) plus whatever custom facts a CRM field map declares.
Values arrive from connectors already typed, but ``crmsync evaluate`` reads JSON Lines written
by people and scripts, so the engine coerces every value to its fact's type once, with one
documented policy (rules/README.md, "Missing and odd values"):

* ``str``: text is kept as is, except that the empty string is null; a number becomes its
  decimal text; anything else (true/false, lists, objects) is null.
* ``int``: an integer is kept; an integral float or numeric text ("120", "1,200", "120.0") is
  converted; a non-integral number is truncated toward zero; booleans and junk are null.
* ``number``: integers and finite floats are kept; numeric text is parsed; NaN, infinities,
  booleans and junk are null.
* ``bool``: true/false are kept; text yes/no, true/false, y/n, on/off, 1/0 (any case) and the
  numbers 1/0 are converted; anything else is null.
* ``datetime``: aware datetimes are kept (naive ones are taken as UTC); dates are midnight
  UTC; ISO 8601 text (``Z`` allowed) and epoch milliseconds (number or digit text, as HubSpot
  sends them) are converted; anything unparsable or out of range is null.

Null is never an error: conditions on it are *unknown* (three-valued logic).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from crmsync.model import CANONICAL_FACTS as _MODEL_FACTS

#: Fact types a rule file can reason about.
FACT_TYPES: tuple[str, ...] = ("str", "int", "number", "bool", "datetime")

#: Canonical fact name -> type (DESIGN.md §2 plus ``status_override`` and ``not_a_fit``).
CANONICAL_FACTS: Mapping[str, str] = dict(_MODEL_FACTS)

#: The form every fact, derived fact and output name must take (also keeps generated code safe).
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0"})
_NUMERIC = re.compile(r"^[+-]?(\d[\d,]*)?(\.\d+)?([eE][+-]?\d+)?$")
_DIGITS = re.compile(r"^-?\d{1,16}$")
_MAX_TEXT = 100  # longer "numbers" are junk, and int() of huge text is slow


def to_str(value: Any) -> str | None:
    """Coerce ``value`` to a text fact (see the module docstring)."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return None


def to_number(value: Any) -> int | float | None:
    """Coerce ``value`` to a number fact (int or float), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        text = value.strip()
        if not text or len(text) > _MAX_TEXT or not _NUMERIC.match(text):
            return None
        text = text.replace(",", "")
        try:
            if re.fullmatch(r"[+-]?\d+", text):
                return int(text)
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def to_int(value: Any) -> int | None:
    """Coerce ``value`` to an integer fact (truncating toward zero), or None."""
    if value.__class__ is int:
        return value  # type: ignore[no-any-return]
    number = to_number(value)
    if number is None:
        return None
    return int(number)


def to_bool(value: Any) -> bool | None:
    """Coerce ``value`` to a yes/no fact, or None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return None


def to_datetime(value: Any) -> datetime | None:
    """Coerce ``value`` to an aware UTC-comparable datetime fact, or None."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch_ms(value)
    if isinstance(value, str):
        text = value.strip()
        if not text or len(text) > _MAX_TEXT:
            return None
        if _DIGITS.match(text):
            return _from_epoch_ms(int(text))
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    return None


def _from_epoch_ms(ms: float) -> datetime | None:
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


#: Fact type -> coercion function.
COERCERS: Mapping[str, Callable[[Any], Any]] = {
    "str": to_str,
    "int": to_int,
    "number": to_number,
    "bool": to_bool,
    "datetime": to_datetime,
}

#: Fact type -> the Python classes a value of that type may already have (the fast path).
EXACT_CLASSES: Mapping[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "number": (int, float),
    "bool": (bool,),
    "datetime": (datetime,),
}


def coerce(value: Any, kind: str) -> Any:
    """Coerce ``value`` to fact type ``kind`` (never raises; junk becomes None)."""
    if value is None:
        return None
    try:
        return COERCERS[kind](value)
    except Exception:  # noqa: BLE001 - a CRM value must never stop evaluation
        return None


def fact_catalogue(extra_facts: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return canonical facts plus a field map's custom facts (name -> type)."""
    catalogue = dict(CANONICAL_FACTS)
    for name, kind in (extra_facts or {}).items():
        catalogue[name] = {"float": "number", "date": "datetime"}.get(kind, kind)
    return catalogue
