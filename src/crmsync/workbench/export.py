"""Write a population's canonical facts as the JSON Lines ``evaluate``/``explain``/``rules diff``
read, optionally limited to some facts and without personal data.

Personal facts are those that identify a person: the canonical ``email``, ``first_name`` and
``last_name`` (DESIGN.md §2), and any custom fact of the field map whose name says it holds a
name, e-mail address, phone number or postal address. ``email_domain`` stays (rules read it;
it names a company or a mail provider, not a person): it is derived before ``email`` is dropped,
so a redacted file decides exactly as the full one.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from typing import IO, Any

import orjson

from crmsync.rules.facts import domain_of_email
from crmsync.workbench.population import Member

#: Canonical facts that identify a person (DESIGN.md §2, identity group).
PERSONAL_FACTS = frozenset({"email", "first_name", "last_name"})
#: Custom fact names that hold personal data (``mobile_phone``, ``home_address``, ``nickname``).
_PERSONAL_NAME = re.compile(
    r"(^|_)(e?mail|email_address|phone|mobile|fax|name|first_name|last_name|full_name|nickname|"
    r"address|street|postal_code|zip|birth|birthday|date_of_birth|linkedin|twitter)(_|$)")
#: Custom facts that match the pattern above yet name an organisation, not a person.
_NOT_PERSONAL = re.compile(r"(company|account|org|organisation|organization|domain)")


def personal_facts(fact_names: Iterable[str]) -> frozenset[str]:
    """The facts among ``fact_names`` that ``--redact`` drops."""
    return frozenset(
        name for name in fact_names
        if name in PERSONAL_FACTS
        or (_PERSONAL_NAME.search(name) and not _NOT_PERSONAL.search(name)
            and name != "email_domain")
    )


def export_line(member: Member, *, keep: Collection[str] | None,
                drop: Collection[str]) -> dict[str, Any]:
    """One contact's line: ``id`` first, then its facts (only ``keep`` ones, none of ``drop``)."""
    facts: Mapping[str, Any] = member.facts
    line: dict[str, Any] = {"id": member.id}
    if "email" in drop and facts.get("email_domain") is None and facts.get("email"):
        # Derived here as the rules engine would, so dropping the address changes no decision.
        facts = {**facts, "email_domain": domain_of_email(facts.get("email"))}
    for name, value in facts.items():
        if name == "id" or name in drop or (keep is not None and name not in keep):
            continue
        line[name] = value
    return line


def write_jsonl(members: Iterable[Member], sink: IO[bytes], *, keep: Collection[str] | None = None,
                drop: Collection[str] = ()) -> int:
    """Write one JSON object per member; return how many were written.

    Datetimes are written as ISO 8601 (with their offset), which ``evaluate`` coerces back to
    the same instant.
    """
    written = 0
    dumps, option = orjson.dumps, orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
    for member in members:
        sink.write(dumps(export_line(member, keep=keep, drop=drop), option=option, default=str))
        written += 1
    return written


__all__ = ["PERSONAL_FACTS", "export_line", "personal_facts", "write_jsonl"]
