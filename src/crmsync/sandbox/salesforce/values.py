"""Field values: how each Salesforce field type is stored, written on the wire and read back.

Stored values are Python values (``datetime`` in UTC to the millisecond, ``date``, ``float``,
``int``, ``bool``, ``str``); JSON uses ``2024-05-01T12:34:56.000+0000`` for datetimes and
``2024-05-01`` for dates, Bulk 2.0 CSV uses ``2024-05-01T12:34:56.000Z`` (§2.1, §2.10).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

STRING_TYPES = frozenset(
    {"string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "combobox"}
)
ID_TYPES = frozenset({"id", "reference"})
NUMBER_TYPES = frozenset({"double", "currency", "percent", "int"})

_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


class BadValueError(ValueError):
    """A value that cannot be read as its field's type (answered as ``JSON_PARSER_ERROR``)."""


def truncate_ms(moment: datetime) -> datetime:
    """Return ``moment`` in UTC with microseconds cut to whole milliseconds."""
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def format_datetime(moment: datetime) -> str:
    """``2024-05-01T12:34:56.000+0000``: the REST API's datetime form."""
    moment = truncate_ms(moment)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def format_csv_datetime(moment: datetime) -> str:
    """``2024-05-01T12:34:56.000Z``: the Bulk API 2.0 CSV datetime form."""
    moment = truncate_ms(moment)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_datetime(text: str) -> datetime | None:
    """Parse the ISO forms clients send (``Z``, ``+0000``, ``+00:00``, with or without ms).

    Returns None when ``text`` is not a datetime. A missing offset means UTC.
    """
    m = _DATETIME.match(text.strip())
    if not m:
        return None
    year, month, day, hour, minute, second, frac, offset = m.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0),
            int((frac or "0")[:6].ljust(6, "0")), tzinfo=UTC,
        )
    except ValueError:
        return None
    if offset and offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        moment -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return truncate_ms(moment)


def parse_date(text: str) -> date | None:
    """Parse ``YYYY-MM-DD`` (a datetime string gives its date); None when not a date."""
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


def to_json(ftype: str, value: Any) -> Any:
    """Render a stored value for a JSON response."""
    if value is None:
        return None
    if ftype == "datetime" or (ftype == "anyType" and isinstance(value, datetime)):
        return format_datetime(value)
    if ftype == "date":
        return value.isoformat()
    return value


def to_csv(ftype: str, value: Any) -> str:
    """Render a stored value as a Bulk 2.0 CSV cell (null is empty)."""
    if value is None:
        return ""
    if ftype == "datetime":
        return format_csv_datetime(value)
    if ftype == "date":
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and ftype != "double":
        return str(int(value))
    return str(value)


def from_input(ftype: str, value: Any, name: str) -> Any:
    """Convert a value a client wrote (JSON or CSV text) into the stored form.

    Raises:
        BadValueError: The value cannot be read as the field's type.
    """
    if value is None:
        return None
    if ftype == "anyType":  # history values keep their own JSON type (false, 3.0, text)
        return value
    if ftype == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise BadValueError(_bad(ftype, name, value))
    if ftype in NUMBER_TYPES:
        if isinstance(value, bool):
            raise BadValueError(_bad(ftype, name, value))
        if isinstance(value, int | float):
            number = value
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise BadValueError(_bad(ftype, name, value)) from None
        else:
            raise BadValueError(_bad(ftype, name, value))
        return int(number) if ftype == "int" else float(number)
    if ftype == "datetime":
        if isinstance(value, datetime):
            return truncate_ms(value)
        parsed = parse_datetime(value) if isinstance(value, str) else None
        if parsed is None:
            raise BadValueError(_bad(ftype, name, value))
        return parsed
    if ftype == "date":
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        parsed_date = parse_date(value) if isinstance(value, str) else None
        if parsed_date is None:
            raise BadValueError(_bad(ftype, name, value))
        return parsed_date
    if isinstance(value, dict | list):
        raise BadValueError(_bad(ftype, name, value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def from_snapshot(ftype: str, value: Any) -> Any:
    """Read a value saved by :func:`to_json` back (state files)."""
    return from_input(ftype, value, "") if value is not None else None


def _bad(ftype: str, name: str, value: Any) -> str:
    kind = {"datetime": "datetime", "date": "date", "boolean": "boolean"}.get(ftype, "double")
    shown = str(value)[:40]
    return (
        f"Cannot deserialize instance of {kind} from VALUE_STRING value {shown} "
        f"or request may be missing a required field (field {name})"
    )
