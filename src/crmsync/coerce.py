"""The one coercion of odd values to fact types, shared by the field maps and the rules engine.

A ``crmsync run`` gets facts through a connector's field map (``crmsync.connectors.fieldmap``);
``crmsync evaluate`` reads JSON Lines written by people and scripts and coerces them in the
rules engine (``crmsync.rules.facts``). Both call this module, so one value means the same on
both paths (``employees: "5.5"`` is 5 in a run and in ``evaluate``). Connectors may not import
the rules engine, which is why this lives at the top of the package, beside ``model``.

The policy (rules/README.md, "Missing and odd values"):

* ``str``: text without its surrounding whitespace; empty or blank text is null; a number
  becomes its decimal text; anything else (true/false, lists, objects) is null.
* ``int``: an integer is kept; an integral float or numeric text ("120", "1,200", "120.0") is
  converted; a non-integral number is truncated toward zero ("5.5" is 5); booleans and junk
  are null.
* ``number``: integers and finite floats are kept; numeric text is parsed; NaN, infinities,
  booleans and junk are null.
* ``bool``: true/false are kept; text yes/no, true/false, y/n, t/f, on/off, 1/0,
  checked/unchecked (any case) and the numbers 1/0 are converted; anything else is null.
* ``datetime``: aware datetimes are kept (naive ones are taken as UTC); dates are midnight
  UTC; ISO 8601 text (``Z`` allowed) and epoch milliseconds (number or digit text, as HubSpot
  sends them) are converted; anything unparsable or out of range is null.
* ``date`` (field maps only): the date of the ``datetime`` coercion.

Null is never an error: conditions on it are *unknown* (three-valued logic).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

_TRUE = frozenset({"true", "t", "yes", "y", "on", "1", "checked"})
_FALSE = frozenset({"false", "f", "no", "n", "off", "0", "unchecked"})
#: Yes/no text -> its value (one lookup instead of two set tests).
_BOOLS = {**dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False)}
_NUMERIC = re.compile(r"^[+-]?(\d[\d,]*)?(\.\d+)?([eE][+-]?\d+)?$")
_INTEGER = re.compile(r"^[+-]?\d+$")
_DIGITS = re.compile(r"^-?\d{1,16}$")
_MAX_TEXT = 100  # longer "numbers" are junk, and int() of huge text is slow


def to_str(value: Any) -> str | None:
    """Coerce ``value`` to a text fact (see the module docstring)."""
    if value.__class__ is str or isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return None


def to_number(value: Any) -> int | float | None:
    """Coerce ``value`` to a number fact (int or float), or None."""
    # Text first: it is what HubSpot sends (bool, int and float are never str).
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit() and text.isascii() and len(text) <= _MAX_TEXT:
            return int(text)  # the common case (HubSpot sends numbers as text), without regexes
        if not text or len(text) > _MAX_TEXT or not _NUMERIC.match(text):
            return None
        text = text.replace(",", "")
        try:
            if _INTEGER.match(text):
                return int(text)
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return None


def to_int(value: Any) -> int | None:
    """Coerce ``value`` to an integer fact (truncating toward zero), or None."""
    if value.__class__ is int:
        return value  # type: ignore[no-any-return]
    if value.__class__ is str:
        text = value.strip()
        if text.isdigit() and text.isascii() and len(text) <= _MAX_TEXT:
            return int(text)  # what to_number gives digit text, one call sooner
    number = to_number(value)
    if number is None:
        return None
    return int(number)


def to_bool(value: Any) -> bool | None:
    """Coerce ``value`` to a yes/no fact, or None."""
    # Text first: it is what HubSpot sends (a str is never a bool or a number).
    if value.__class__ is str:
        known = _BOOLS.get(value)  # "true"/"false" as HubSpot sends them: no strip or lower
        if known is not None:
            return known
    if isinstance(value, str):
        return _BOOLS.get(value.strip().lower())
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    return None


def to_datetime(value: Any) -> datetime | None:
    """Coerce ``value`` to an aware UTC-comparable datetime fact, or None."""
    # Text first: what HubSpot sends (a str is never a datetime, date or number).
    if isinstance(value, str):
        text = value.strip()
        if not text or len(text) > _MAX_TEXT:
            return None
        if text.isascii():
            # _DIGITS for ASCII text, without the regex: HubSpot's ISO dates fail at once.
            digits = text[1:] if text[0] == "-" else text
            if digits.isdigit() and len(digits) <= 16:
                return _from_epoch_ms(int(text))
        elif _DIGITS.match(text):
            return _from_epoch_ms(int(text))
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _from_epoch_ms(value)
    return None


def to_date(value: Any) -> date | None:
    """Coerce ``value`` to a calendar date (the UTC date of :func:`to_datetime`), or None."""
    moment = to_datetime(value)
    return moment.date() if moment is not None else None


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
    "date": to_date,
}


def coerce(value: Any, kind: str) -> Any:
    """Coerce ``value`` to fact type ``kind`` (never raises; junk becomes None)."""
    if value is None:
        return None
    try:
        return COERCERS[kind](value)
    except Exception:  # noqa: BLE001 - a CRM value must never stop a run or an evaluation
        return None
