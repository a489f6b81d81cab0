"""Shards of a Salesforce object: Id ranges a worker reads on its own (PK chunking's idea).

A record Id (15-character form) is a key prefix, a pod and a counter in base 62 (``0-9A-Za-z``,
which is also the ASCII order SOQL compares Ids in). The span between an object's smallest and
largest Id is cut arithmetically into equal parts: two one-row queries cost the whole split,
where listing every Id would cost a query page per 2,000 records. The first and last ranges are
open-ended, so a record created meanwhile still belongs to one.
"""

from __future__ import annotations

from collections.abc import Callable

#: A slice of a stream by record id: from ``lo`` (inclusive) to ``hi`` (exclusive); None is open.
KeyRange = tuple[str | None, str | None]

_DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_VALUE = {c: i for i, c in enumerate(_DIGITS)}


def _number(text: str) -> int:
    value = 0
    for char in text:
        value = value * 62 + _VALUE.get(char, 0)
    return value


def _text(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        chars.append(_DIGITS[digit])
    return "".join(reversed(chars))


def split_ids(smallest: str, largest: str, count: int) -> list[KeyRange]:
    """Cut the Ids from ``smallest`` to ``largest`` into ``count`` ranges (outer ones open)."""
    low, high = smallest[:15], largest[:15]
    common = 0
    while common < 15 and low[common] == high[common]:
        common += 1
    width = 15 - common
    start, end = _number(low[common:]), _number(high[common:])
    count = max(1, min(count, end - start + 1))
    step = (end - start + 1) / count
    cuts = sorted({low[:common] + _text(start + round(step * i), width) for i in range(1, count)})
    bounds: list[str | None] = [None, *cuts, None]
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def range_conditions(field: str, key_range: KeyRange | None) -> list[str]:
    """SOQL conditions keeping ``field`` (``Id`` or a reference to the object) in range."""
    if key_range is None:
        return []
    lo, hi = key_range
    out = []
    if lo is not None:
        out.append(f"{field} >= '{lo}'")
    if hi is not None:
        out.append(f"{field} < '{hi}'")
    return out


def in_range(record_id: str, key_range: KeyRange | None) -> bool:
    """Whether an Id falls within ``key_range`` (compared in its 15-character form)."""
    if key_range is None:
        return True
    lo, hi = key_range
    short = record_id[:15]
    return (lo is None or short >= lo) and (hi is None or short < hi)


def object_shards(first_id: Callable[[str], str | None], count: int) -> list[KeyRange]:
    """Return ``count`` Id ranges of one object; ``first_id(direction)`` queries one Id."""
    smallest, largest = first_id("ASC"), first_id("DESC")
    if smallest is None or largest is None:
        return [(None, None)]
    return split_ids(smallest, largest, count)
