"""``[schedules.NAME]``: when ``crmsync scheduler`` starts a run of which connection.

```toml
[schedules.emea_nightly]
connection = "emea_sf"
cron = "30 2 * * *"          # 02:30 every night, in `timezone`
timezone = "Europe/Berlin"
mode = "full"                # or "incremental" (the default)

[schedules.us_hourly]
connection = "us_hubspot"
every = "1h"                 # slots at whole multiples of the interval since 1970-01-01 UTC
enabled = false
```

A schedule has a ``cron`` expression (five fields or ``@hourly``-style, read by croniter in
``timezone``) or an ``every`` interval (``90s``, ``15m``, ``1h30m``, ``1d``), not both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from crmsync.config.coerce import _coerce, _did_you_mean, _show
from crmsync.config.keys import _Key
from crmsync.config.settings import DEFAULT_CONNECTION

SCHEDULE_KEYS: dict[str, _Key] = {
    "connection": _Key("str"), "cron": _Key("str"), "every": _Key("str"),
    "timezone": _Key("str"), "mode": _Key("str"), "enabled": _Key("bool"),
}
MODES = ("incremental", "full")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_EVERY = re.compile(r"(?:(\d+)([smhd]))+")
_PART = re.compile(r"(\d+)([smhd])")


@dataclass(frozen=True, slots=True)
class ScheduleSettings:
    """One ``[schedules.NAME]``.

    Attributes:
        name: The schedule's name (``crmsync schedule run NAME``; ``schedule:NAME`` in runs).
        connection: The connection it runs.
        cron: A cron expression, read in ``timezone``; or ``None`` when ``every`` is set.
        every: An interval; slots are its whole multiples since the Unix epoch (UTC).
        timezone: IANA zone name for ``cron`` (``UTC`` by default).
        mode: ``incremental`` (read what changed) or ``full`` (re-read everything).
        enabled: A disabled schedule is listed but never fires.
    """

    name: str
    connection: str = DEFAULT_CONNECTION
    cron: str | None = None
    every: timedelta | None = None
    timezone: str = "UTC"
    mode: str = "incremental"
    enabled: bool = True

    @property
    def when(self) -> str:
        """How the schedule reads in a table: the cron expression and zone, or the interval."""
        if self.cron is not None:
            return f"cron {self.cron} ({self.timezone})"
        assert self.every is not None
        return f"every {format_every(self.every)}"


def parse_every(text: str) -> timedelta | None:
    """Return the interval ``90s`` / ``15m`` / ``1h30m`` / ``1d`` means, or None if invalid."""
    text = text.strip().lower()
    if not _EVERY.fullmatch(text):
        return None
    seconds = sum(int(n) * _UNITS[unit] for n, unit in _PART.findall(text))
    return timedelta(seconds=seconds) if seconds > 0 else None


def format_every(interval: timedelta) -> str:
    """Return an interval the way ``every`` is written (``1h30m``)."""
    seconds, parts = int(interval.total_seconds()), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def build_schedules(
    layers: list[dict[str, dict[str, tuple[Any, Any]]]],
    connections: list[str],
    problems: list[str],
) -> dict[str, ScheduleSettings]:
    """Resolve every ``[schedules.NAME]`` declared in crmsync.toml (the last layer).

    Args:
        layers: Raw values by schedule name, environment first, crmsync.toml last.
        connections: The connection names the configuration defines.
        problems: Where every problem found is appended.
    """
    declared = layers[-1]
    for layer in layers[:-1]:
        for name, values in layer.items():
            if name not in declared:
                where = next(iter(values.values()))[1].label
                problems.append(f"unknown schedule {name!r} (in {where})"
                                + _did_you_mean(name, declared))
    schedules = {}
    for name in sorted(declared):
        built = _schedule(name, [layer.get(name, {}) for layer in layers], connections, problems)
        if built is not None:
            schedules[name] = built
    return schedules


def _schedule(
    name: str, layers: list[dict[str, tuple[Any, Any]]], connections: list[str],
    problems: list[str],
) -> ScheduleSettings | None:
    from crmsync.config.connections import MAX_NAME, NAME_PATTERN

    label = f"[schedules.{name}]"
    before = len(problems)
    if not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME:
        problems.append(f"{label}: a schedule name is lower-case letters, digits and single "
                        f"underscores, at most {MAX_NAME} characters")
        return None
    values: dict[str, Any] = {}
    for key, spec in SCHEDULE_KEYS.items():
        found = next((layer[key] for layer in layers if key in layer), None)
        if found is None:
            continue
        raw, source = found
        ok, value = _coerce(raw, spec, from_env=source.label.startswith("env "), base=None)
        if ok:
            values[key] = value
        else:
            problems.append(f"{label} {key}: expected {value}, got {_show(raw)} "
                            f"(from {source.label})")
    connection = values.get("connection", DEFAULT_CONNECTION)
    if connection not in connections:
        problems.append(f"{label} connection: no connection {connection!r}"
                        + _did_you_mean(connection, connections)
                        + f"; defined: {', '.join(connections) or 'none'}")
    mode = values.get("mode", "incremental")
    if mode not in MODES:
        problems.append(f"{label} mode: expected one of {', '.join(MODES)}, got {_show(mode)}"
                        + _did_you_mean(mode, MODES))
    timezone = values.get("timezone", "UTC")
    problems.extend(_timezone_problem(label, timezone))
    cron, every_text = values.get("cron"), values.get("every")
    every = None
    if (cron is None) == (every_text is None):
        problems.append(f"{label}: set either cron (e.g. \"30 2 * * *\") or every (e.g. \"15m\"),"
                        " not both" if cron else f"{label}: set cron (e.g. \"30 2 * * *\") or "
                        "every (e.g. \"15m\")")
    elif cron is not None:
        problems.extend(_cron_problem(label, cron))
    else:
        every = parse_every(every_text)
        if every is None:
            problems.append(f"{label} every: expected an interval such as 90s, 15m, 1h30m or 1d,"
                            f" got {_show(every_text)}")
    if len(problems) > before:
        return None
    return ScheduleSettings(name, connection, cron, every, timezone, mode,
                            values.get("enabled", True))


def _cron_problem(label: str, cron: str) -> list[str]:
    from croniter import croniter

    fields = cron.split()
    if not (cron.startswith("@") or len(fields) == 5) or not croniter.is_valid(cron):
        return [f"{label} cron: expected five fields (minute hour day-of-month month "
                f"day-of-week) or @hourly/@daily/@weekly/@monthly, got {_show(cron)}"]
    return []


def _timezone_problem(label: str, name: str) -> list[str]:
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return [f"{label} timezone: no time zone {name!r}"
                + _did_you_mean(name, zoneinfo.available_timezones())]
    return []
