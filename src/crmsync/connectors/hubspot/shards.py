"""Shards of the HubSpot contact stream: ``hs_object_id`` ranges a worker reads on its own.

Contact ids are integers HubSpot hands out in ascending order, so the span from the smallest to
the largest id, cut into equal parts, gives slices of similar size. Two searches (the smallest
and the largest id) cost the whole split. The first and last slices are open-ended so a contact
created meanwhile still belongs to one. Each slice is read through the windowed search, which
stays within the 10,000-result cap however large the slice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crmsync.connectors.hubspot.wire import _results

#: A slice of a stream by record id: from ``lo`` (inclusive) to ``hi`` (exclusive); None is open.
KeyRange = tuple[str | None, str | None]

ID = "hs_object_id"


def range_filters(key_range: KeyRange | None) -> list[dict[str, str]]:
    """Return the search filters that keep a search within ``key_range``."""
    if key_range is None:
        return []
    lo, hi = key_range
    filters = []
    if lo is not None:
        filters.append({"propertyName": ID, "operator": "GTE", "value": lo})
    if hi is not None:
        filters.append({"propertyName": ID, "operator": "LT", "value": hi})
    return filters


def in_range(record_id: str, key_range: KeyRange | None) -> bool:
    """Whether a contact id falls within ``key_range`` (ids compare as integers)."""
    if key_range is None:
        return True
    lo, hi = key_range
    try:
        number = int(record_id)
    except ValueError:
        return False
    return (lo is None or number >= int(lo)) and (hi is None or number < int(hi))


def split_ids(smallest: int, largest: int, count: int) -> list[KeyRange]:
    """Cut ``smallest..largest`` into ``count`` slices; the outer ones are open-ended."""
    count = max(1, min(count, largest - smallest + 1))
    step = (largest - smallest + 1) / count
    cuts = [str(smallest + round(step * i)) for i in range(1, count)]
    bounds: list[str | None] = [None, *cuts, None]
    return [(bounds[i], bounds[i + 1]) for i in range(count)]


def contact_shards(search: Callable[[dict[str, Any]], dict[str, Any]],
                   count: int) -> list[KeyRange]:
    """Return ``count`` id ranges covering every contact (one open range for an empty portal).

    ``search`` sends one contacts search request body and returns the answer.
    """
    ends = []
    for direction in ("ASCENDING", "DESCENDING"):
        answer = search({"filterGroups": [], "sorts": [{"propertyName": ID,
                                                        "direction": direction}],
                         "properties": [ID], "limit": 1, "after": "0"})
        found = _results(answer)
        if not found:
            return [(None, None)]
        ends.append(int(found[0]["id"]))
    return split_ids(ends[0], ends[1], count)
