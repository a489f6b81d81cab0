"""Named connections: several CRM accounts (Salesforce orgs, HubSpot portals) in one config.

```toml
[connections.emea_sf]
type = "salesforce"
base_url = "https://emea.my.salesforce.com"
rules = "rules/emea.json"
reserve_daily_percent = 20
```

A named connection takes every ``[crm]`` key plus ``rules`` (its rule file), ``shadow`` (its
candidate rule file, evaluated beside ``rules`` and never written), ``state_url``
(its own state store; default: the shared ``[state] url``) and ``reserve_daily_percent``. The
single ``[crm]``/``[rules]``/``[state]`` form is the connection called ``default``.

Credentials (``token``, ``password``, ``security_token``) of a named connection come only from
the environment (``CRMSYNC_CONNECTIONS__EMEA_SF__TOKEN``), from the shared secrets file (a
``[connections.emea_sf]`` table) or from the connection's own ``secrets_file`` (shaped like the
default one: ``[crm] token = ...``), never from ``crmsync.toml``: a config file is shared,
versioned and pasted into tickets. Every other key can be overridden the same way
(``CRMSYNC_CONNECTIONS__EMEA_SF__BASE_URL``), first hit wins: environment, own secrets file,
shared secrets file, ``crmsync.toml``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crmsync.config.coerce import _coerce, _did_you_mean, _secret, _show
from crmsync.config.keys import _KEYS, _Key
from crmsync.config.secret import Secret
from crmsync.config.settings import (
    AUTH_BY_CRM,
    CRM_TYPES,
    DEFAULT_CONNECTION,
    ENV_PREFIX,
    CrmSettings,
    RulesSettings,
    Settings,
    SettingsError,
    StateSettings,
    redact_url,
)

#: Sections made of named tables (``[connections.NAME]``, ``[schedules.NAME]``).
NAMED_SECTIONS = ("connections", "schedules")
#: Keys that hold credentials: never read from crmsync.toml for a named connection.
CREDENTIALS = ("token", "password", "security_token")
CONNECTION_KEYS: dict[str, _Key] = {
    **_KEYS["crm"], "rules": _Key("path"), "shadow": _Key("path"),
    "state_url": _KEYS["state"]["url"],
}
#: Lower-case words joined by single underscores: a name is part of environment variable names
#: (where ``__`` separates the parts), lease names and state keys.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
MAX_NAME = 40

#: Raw values by section, then item name, then key: ``(value, where it came from)``.
Named = dict[str, dict[str, dict[str, tuple[Any, Any]]]]


def named_env_var(section: str, name: str, key: str) -> str:
    """Return the environment variable that sets ``[section.name] key``."""
    return f"{ENV_PREFIX}{section.upper()}__{name.upper()}__{key.upper()}"


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """One ``[connections.NAME]``: a CRM account, its rule file and (optionally) its store.

    Attributes:
        name: The connection's name (``--connection NAME``).
        crm: Which CRM, where and how to authenticate (as ``[crm]``).
        rules: Its rule file (``None``: the packaged default rule set).
        state_url: Its own state store, or ``None`` for the shared ``[state] url``.
    """

    name: str
    crm: CrmSettings
    rules: RulesSettings = dataclasses.field(default_factory=RulesSettings)
    state_url: str | None = None

    def __repr__(self) -> str:
        shown = redact_url(self.state_url) if self.state_url else None
        return (f"ConnectionSettings(name={self.name!r}, crm={self.crm!r}, rules={self.rules!r}, "
                f"state_url={shown!r})")


def collect_named(
    section: str, table: Any, source: Any, into: Named, problems: list[str], *, where: str,
    secrets: bool,
) -> None:
    """Keep the raw ``[section.NAME]`` tables of a TOML file, noting malformed ones."""
    if not isinstance(table, dict):
        problems.append(f"{where}: {section} must hold tables ([{section}.NAME])")
        return
    specs = CONNECTION_KEYS if section == "connections" else _schedule_keys()
    for name, values in table.items():
        label = f"[{section}.{name}]"
        if not isinstance(values, dict):
            problems.append(f"{where}: {label} must be a table")
            continue
        for key, value in values.items():
            if key not in specs:
                problems.append(f"{where}: unknown key {label} {key}" + _did_you_mean(key, specs))
            elif secrets and (section != "connections" or key not in (*CREDENTIALS, "state_url")):
                problems.append(f"{where}: {label} {key} does not belong in a secrets file")
            elif not secrets and section == "connections" and key in CREDENTIALS:
                problems.append(
                    f"{where}: {label} {key} does not belong in a config file; set "
                    f"{named_env_var(section, name, key)} or put it in a secrets file"
                )
            else:
                into.setdefault(section, {}).setdefault(name, {})[key] = (value, source)


def collect_named_env(
    env: Mapping[str, str], into: Named, problems: list[str], source_type: Any
) -> None:
    """Keep ``CRMSYNC_CONNECTIONS__NAME__KEY``-style variables (names are lower-cased)."""
    for var, raw in env.items():
        for section in NAMED_SECTIONS:
            prefix = f"{ENV_PREFIX}{section.upper()}__"
            if not var.startswith(prefix):
                continue
            name, sep, key = var[len(prefix):].lower().rpartition("__")
            specs = CONNECTION_KEYS if section == "connections" else _schedule_keys()
            if not sep or not name or key not in specs:
                problems.append(f"unknown setting {var}: expected {prefix}<NAME>__<KEY>, KEY one "
                                f"of {', '.join(k.upper() for k in specs)}")
                continue
            into.setdefault(section, {}).setdefault(name, {})[key] = (
                raw, source_type(f"env {var}", None))


def build_connections(
    layers: list[Named], problems: list[str], read_secrets: Any
) -> dict[str, ConnectionSettings]:
    """Resolve every declared ``[connections.NAME]`` from its layers (first hit wins).

    Args:
        layers: Raw values from the environment, the shared secrets file and crmsync.toml, in
            that order; only names declared in crmsync.toml (the last layer) are connections.
        problems: Where every problem found is appended.
        read_secrets: ``read_secrets(path, problems) -> {key: (raw, source)}`` reads a
            connection's own secrets file.
    """
    env_layer, secrets_layer, file_layer = (layer.get("connections", {}) for layer in layers)
    declared = file_layer
    for origin in (env_layer, secrets_layer):
        for name, values in origin.items():
            if name not in declared:
                where = next(iter(values.values()))[1].label
                problems.append(f"unknown connection {name!r} (in {where})"
                                + _did_you_mean(name, declared))
    connections: dict[str, ConnectionSettings] = {}
    for name in sorted(declared):
        if not NAME_PATTERN.fullmatch(name) or len(name) > MAX_NAME:
            problems.append(f"[connections.{name}]: a connection name is lower-case letters, "
                            f"digits and single underscores, at most {MAX_NAME} characters")
            continue
        if name == DEFAULT_CONNECTION:
            problems.append("[connections.default]: the default connection is [crm]/[rules]; "
                            "give this one another name")
            continue
        raw = [env_layer.get(name, {}), {}, secrets_layer.get(name, {}), declared[name]]
        own = _first(raw, "secrets_file")
        if own is not None and isinstance(own[0], str):
            path = Path(own[0])
            if own[1].base is not None and not path.is_absolute():
                path = own[1].base / path
            raw[1] = read_secrets(path, problems)
        built = _connection(name, raw, problems)
        if built is not None:
            connections[name] = built
    return connections


def _first(layers: list[dict[str, tuple[Any, Any]]], key: str) -> tuple[Any, Any] | None:
    return next((layer[key] for layer in layers if key in layer), None)


def _connection(
    name: str, layers: list[dict[str, tuple[Any, Any]]], problems: list[str]
) -> ConnectionSettings | None:
    label = f"[connections.{name}]"
    before = len(problems)
    values: dict[str, Any] = {}
    for key, spec in CONNECTION_KEYS.items():
        found = _first(layers, key)
        if found is None:
            continue
        raw, source = found
        ok, value = _coerce(raw, spec, from_env=source.label.startswith("env "),
                            base=source.base)
        if ok:
            values[key] = value
        else:
            shown = "" if spec.secret else f", got {_show(raw)}"
            problems.append(f"{label} {key}: expected {value}{shown} (from {source.label})")
    crm_type = values.get("type")
    if crm_type is None:
        problems.append(f"{label} type is missing (one of {', '.join(CRM_TYPES)})")
    elif crm_type not in CRM_TYPES:
        problems.append(f"{label} type: expected one of {', '.join(CRM_TYPES)}, got "
                        f"{_show(crm_type)}" + _did_you_mean(crm_type, CRM_TYPES))
    auth = values.get("auth")
    if crm_type in CRM_TYPES:
        if auth is None:
            auth = default_auth(crm_type, set(values))
        elif auth not in AUTH_BY_CRM[crm_type]:
            problems.append(f"{label} auth: expected one of {', '.join(AUTH_BY_CRM[crm_type])}, "
                            f"got {_show(auth)}" + _did_you_mean(auth, AUTH_BY_CRM[crm_type]))
    problems.extend(reserve_problem(label, values.get("reserve_daily_percent")))
    if len(problems) > before:
        return None
    crm = CrmSettings(
        type=crm_type, base_url=values.get("base_url"), token=_secret(values.get("token")),
        auth=auth or "", username=values.get("username"),
        password=_secret(values.get("password")),
        security_token=_secret(values.get("security_token")),
        consumer_key=values.get("consumer_key"), domain=values.get("domain", "login"),
        private_key_file=values.get("private_key_file"), objects=tuple(values.get("objects", ())),
        field_map=values.get("field_map"), api_version=values.get("api_version", "59.0"),
        secrets_file=values.get("secrets_file"),
        reserve_daily_percent=values.get("reserve_daily_percent", 0.0),
    )
    state_url = values.get("state_url")
    rules = RulesSettings(values.get("rules"), values.get("shadow"))
    return ConnectionSettings(name, crm, rules,
                              state_url.reveal() if isinstance(state_url, Secret) else None)


def reserve_problem(label: str, value: Any) -> list[str]:
    """Check ``reserve_daily_percent``: a share of the daily allowance, 0 up to (not) 100."""
    if isinstance(value, float) and not 0 <= value < 100:
        return [f"{label} reserve_daily_percent: expected 0 to 99.9, got {value:g}"]
    return []


def default_auth(crm_type: str, given: set[str]) -> str:
    """Infer Salesforce's flow from the credentials given; HubSpot has only one."""
    if crm_type == "hubspot":
        return "private_app"
    if "token" in given:
        return "session"
    if "private_key_file" in given or "consumer_key" in given:
        return "jwt"
    return "password"


def required_credentials(crm_type: str, auth: str) -> tuple[str, ...]:
    """Return the keys ``auth`` needs on ``crm_type``."""
    if crm_type == "hubspot":
        return ("token",)
    return {
        "session": ("base_url", "token"),
        "password": ("username", "password"),
        "jwt": ("username", "consumer_key", "private_key_file"),
    }[auth]


def missing_credentials(crm: CrmSettings) -> list[str]:
    """Return the keys ``crm``'s auth flow needs and does not have (``""`` counts as unset)."""
    if crm.type not in CRM_TYPES or crm.auth not in AUTH_BY_CRM[crm.type]:
        return []
    missing = []
    for key in required_credentials(crm.type, crm.auth):
        given = getattr(crm, key)
        if given is None or (isinstance(given, Secret) and not given):
            missing.append(key)
    return missing


def select_connection(settings: Settings, name: str, *, require_crm: bool = True) -> Settings:
    """Return the settings of connection ``name`` (its CRM, rules and state store).

    Raises:
        SettingsError: No such connection (with a "did you mean"), or, with ``require_crm``,
            its credentials are missing (naming where they are looked for).
    """
    root = settings.base or settings
    known = root.connection_names()
    if name == DEFAULT_CONNECTION:
        if not root.crm.type:
            others = ", ".join(known) or "none"
            raise SettingsError([
                "no default connection: [crm] type is not set; choose a connection with "
                f"--connection NAME (defined: {others})"
            ])
        chosen, label, env_name = root, "[crm]", lambda key: f"{ENV_PREFIX}CRM__{key.upper()}"
    elif name in root.connections:
        conn = root.connections[name]
        chosen = dataclasses.replace(
            root, crm=conn.crm, rules=conn.rules,
            state=StateSettings(conn.state_url) if conn.state_url else root.state,
            connection=name, base=root,
        )
        label = f"[connections.{name}]"

        def env_name(key: str) -> str:
            return named_env_var("connections", name, key)
    else:
        raise SettingsError([f"unknown connection {name!r}" + _did_you_mean(name, known)
                             + f"; defined: {', '.join(known) or 'none'}"])
    if require_crm:
        problems = [
            f"{label} {key} is missing (needed by {chosen.crm.type} auth {chosen.crm.auth!r}); "
            f"looked in: env {env_name(key)}"
            + (", secrets files" if key in CREDENTIALS else f", {label} {key} in the config file")
            for key in missing_credentials(chosen.crm)
        ]
        if problems:
            raise SettingsError(problems)
    return chosen


def _schedule_keys() -> dict[str, _Key]:
    from crmsync.config.schedules import SCHEDULE_KEYS

    return SCHEDULE_KEYS


__all__ = [
    "CONNECTION_KEYS",
    "CREDENTIALS",
    "ConnectionSettings",
    "NAMED_SECTIONS",
    "build_connections",
    "collect_named",
    "collect_named_env",
    "missing_credentials",
    "named_env_var",
    "select_connection",
]
