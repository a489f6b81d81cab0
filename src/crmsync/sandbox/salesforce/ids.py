"""Salesforce record ids: 15-character case-sensitive bodies plus the 3-character checksum.

Every id the emulator hands out is 18 characters; ids coming in may be 15 or 18 characters
(CRM_WIRE_CONTRACT.md §2.1).
"""

from __future__ import annotations

import re

_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_SHAPE = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")


def checksum(body: str) -> str:
    """Return the 3-character suffix for a 15-character id body."""
    out = []
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(body[chunk * 5 : chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out.append(_CHECKSUM_ALPHABET[bits])
    return "".join(out)


def make_id(prefix: str, number: int, pod: str = "5g") -> str:
    """Return the 18-character id ``number`` for a key prefix (``003`` for Contact...)."""
    body = f"{prefix}{pod}{number:0{15 - len(prefix) - len(pod)}d}"
    return body + checksum(body)


def normalize_id(value: object) -> str | None:
    """Return the 18-character form of a 15- or 18-character id, or None if it is not an id.

    An 18-character id with a wrong checksum is repaired rather than refused: the checksum only
    exists to survive case-insensitive tools, and Salesforce itself keys on the first 15.
    """
    if not isinstance(value, str) or not _ID_SHAPE.match(value):
        return None
    body = value[:15]
    return body + checksum(body)


def looks_like_id(value: str) -> bool:
    """Return whether a path segment has the shape of a record id."""
    return bool(_ID_SHAPE.match(value)) and any(ch.isdigit() for ch in value[:5])
