"""The resolved, frozen settings dataclasses and :class:`SettingsError`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from crmsync.config.secret import Secret
from crmsync.errors import ConfigError
from crmsync.redact import redact_url

if TYPE_CHECKING:
    from crmsync.config.connections import ConnectionSettings
    from crmsync.config.schedules import ScheduleSettings

#: The file looked for in the working directory when no ``--config`` is given.
CONFIG_FILE = "crmsync.toml"
#: Environment variable naming the secrets file (wins over ``[crm] secrets_file``).
SECRETS_FILE_ENV = "CRMSYNC_SECRETS_FILE"
ENV_PREFIX = "CRMSYNC_"

CRM_TYPES = ("hubspot", "salesforce")
AUTH_BY_CRM = {"hubspot": ("private_app",), "salesforce": ("session", "password", "jwt")}
TASK_CLOSE_POLICIES = ("rule", "close", "leave")
DEFAULT_STATE_URL = "sqlite:///.crmsync/state.db"
#: The name of the connection the single ``[crm]``/``[rules]`` form defines.
DEFAULT_CONNECTION = "default"


@dataclass(frozen=True, slots=True)
class CrmSettings:
    """``[crm]``: which CRM, where, and how to authenticate.

    Attributes:
        type: ``hubspot`` or ``salesforce``.
        base_url: API base (HubSpot) or instance/login URL (Salesforce); ``None`` for the real
            service's default.
        token: HubSpot private-app token, or a Salesforce session id (``auth = "session"``).
        auth: ``private_app`` (HubSpot); ``session``, ``password`` or ``jwt`` (Salesforce).
        username: Salesforce user (password and JWT flows).
        password: Salesforce password (password flow).
        security_token: Salesforce security token (password flow; empty when IP-trusted).
        consumer_key: Connected app consumer key (JWT flow).
        domain: Salesforce login domain for password/JWT login: ``login``, ``test`` (sandbox
            orgs) or a My Domain prefix.
        private_key_file: PEM key of the connected app (JWT flow).
        objects: Salesforce objects to sync (e.g. ``("Lead", "Contact")``); empty for the default.
        field_map: Field map file; ``None`` for the packaged default of the CRM.
        api_version: Salesforce REST API version.
        secrets_file: The secrets file that was read, if any.
        reserve_daily_percent: Share of the CRM's daily API allowance left to other
            integrations (0-99; the shared rate limiter stops before using it).
    """

    type: str
    base_url: str | None = None
    token: Secret | None = None
    auth: str = "private_app"
    username: str | None = None
    password: Secret | None = None
    security_token: Secret | None = None
    consumer_key: str | None = None
    domain: str = "login"
    private_key_file: Path | None = None
    objects: tuple[str, ...] = ()
    field_map: Path | None = None
    api_version: str = "59.0"
    secrets_file: Path | None = None
    reserve_daily_percent: float = 0.0

    def secret(self, name: str) -> str | None:
        """Return the plain value of credential ``name`` (``token``, ``password``...), or None."""
        value = getattr(self, name)
        if value is not None and not isinstance(value, Secret):
            raise AttributeError(f"[crm] {name} is not a credential")
        return value.reveal() if value is not None else None


@dataclass(frozen=True, slots=True)
class RulesSettings:
    """``[rules]``: the rule file (``None`` for the packaged default rule set).

    Attributes:
        path: The production rule file, whose decisions runs write to the CRM.
        shadow: A candidate rule file every run also evaluates, writing nothing for it; the
            comparison is recorded per run (``crmsync shadow report``, ``rules promote``).
    """

    path: Path | None = None
    shadow: Path | None = None


@dataclass(frozen=True, slots=True)
class StateSettings:
    """``[state]``: the state store's SQLAlchemy URL (its password never shows in a repr)."""

    url: str = DEFAULT_STATE_URL

    def __repr__(self) -> str:
        return f"StateSettings(url={redact_url(self.url)!r})"


@dataclass(frozen=True, slots=True)
class SyncSettings:
    """``[sync]``: how runs read, write and retry.

    Attributes:
        overlap_seconds: How far before the cursor an incremental read starts (clock skew).
        batch_size: Records per write call; ``None`` for the CRM's maximum.
        page_size: Records per read call; ``None`` for the CRM's maximum.
        max_attempts: Attempts per call for transient errors.
        retry_budget_s: Total seconds one call may spend retrying.
        task_close_policy: ``rule`` (each task template decides), ``close`` or ``leave``.
        concurrency: Write calls in flight at once, within the CRM's limits (1: one at a time).
        full: Re-scan everything instead of reading incrementally.
        restamp: After a rule change, write the new rule-set version onto every contact, even
            those whose outputs did not change (off: only changed contacts are written).
        bulk_threshold: Pending updates of one Salesforce object from which they are sent as
            Bulk API 2.0 jobs (of up to 10,000 while the object is read) instead of 200-record
            collections (0: never).
    """

    overlap_seconds: int = 300
    batch_size: int | None = None
    page_size: int | None = None
    max_attempts: int = 5
    retry_budget_s: float = 300.0
    task_close_policy: str = "rule"
    concurrency: int = 4
    full: bool = False
    restamp: bool = False
    bulk_threshold: int = 2000


@dataclass(frozen=True, slots=True)
class WorkersSettings:
    """``[workers]``: Celery workers for sharded runs, and the rate limit they share.

    Attributes:
        broker_url: The Celery broker (``amqp://…`` RabbitMQ or ``redis://…``); empty: no
            workers (``run --via workers`` and ``crmsync worker`` say so).
        redis_url: Redis holding each connection's shared rate limit; when set, every run of
            the connection (local ones too) paces through it.
        queue: The queue shards travel on.
        concurrency: Shards one worker process runs at once (threads).
        shards: Key ranges each stream of a sharded run is split into.
        start_timeout_s: A sharded run gives up when no worker takes a shard for this long.
    """

    broker_url: str = ""
    redis_url: str = ""
    queue: str = "crmsync"
    concurrency: int = 2
    shards: int = 8
    start_timeout_s: float = 120.0

    def __repr__(self) -> str:
        return (f"WorkersSettings(broker_url={redact_url(self.broker_url)!r}, "
                f"redis_url={redact_url(self.redis_url)!r}, queue={self.queue!r}, "
                f"concurrency={self.concurrency}, shards={self.shards})")


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """``[console]``: the admin console (``crmsync serve``).

    Attributes:
        token: What a browser or script must present (``Authorization: Bearer``, or as the
            password of HTTP basic auth) when the console listens on a non-loopback address;
            ``None``: the console serves loopback only.
    """

    token: Secret | None = None


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable, resolved and checked; see :func:`load_settings`.

    ``crm``, ``rules`` and ``state`` are those of the selected ``connection`` (``default``: the
    single ``[crm]``/``[rules]``/``[state]`` form); ``connections`` holds every named
    ``[connections.NAME]`` and ``schedules`` every ``[schedules.NAME]``.
    """

    crm: CrmSettings
    rules: RulesSettings = field(default_factory=RulesSettings)
    state: StateSettings = field(default_factory=StateSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    workers: WorkersSettings = field(default_factory=WorkersSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    config_file: Path | None = None
    connection: str = DEFAULT_CONNECTION
    connections: Mapping[str, ConnectionSettings] = field(default_factory=dict, hash=False)
    schedules: Mapping[str, ScheduleSettings] = field(default_factory=dict, hash=False)
    #: The default connection's own parts, kept when another connection is selected.
    base: Settings | None = field(default=None, repr=False, compare=False, hash=False)

    def connection_names(self) -> list[str]:
        """Return every connection this configuration defines, ``default`` first when set."""
        root = self.base or self
        return ([DEFAULT_CONNECTION] if root.crm.type else []) + sorted(self.connections)


class SettingsError(ConfigError):
    """Configuration problems, all of them; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        """Build the message from every problem found."""
        self.problems = list(problems)
        count = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{count} configuration problem{'s' if count != 1 else ''}:\n{lines}")
