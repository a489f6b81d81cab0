"""The fact catalogue rules are checked against, and the coercion of odd values.

Rules read canonical facts (DESIGN.md §2) plus whatever custom facts a CRM field map declares.
Values arrive from connectors already typed, but ``crmsync evaluate`` reads JSON Lines written
by people and scripts, so the engine coerces every value to its fact's type once. The policy is
:mod:`crmsync.coerce`, shared with the field maps so that a run and ``evaluate`` agree; its
functions are re-exported here for the engine's own modules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime

from crmsync.coerce import COERCERS, coerce, to_bool, to_datetime, to_int, to_number, to_str
from crmsync.model import CANONICAL_FACTS as _MODEL_FACTS

__all__ = [
    "CANONICAL_FACTS", "COERCERS", "EXACT_CLASSES", "FACT_TYPES", "NAME_PATTERN", "coerce",
    "domain_of_email", "fact_catalogue", "to_bool", "to_datetime", "to_int", "to_number", "to_str",
]

#: Fact types a rule file can reason about.
FACT_TYPES: tuple[str, ...] = ("str", "int", "number", "bool", "datetime")

#: Canonical fact name -> type (DESIGN.md §2 plus ``status_override`` and ``not_a_fit``).
CANONICAL_FACTS: Mapping[str, str] = dict(_MODEL_FACTS)

#: The form every fact, derived fact and output name must take (also keeps generated code safe).
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

#: Fact type -> the Python classes a value of that type may already have (the fast path).
EXACT_CLASSES: Mapping[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "number": (int, float),
    "bool": (bool,),
    "datetime": (datetime,),
}


def domain_of_email(email: object) -> str | None:
    """The ``email_domain`` fact derived from an ``email`` value (DESIGN.md §2), or None."""
    if not isinstance(email, str) or "@" not in email:
        return None
    return email.rpartition("@")[2].strip().lower() or None


def fact_catalogue(extra_facts: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return canonical facts plus a field map's custom facts (name -> type)."""
    catalogue = dict(CANONICAL_FACTS)
    for name, kind in (extra_facts or {}).items():
        catalogue[name] = {"float": "number", "date": "datetime"}.get(kind, kind)
    return catalogue
