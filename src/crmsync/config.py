"""Configuration: one frozen :class:`Settings` from ``crmsync.toml``, the environment and a secrets file.

Each key is looked up, first hit wins, in: the environment (``CRMSYNC_<SECTION>__<KEY>``), the
secrets file (credentials only), ``crmsync.toml``, then the built-in default. Values are
type-checked and coerced; every problem is reported at once in one :class:`SettingsError`, and a
missing value names every place that was looked in. Credentials are held in :class:`Secret`, which
never shows its value in a repr, a log line or an error message.
"""

from __future__ import annotations

import difflib
import hmac
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from crmsync.errors import ConfigError

#: The file looked for in the working directory when no ``--config`` is given.
CONFIG_FILE = "crmsync.toml"
#: Environment variable naming the secrets file (wins over ``[crm] secrets_file``).
SECRETS_FILE_ENV = "CRMSYNC_SECRETS_FILE"
ENV_PREFIX = "CRMSYNC_"

CRM_TYPES = ("hubspot", "salesforce")
AUTH_BY_CRM = {"hubspot": ("private_app",), "salesforce": ("session", "password", "jwt")}
TASK_CLOSE_POLICIES = ("rule", "close", "leave")
DEFAULT_STATE_URL = "sqlite:///.crmsync/state.db"


class Secret:
    """A credential: compares and reveals its value on request, shows ``'***'`` everywhere else."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        """Wrap ``value``."""
        self._value = value

    def reveal(self) -> str:
        """Return the plain value, for the one call that sends it to the CRM."""
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    def __str__(self) -> str:
        return "***"

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)


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

    def secret(self, name: str) -> str | None:
        """Return the plain value of credential ``name`` (``token``, ``password``...), or None."""
        value = getattr(self, name)
        if value is not None and not isinstance(value, Secret):
            raise AttributeError(f"[crm] {name} is not a credential")
        return value.reveal() if value is not None else None


@dataclass(frozen=True, slots=True)
class RulesSettings:
    """``[rules]``: the rule file (``None`` for the packaged default rule set)."""

    path: Path | None = None


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
        concurrency: Parallel API calls, within the CRM's limits.
        full: Re-scan everything instead of reading incrementally.
    """

    overlap_seconds: int = 300
    batch_size: int | None = None
    page_size: int | None = None
    max_attempts: int = 5
    retry_budget_s: float = 300.0
    task_close_policy: str = "rule"
    concurrency: int = 4
    full: bool = False


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable, resolved and checked; see :func:`load_settings`."""

    crm: CrmSettings
    rules: RulesSettings = field(default_factory=RulesSettings)
    state: StateSettings = field(default_factory=StateSettings)
    sync: SyncSettings = field(default_factory=SyncSettings)
    config_file: Path | None = None


class SettingsError(ConfigError):
    """Configuration problems, all of them; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        """Build the message from every problem found."""
        self.problems = list(problems)
        count = len(self.problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{count} configuration problem{'s' if count != 1 else ''}:\n{lines}")


# -- the keys -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Key:
    kind: str  # str | int | float | bool | list | path | secret | url
    secret: bool = False


_KEYS: dict[str, dict[str, _Key]] = {
    "crm": {
        "type": _Key("str"), "base_url": _Key("url"), "token": _Key("str", secret=True),
        "auth": _Key("str"), "username": _Key("str"), "password": _Key("str", secret=True),
        "security_token": _Key("str", secret=True), "consumer_key": _Key("str"),
        "domain": _Key("str"),
        "private_key_file": _Key("path"), "objects": _Key("list"), "field_map": _Key("path"),
        "api_version": _Key("str"), "secrets_file": _Key("path"),
    },
    "rules": {"path": _Key("path")},
    "state": {"url": _Key("str", secret=True)},
    "sync": {
        "overlap_seconds": _Key("int"), "batch_size": _Key("int"), "page_size": _Key("int"),
        "max_attempts": _Key("int"), "retry_budget_s": _Key("float"),
        "task_close_policy": _Key("str"), "concurrency": _Key("int"), "full": _Key("bool"),
    },
}
#: Keys a secrets file may set; nothing else belongs there.
_SECRET_KEYS = {("crm", "token"), ("crm", "password"), ("crm", "security_token"),
                ("state", "url")}


def env_var(section: str, key: str) -> str:
    """Return the environment variable that overrides ``[section] key``."""
    return f"{ENV_PREFIX}{section.upper()}__{key.upper()}"


def redact_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}"
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


# -- loading ------------------------------------------------------------------------------------


@dataclass
class _Source:
    """Where a raw value came from, for messages (``CRMSYNC_CRM__TOKEN``, ``crmsync.toml``)."""

    label: str
    base: Path | None  # relative paths in files resolve against the file's folder


def load_settings(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    require_crm: bool = True,
) -> Settings:
    """Load, merge, coerce and check the configuration.

    Args:
        path: The config file (``--config``); it must exist. ``None`` reads ``crmsync.toml`` in
            the working directory when there is one.
        env: The environment (``os.environ`` when ``None``).
        require_crm: Check that ``[crm]`` names a CRM and its credentials; commands that never
            contact a CRM (``runs``, ``report``) pass False.

    Raises:
        SettingsError: Listing every problem, and every place a missing value was looked for.
    """
    env = os.environ if env is None else env
    problems: list[str] = []
    file_values: dict[tuple[str, str], tuple[Any, _Source]] = {}

    config_file = Path(path) if path is not None else Path(CONFIG_FILE)
    if path is not None and not config_file.is_file():
        problems.append(f"config file {config_file} does not exist")
    found_file = config_file if config_file.is_file() else None
    if found_file is not None:
        _read_toml(found_file, "config", file_values, problems, allowed=None)

    env_values: dict[tuple[str, str], tuple[Any, _Source]] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        if key not in _KEYS.get(section, {}):
            problems.append(f"unknown setting {name}" + _did_you_mean(name, _all_env_vars()))
            continue
        env_values[(section, key)] = (raw, _Source(f"env {name}", None))

    secrets_file, secrets_label = _secrets_file(env, env_values, file_values, problems)
    secret_values: dict[tuple[str, str], tuple[Any, _Source]] = {}
    if secrets_file is not None:
        _read_toml(secrets_file, "secrets", secret_values, problems, allowed=_SECRET_KEYS)

    def places(section: str, key: str) -> str:
        where = [f"env {env_var(section, key)}"]
        if (section, key) in _SECRET_KEYS:
            where.append(secrets_label)
        where.append(f"[{section}] {key} in " + (str(found_file) if found_file
                                                  else f"{config_file.absolute()} (not found)"))
        return ", ".join(where)

    values: dict[tuple[str, str], Any] = {}
    for section, keys in _KEYS.items():
        for key, spec in keys.items():
            for layer in (env_values, secret_values, file_values):
                if (section, key) in layer:
                    raw, source = layer[(section, key)]
                    ok, value = _coerce(raw, spec, from_env=source.base is None
                                        and source.label.startswith("env "), base=source.base)
                    if ok:
                        values[(section, key)] = value
                    else:
                        shown = "" if spec.secret else f", got {_show(raw)}"
                        problems.append(f"[{section}] {key}: expected {value}{shown} "
                                        f"(from {source.label})")
                        values[(section, key)] = _INVALID
                    break

    settings = _build(values, problems, places, found_file, secrets_file, require_crm)
    if problems:
        raise SettingsError(problems)
    assert settings is not None
    return settings


_INVALID = object()


def _build(
    values: dict[tuple[str, str], Any],
    problems: list[str],
    places: Callable[[str, str], str],
    config_file: Path | None,
    secrets_file: Path | None,
    require_crm: bool,
) -> Settings | None:
    """Apply defaults and cross-field checks; append problems; return Settings when sound."""

    def get(section: str, key: str, default: Any = None) -> Any:
        value = values.get((section, key), default)
        return default if value is _INVALID else value

    def missing(section: str, key: str, why: str = "") -> None:
        problems.append(f"[{section}] {key} is missing{why}; looked in: {places(section, key)}")

    def one_of(section: str, key: str, allowed: tuple[str, ...]) -> None:
        value = values.get((section, key))
        if isinstance(value, str) and value not in allowed:
            problems.append(f"[{section}] {key}: expected one of {', '.join(allowed)}, got "
                            f"{_show(value)}" + _did_you_mean(value, allowed))

    crm_type = get("crm", "type")
    one_of("crm", "type", CRM_TYPES)
    if crm_type not in CRM_TYPES:
        if crm_type is None and ("crm", "type") not in values and require_crm:
            missing("crm", "type", f" (one of {', '.join(CRM_TYPES)})")
        crm_type = crm_type if crm_type in CRM_TYPES else None
    auth = get("crm", "auth")
    if crm_type is not None:
        if auth is None:
            auth = _default_auth(crm_type, values)
        else:
            one_of("crm", "auth", AUTH_BY_CRM[crm_type])
        if require_crm and auth in AUTH_BY_CRM[crm_type]:
            for key in _required_credentials(crm_type, auth):
                given = values.get(("crm", key))
                if given is None or (isinstance(given, Secret) and not given):  # "" is unset
                    missing("crm", key, f" (needed by {crm_type} auth {auth!r})")
    one_of("sync", "task_close_policy", TASK_CLOSE_POLICIES)
    for key, low in (("overlap_seconds", 0), ("batch_size", 1), ("page_size", 1),
                     ("max_attempts", 1), ("retry_budget_s", 0), ("concurrency", 1)):
        value = values.get(("sync", key))
        if isinstance(value, int | float) and value < low:
            problems.append(f"[sync] {key}: expected at least {low}, got {value}")

    if problems:
        return None
    state_url = get("state", "url")
    return Settings(
        crm=CrmSettings(
            type=crm_type or "",
            base_url=get("crm", "base_url"),
            token=_secret(get("crm", "token")),
            auth=auth or "",
            username=get("crm", "username"),
            password=_secret(get("crm", "password")),
            security_token=_secret(get("crm", "security_token")),
            consumer_key=get("crm", "consumer_key"),
            domain=get("crm", "domain", "login"),
            private_key_file=get("crm", "private_key_file"),
            objects=tuple(get("crm", "objects", ())),
            field_map=get("crm", "field_map"),
            api_version=get("crm", "api_version", "59.0"),
            secrets_file=secrets_file,
        ),
        rules=RulesSettings(path=get("rules", "path")),
        state=StateSettings(url=state_url.reveal() if state_url else DEFAULT_STATE_URL),
        sync=SyncSettings(**{
            key: values[("sync", key)] for key in _KEYS["sync"] if ("sync", key) in values
        }),
        config_file=config_file,
    )


def _default_auth(crm_type: str, values: Mapping[tuple[str, str], Any]) -> str:
    """Infer Salesforce's flow from the credentials given; HubSpot has only one."""
    if crm_type == "hubspot":
        return "private_app"
    if ("crm", "token") in values:
        return "session"
    if ("crm", "private_key_file") in values or ("crm", "consumer_key") in values:
        return "jwt"
    return "password"


def _required_credentials(crm_type: str, auth: str) -> tuple[str, ...]:
    if crm_type == "hubspot":
        return ("token",)
    return {
        "session": ("base_url", "token"),
        "password": ("username", "password"),
        "jwt": ("username", "consumer_key", "private_key_file"),
    }[auth]


def _secret(value: Any) -> Secret | None:
    return value if value is None or isinstance(value, Secret) else Secret(str(value))


def _secrets_file(
    env: Mapping[str, str],
    env_values: Mapping[tuple[str, str], tuple[Any, _Source]],
    file_values: Mapping[tuple[str, str], tuple[Any, _Source]],
    problems: list[str],
) -> tuple[Path | None, str]:
    """Find the secrets file; return it (None when there is none) and how to describe it."""
    if env.get(SECRETS_FILE_ENV):
        path, origin = Path(env[SECRETS_FILE_ENV]), f"env {SECRETS_FILE_ENV}"
    else:
        chosen = env_values.get(("crm", "secrets_file")) or file_values.get(("crm", "secrets_file"))
        if chosen is None:
            return None, f"secrets file (none: set {SECRETS_FILE_ENV} or [crm] secrets_file)"
        raw, source = chosen
        if not isinstance(raw, str):
            return None, "secrets file (invalid [crm] secrets_file)"  # reported by _coerce
        path = (source.base / raw) if source.base is not None else Path(raw)
        origin = source.label
    if not path.is_file():
        problems.append(f"secrets file {path} does not exist (named by {origin})")
        return None, f"secrets file {path} (not found)"
    return path, f"secrets file {path}"


def _read_toml(
    path: Path,
    what: str,
    into: dict[tuple[str, str], tuple[Any, _Source]],
    problems: list[str],
    *,
    allowed: set[tuple[str, str]] | None,
) -> None:
    """Read a TOML file's ``[section] key`` values into ``into``, noting every problem."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{what} file {path}: cannot read ({type(exc).__name__})")
        return
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message is "<what> (at line L, column C)": positions, never the value.
        problems.append(f"{path}: invalid TOML: {exc}")
        return
    source = _Source(str(path), path.absolute().parent)
    for section, table in data.items():
        if section not in _KEYS:
            problems.append(f"{path}: unknown section [{section}]" + _did_you_mean(section, _KEYS))
            continue
        if not isinstance(table, dict):
            problems.append(f"{path}: {section} must be a table ([{section}])")
            continue
        for key, value in table.items():
            if key not in _KEYS[section]:
                problems.append(f"{path}: unknown key [{section}] {key}"
                                + _did_you_mean(key, _KEYS[section]))
            elif allowed is not None and (section, key) not in allowed:
                problems.append(f"{path}: [{section}] {key} does not belong in a secrets file")
            else:
                into[(section, key)] = (value, source)


def _coerce(raw: Any, spec: _Key, *, from_env: bool, base: Path | None) -> tuple[bool, Any]:
    """Return ``(True, value)``, or ``(False, what was expected)``."""
    kind = spec.kind
    if kind in ("str", "url", "path"):
        if not isinstance(raw, str) or (not raw and not spec.secret):
            return False, "a non-empty string" if isinstance(raw, str) else "a string"
        if kind == "url" and not raw.startswith(("http://", "https://")):
            return False, "an http:// or https:// URL"
        if kind == "path":
            path = Path(raw).expanduser()
            return True, base / path if base is not None and not path.is_absolute() else path
        if spec.secret:
            return True, Secret(_sqlite_relative(raw, base) if spec is _KEYS["state"]["url"]
                                else raw)
        return True, raw
    if kind == "bool":
        if isinstance(raw, bool):
            return True, raw
        if from_env and isinstance(raw, str) and raw.strip().lower() in _BOOLS:
            return True, _BOOLS[raw.strip().lower()]
        return False, "true or false"
    if kind in ("int", "float"):
        if isinstance(raw, bool):
            return False, "a number" if kind == "float" else "an integer"
        if from_env and isinstance(raw, str):
            try:
                return True, int(raw) if kind == "int" else float(raw)
            except ValueError:
                return False, "a number" if kind == "float" else "an integer"
        if isinstance(raw, int) or (kind == "float" and isinstance(raw, float)):
            return True, float(raw) if kind == "float" else raw
        return False, "a number" if kind == "float" else "an integer"
    # list of strings: a TOML array, or comma-separated in the environment
    if from_env and isinstance(raw, str):
        return True, tuple(part.strip() for part in raw.split(",") if part.strip())
    if isinstance(raw, list) and all(isinstance(item, str) and item for item in raw):
        return True, tuple(raw)
    return False, "a list of strings"


_BOOLS = {"1": True, "true": True, "yes": True, "on": True,
          "0": False, "false": False, "no": False, "off": False}


def _sqlite_relative(url: str, base: Path | None) -> str:
    """Anchor a relative SQLite path written in a file at that file's folder, like other paths."""
    prefix = "sqlite:///"
    if base is None or not url.startswith(prefix) or url == prefix:
        return url
    rest = url[len(prefix):]
    if rest.startswith("/") or rest.startswith(":memory:"):
        return url
    return prefix + (base / rest).as_posix()


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _all_env_vars() -> list[str]:
    return [env_var(section, key) for section, keys in _KEYS.items() for key in keys]


# -- crmsync init -------------------------------------------------------------------------------

STARTER_TOML = """\
# crmsync configuration. Every key can be overridden by an environment variable named
# CRMSYNC_<SECTION>__<KEY>, e.g. CRMSYNC_CRM__TYPE=salesforce or CRMSYNC_SYNC__BATCH_SIZE=50.
# Credentials (token, password, security_token) belong in the environment or in a secrets file,
# never in rule files: CRMSYNC_CRM__TOKEN=..., or CRMSYNC_SECRETS_FILE=path/to/secrets.toml
# holding e.g.   [crm]
#                token = "pat-..."
# Relative paths below are relative to this file's folder.

[crm]
# "hubspot" or "salesforce".
type = "hubspot"
# Leave unset for the real API. To try rules against the sandbox CRM (`crmsync sandbox serve`),
# point at the URL it prints, e.g.:
# base_url = "http://127.0.0.1:8765"
# HubSpot: auth = "private_app" (the token is the private app's access token).
# Salesforce: auth = "session" (base_url = instance URL, token = session id),
#             "password" (username, password, security_token) or
#             "jwt" (username, consumer_key, private_key_file);
#             domain = "login" (or "test" for a Salesforce sandbox org, or a My Domain prefix).
# objects = ["Lead", "Contact"]        # Salesforce objects to sync
# api_version = "59.0"                 # Salesforce REST API version
# field_map = "connectors/hubspot.json"   # default: the field map shipped for the CRM
# secrets_file = "secrets.toml"

[rules]
path = "rules/default.json"

[state]
# SQLite file by default; PostgreSQL for shared workers: "postgresql+psycopg://user@host/db".
url = "sqlite:///.crmsync/state.db"

[sync]
# Seconds re-read before the last cursor on incremental runs (absorbs clock skew).
overlap_seconds = 300
# batch_size = 200     # records per write call; default: the CRM's maximum
# page_size = 100      # records per read call; default: the CRM's maximum
max_attempts = 5
retry_budget_s = 300
# Obsolete follow-up tasks: "rule" (each task template decides), "close" or "leave".
task_close_policy = "rule"
concurrency = 4
"""


def write_starter(directory: Path, *, force: bool = False) -> list[Path]:
    """Write a starter ``crmsync.toml`` into ``directory`` and return the files written.

    Raises:
        ConfigError: The file exists and ``force`` is False.
    """
    target = Path(directory) / CONFIG_FILE
    if target.exists() and not force:
        raise ConfigError(f"{target} already exists; use --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(STARTER_TOML, "utf-8")
    return [target]


__all__ = [
    "STARTER_TOML",
    "CrmSettings",
    "RulesSettings",
    "Secret",
    "Settings",
    "SettingsError",
    "StateSettings",
    "SyncSettings",
    "env_var",
    "load_settings",
    "redact_url",
    "write_starter",
]
