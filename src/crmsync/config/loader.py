"""``load_settings``: merge the sources, coerce, apply defaults and cross-field checks."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from crmsync.config.coerce import _coerce, _did_you_mean, _secret, _show
from crmsync.config.connections import (
    NAMED_SECTIONS,
    Named,
    build_connections,
    collect_named_env,
    default_auth,
    required_credentials,
    reserve_problem,
    select_connection,
)
from crmsync.config.keys import _KEYS, _SECRET_KEYS, _all_env_vars, env_var
from crmsync.config.schedules import build_schedules
from crmsync.config.secret import Secret
from crmsync.config.settings import (
    AUTH_BY_CRM,
    CONFIG_FILE,
    CRM_TYPES,
    DEFAULT_CONNECTION,
    DEFAULT_STATE_URL,
    ENV_PREFIX,
    TASK_CLOSE_POLICIES,
    ConsoleSettings,
    CrmSettings,
    RulesSettings,
    Settings,
    SettingsError,
    StateSettings,
    SyncSettings,
    WorkersSettings,
)
from crmsync.config.sources import _own_secrets, _read_toml, _secrets_file, _Source

log = logging.getLogger("crmsync.config")


def load_settings(
    path: Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    require_crm: bool = True,
    connection: str = DEFAULT_CONNECTION,
) -> Settings:
    """Load, merge, coerce and check the configuration.

    Args:
        path: The config file (``--config``); it must exist. ``None`` reads ``crmsync.toml`` in
            the working directory when there is one.
        env: The environment (``os.environ`` when ``None``).
        require_crm: Check that the selected connection names a CRM and has its credentials;
            commands that never contact a CRM (``runs``, ``report``) pass False.
        connection: The connection whose CRM, rules and state the returned settings hold:
            ``default`` (``[crm]``/``[rules]``/``[state]``) or a ``[connections.NAME]``.

    Raises:
        SettingsError: Listing every problem, and every place a missing value was looked for.
    """
    env = os.environ if env is None else env
    problems: list[str] = []
    file_values: dict[tuple[str, str], tuple[Any, _Source]] = {}
    file_named: Named = {}
    env_named: Named = {}
    secret_named: Named = {}

    config_file = Path(path) if path is not None else Path(CONFIG_FILE)
    if path is not None and not config_file.is_file():
        problems.append(f"config file {config_file} does not exist")
    found_file = config_file if config_file.is_file() else None
    if found_file is not None:
        _read_toml(found_file, "config", file_values, problems, allowed=None, named=file_named)

    env_values: dict[tuple[str, str], tuple[Any, _Source]] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        if section in NAMED_SECTIONS:
            continue  # CRMSYNC_CONNECTIONS__NAME__KEY: see collect_named_env
        if key not in _KEYS.get(section, {}):
            problems.append(f"unknown setting {name}" + _did_you_mean(name, _all_env_vars()))
            continue
        env_values[(section, key)] = (raw, _Source(f"env {name}", None))

    secrets_file, secrets_label = _secrets_file(env, env_values, file_values, problems)
    secret_values: dict[tuple[str, str], tuple[Any, _Source]] = {}
    if secrets_file is not None:
        _read_toml(secrets_file, "secrets", secret_values, problems, allowed=_SECRET_KEYS,
                   named=secret_named)
    collect_named_env(env, env_named, problems, _Source)
    connections = build_connections([env_named, secret_named, file_named], problems,
                                    _own_secrets)

    def places(section: str, key: str) -> str:
        where = [f"env {env_var(section, key)}"]
        if (section, key) in _SECRET_KEYS:
            where.append(secrets_label)
        where.append(f"[{section}] {key} in " + (str(found_file) if found_file
                                                  else f"{config_file.absolute()} (not found)"))
        return ", ".join(where)

    values: dict[tuple[str, str], Any] = {}
    from_file: set[tuple[str, str]] = set()
    for section, keys in _KEYS.items():
        for key, spec in keys.items():
            for layer in (env_values, secret_values, file_values):
                if (section, key) in layer:
                    if layer is file_values:
                        from_file.add((section, key))
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

    _warn_of_credentials_in(found_file, from_file & _CRM_CREDENTIALS,
                            values.get(("crm", "base_url")))
    # Only the selected connection must be complete: `--connection emea_sf` works in a file
    # with no [crm] at all, and a default run is not blocked by another connection's secrets.
    has_default = ("crm", "type") in values or not file_named.get("connections")
    settings = _build(values, problems, places, found_file, secrets_file,
                      require_crm and connection == DEFAULT_CONNECTION and has_default)
    names = ([DEFAULT_CONNECTION] if has_default else []) + sorted(connections)
    schedules = build_schedules(
        [env_named.get("schedules", {}), file_named.get("schedules", {})], names, problems)
    if problems:
        raise SettingsError(problems)
    assert settings is not None
    settings = dataclasses.replace(settings, connections=connections, schedules=schedules)
    if connection == DEFAULT_CONNECTION and not require_crm:
        return settings
    return select_connection(settings, connection, require_crm=require_crm)


_INVALID = object()
#: The CRM credentials a settings file should not hold (it is often shared or committed).
_CRM_CREDENTIALS = {("crm", "token"), ("crm", "password"), ("crm", "security_token")}
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _warn_of_credentials_in(file: Path | None, keys: set[tuple[str, str]], base_url: Any) -> None:
    """Warn (never fail: it works) when the settings file itself holds CRM credentials.

    A loopback CRM is the sandbox, whose made-up token ``crmsync demo`` writes there itself.
    """
    if not keys or file is None:
        return
    host = urlsplit(base_url).hostname if isinstance(base_url, str) else None
    if host in _LOOPBACK:
        return
    names = ", ".join(f"[{section}] {key}" for section, key in sorted(keys))
    log.warning("%s: %s set in the settings file, which is often shared or committed; keep "
                "it in the environment (%s) or the secrets file instead", file, names,
                ", ".join(env_var(section, key) for section, key in sorted(keys)))


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
            auth = default_auth(crm_type, {key for section, key in values if section == "crm"})
        else:
            one_of("crm", "auth", AUTH_BY_CRM[crm_type])
        if require_crm and auth in AUTH_BY_CRM[crm_type]:
            for key in required_credentials(crm_type, auth):
                given = values.get(("crm", key))
                if given is None or (isinstance(given, Secret) and not given):  # "" is unset
                    missing("crm", key, f" (needed by {crm_type} auth {auth!r})")
    one_of("sync", "task_close_policy", TASK_CLOSE_POLICIES)
    problems.extend(reserve_problem("[crm]", values.get(("crm", "reserve_daily_percent"))))
    for key, low in (("concurrency", 1), ("shards", 1), ("start_timeout_s", 1)):
        value = values.get(("workers", key))
        if isinstance(value, int | float) and value < low:
            problems.append(f"[workers] {key}: expected at least {low}, got {value}")
    for key, low in (("overlap_seconds", 0), ("batch_size", 1), ("page_size", 1),
                     ("max_attempts", 1), ("retry_budget_s", 0), ("concurrency", 1),
                     ("bulk_threshold", 0)):
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
            reserve_daily_percent=get("crm", "reserve_daily_percent", 0.0),
        ),
        rules=RulesSettings(path=get("rules", "path"), shadow=get("rules", "shadow")),
        state=StateSettings(url=state_url.reveal() if state_url else DEFAULT_STATE_URL),
        sync=SyncSettings(**{
            key: values[("sync", key)] for key in _KEYS["sync"] if ("sync", key) in values
        }),
        workers=WorkersSettings(**{
            key: (value.reveal() if isinstance(value, Secret) else value)
            for key in _KEYS["workers"]
            if (value := values.get(("workers", key))) is not None
        }),
        console=ConsoleSettings(token=_secret(get("console", "token")) or None),
        config_file=config_file,
    )
