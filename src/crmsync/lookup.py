"""Explain contacts read from the CRM by id: what ``crmsync explain --contact`` and the
console's contact lookup show.

Read-only: the contacts are fetched, evaluated with the rules and forgotten; nothing about them
is stored or logged (a decision holds ids, outputs and the rule trace).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from crmsync.config import Settings
from crmsync.errors import ConfigError
from crmsync.model import Decision
from crmsync.rules import load_ruleset


def explain_from_crm(
    settings: Settings, contact_ids: Sequence[str], now: datetime, *,
    rules_file: Path | None = None,
) -> list[Decision]:
    """Read ``contact_ids`` from the CRM of ``settings`` and explain each one's decision.

    Args:
        settings: Loaded settings with CRM credentials.
        contact_ids: CRM record ids, looked up in every stream (Lead and Contact...).
        now: The rules' clock.
        rules_file: The rule file; ``None`` for the connection's ``[rules] path`` (or the
            packaged default).

    Raises:
        ConfigError: None of the ids is in the CRM.
    """
    # Imported here: `crmsync explain --input` must start without the SDKs.
    from crmsync.connectors.fieldmap_load import load_fieldmap
    from crmsync.wiring import default_path, fieldmap_path, make_connector

    fieldmap = load_fieldmap(fieldmap_path(settings))
    rules_path = rules_file or (Path(settings.rules.path) if settings.rules.path
                                else default_path("rules/default.json"))
    ruleset = load_ruleset(rules_path, extra_facts=dict(fieldmap.custom_facts))
    connector = make_connector(settings, fieldmap)
    try:
        contacts = [c for stream in connector.streams()
                    for c in connector.read_ids(stream, list(contact_ids))]
    finally:
        connector.close()
    if not contacts:
        raise ConfigError(f"no contact with id {', '.join(contact_ids)} in the "
                          f"{settings.crm.type} CRM")
    return [ruleset.evaluate(c.facts, now=now, contact_id=c.id, explain=True) for c in contacts]
