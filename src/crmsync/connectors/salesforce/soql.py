"""SOQL building blocks: literals, ``IN (...)`` chunking under the URL budget, name helpers."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from urllib.parse import quote_plus


def soql_datetime(moment: datetime) -> str:
    """Return ``moment`` as an unquoted SOQL datetime literal, floored to the second, UTC.

    Flooring keeps ``>=`` from losing rows stored with milliseconds (the caller de-duplicates
    the small overlap it adds).
    """
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def soql_string(value: str) -> str:
    """Return ``value`` as a quoted SOQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def chunk_in_clauses(values: Sequence[str], budget: int) -> Iterator[list[str]]:
    """Split ``values`` so each ``IN (...)`` list stays under ``budget`` URL-encoded characters."""
    chunk: list[str] = []
    used = 0
    for value in values:
        cost = len(quote_plus(soql_string(value) + ","))
        if chunk and used + cost > budget:
            yield chunk
            chunk, used = [], 0
        chunk.append(value)
        used += cost
    if chunk:
        yield chunk


def _relationship(reference_field: str) -> str:
    """Return the SOQL relationship name of a lookup field (``ContactId`` -> ``Contact``)."""
    if reference_field.endswith("__c"):
        return reference_field[:-3] + "__r"
    return reference_field[:-2] if reference_field.endswith("Id") else reference_field



def _unique(names: Iterable[str]) -> list[str]:
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(name.lower(), name)
    return list(seen.values())

