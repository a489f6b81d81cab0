"""The contacts a workbench command looks at, from a JSON Lines file or a full CRM read.

A :class:`Member` carries whether its facts are already typed: a CRM read goes through the
connector's field map (the same coercion a run applies), a JSON Lines line is coerced by the
rules engine when evaluated (as ``crmsync evaluate`` does). Either way the same contact decides
the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from crmsync.connectors.base import Connector


@dataclass(frozen=True, slots=True)
class Member:
    """One contact of a population.

    Attributes:
        id: The CRM record id.
        facts: Canonical facts (plus the field map's custom facts).
        coerced: True when the facts already have their types (read through a field map).
    """

    id: str
    facts: Mapping[str, Any]
    coerced: bool = False


def from_records(records: Iterator[Mapping[str, Any]]) -> Iterator[Member]:
    """Members from decoded JSON Lines records (each with a non-empty ``id``)."""
    for record in records:
        yield Member(str(record["id"]), record, coerced=False)


def from_connector(connector: Connector,
                   advance: Callable[[int], None] | None = None) -> Iterator[Member]:
    """Every contact of every stream, by a full read: read-only (no write, no cursor, no run).

    A contact that appears twice (a full scan re-reading a record changed meanwhile) is
    yielded once. ``advance(n)`` is called after each page (a progress bar).
    """
    seen: set[str] = set()
    for stream in connector.streams():
        for page in connector.read(stream, None):
            fresh = 0
            for contact in page.contacts:
                if contact.id in seen:
                    continue
                seen.add(contact.id)
                fresh += 1
                yield Member(contact.id, contact.facts, coerced=True)
            if advance is not None:
                advance(fresh)


__all__ = ["Member", "from_connector", "from_records"]
