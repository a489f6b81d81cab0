"""Build the run's parts from settings: rule set, field map, connector and state store.

Kept apart from the command functions so ``demo``, ``setup``, ``plan``, ``run`` and ``undo``
assemble things the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from crmsync.config import Settings
from crmsync.connectors.base import Connector
from crmsync.connectors.fieldmap import FieldMap
from crmsync.connectors.fieldmap_load import bind_rules, load_fieldmap
from crmsync.connectors.pacing import Pacer
from crmsync.errors import ConfigError
from crmsync.retry import RetryPolicy
from crmsync.rules import RuleSet, load_ruleset
from crmsync.state import StateStore

if TYPE_CHECKING:
    from crmsync.sync import SyncOptions

#: The repository root when running from a checkout (editable install): default rule file and
#: field maps live there, where sales ops and admins edit them.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def default_path(relative: str) -> Path:
    """Return a shipped default file (``rules/default.json``, ``connectors/hubspot.json``).

    Looks in the working directory first (what ``crmsync init`` writes), then in the checkout
    crmsync was installed from.
    """
    for base in (Path.cwd(), PROJECT_ROOT):
        candidate = base / relative
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"cannot find {relative}: looked in {Path.cwd()} and {PROJECT_ROOT}; "
        "run `crmsync init` to write the starter files here"
    )


@dataclass
class Parts:
    """Everything a run needs."""

    settings: Settings
    fieldmap: FieldMap
    ruleset: RuleSet
    connector: Connector
    store: StateStore
    #: The candidate rule set of ``[rules] shadow``, evaluated beside ``ruleset``; never written.
    shadow: RuleSet | None = None

    def close(self) -> None:
        """Release the connector's sessions and the store's connections."""
        self.connector.close()
        self.store.close()


def fieldmap_path(settings: Settings) -> Path:
    """The connection's field map file: its ``field_map``, or the packaged one for its CRM."""
    return (Path(settings.crm.field_map) if settings.crm.field_map
            else default_path(f"connectors/{settings.crm.type}.json"))


def load_connection_fieldmap(settings: Settings) -> FieldMap:
    """Load the connection's field map and check it is for the connection's CRM type.

    Raises:
        InvalidFileError: The field map has problems (located).
        ConfigError: It maps another CRM than the connection's ``type``.
    """
    fieldmap = load_fieldmap(fieldmap_path(settings))
    if fieldmap.crm != settings.crm.type:
        where = ("[crm]" if settings.connection == "default"
                 else f"[connections.{settings.connection}]")
        raise ConfigError(
            f"field map {fieldmap.path} is for {fieldmap.crm}, but {where} type is "
            f"{settings.crm.type}"
        )
    return fieldmap


def load_parts(settings: Settings, *, need_rules: bool = True) -> Parts:
    """Assemble the parts of a run; every file is validated before any CRM is contacted."""
    fieldmap = load_connection_fieldmap(settings)
    rules_path = (Path(settings.rules.path) if settings.rules.path
                  else default_path("rules/default.json"))
    ruleset = load_ruleset(rules_path, extra_facts=dict(fieldmap.custom_facts))
    # The candidate is checked as strictly as production, before any CRM is contacted: a run
    # that cannot shadow what it was told to fails at start (exit 2), not silently.
    shadow = (load_ruleset(settings.rules.shadow, extra_facts=dict(fieldmap.custom_facts))
              if settings.rules.shadow else None)
    # The rule file's declared outputs and facts meet the field map here, before any CRM call.
    fieldmap = bind_rules(fieldmap, ruleset.declared_outputs, ruleset.declared_facts)
    connector = make_connector(settings, fieldmap)
    store = StateStore.open(settings.state.url, connection=settings.connection)
    return Parts(settings, fieldmap, ruleset, connector, store, shadow)


def run_options(
    settings: Settings, *, dry_run: bool = False, full: bool = False, trigger: str | None = None,
) -> SyncOptions:
    """Return a run's options from ``[sync]`` (``full`` adds to ``[sync] full``)."""
    from crmsync.sync import SyncOptions

    sync = settings.sync
    return SyncOptions(dry_run=dry_run, full=full or sync.full,
                       overlap=timedelta(seconds=sync.overlap_seconds),
                       task_close_policy=sync.task_close_policy, restamp=sync.restamp,
                       concurrency=sync.concurrency, bulk_threshold=sync.bulk_threshold,
                       trigger=trigger)


def make_pacer(settings: Settings) -> Pacer | None:
    """Return the connection's shared rate limiter when ``[workers] redis_url`` is set.

    Every process syncing the connection (workers, coordinators, local runs) then paces
    through the same Redis keys; without it each connector paces on its own (in-process).
    """
    if not settings.workers.redis_url:
        return None
    from crmsync.workers.pacer import redis_pacer

    return redis_pacer(settings.workers.redis_url, settings.connection, crm=settings.crm.type,
                       reserve_daily_percent=settings.crm.reserve_daily_percent)


def make_connector(settings: Settings, fieldmap: FieldMap) -> Connector:
    """Return the connector ``[crm] type`` names, with credentials from settings."""
    crm = settings.crm
    policy = RetryPolicy(attempts=settings.sync.max_attempts, budget_s=settings.sync.retry_budget_s)
    pacer = make_pacer(settings)
    if crm.type == "hubspot":
        from crmsync.connectors.hubspot import HubSpotConnector

        return HubSpotConnector(fieldmap, token=crm.secret("token") or "",
                                base_url=crm.base_url or None, policy=policy, pacer=pacer,
                                reserve_daily_percent=crm.reserve_daily_percent)
    from crmsync.connectors.salesforce import SalesforceAuth, SalesforceConnector

    if crm.auth == "session":
        auth = SalesforceAuth.with_session(crm.base_url or "", crm.secret("token") or "")
    elif crm.auth == "jwt":
        auth = SalesforceAuth.with_jwt(
            crm.username or "", crm.consumer_key or "", str(crm.private_key_file or ""),
            domain=crm.domain, instance_url=crm.base_url or None,
        )
    else:
        auth = SalesforceAuth.with_password(
            crm.username or "", crm.secret("password") or "", crm.secret("security_token") or "",
            domain=crm.domain, instance_url=crm.base_url or None,
        )
    reserve = ({"quota_reserve": crm.reserve_daily_percent / 100}
               if crm.reserve_daily_percent else {})
    return SalesforceConnector(fieldmap, auth=auth, objects=list(crm.objects) or None,
                               api_version=crm.api_version, policy=policy, pacer=pacer,
                               **reserve)
