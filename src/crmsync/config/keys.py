"""Every setting crmsync knows: its section, key, kind and environment variable."""

from __future__ import annotations

from dataclasses import dataclass

from crmsync.config.settings import ENV_PREFIX


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
        "reserve_daily_percent": _Key("float"),
    },
    "rules": {"path": _Key("path"), "shadow": _Key("path")},
    "state": {"url": _Key("str", secret=True)},
    "sync": {
        "overlap_seconds": _Key("int"), "batch_size": _Key("int"), "page_size": _Key("int"),
        "max_attempts": _Key("int"), "retry_budget_s": _Key("float"),
        "task_close_policy": _Key("str"), "concurrency": _Key("int"), "full": _Key("bool"),
        "restamp": _Key("bool"), "bulk_threshold": _Key("int"),
    },
    "workers": {
        "broker_url": _Key("str", secret=True), "redis_url": _Key("str", secret=True),
        "queue": _Key("str"), "concurrency": _Key("int"), "shards": _Key("int"),
        "start_timeout_s": _Key("float"),
    },
    # `crmsync serve`: the admin console's login when it listens beyond loopback.
    "console": {"token": _Key("str", secret=True)},
}
#: Keys a secrets file may set; nothing else belongs there.
_SECRET_KEYS = {("crm", "token"), ("crm", "password"), ("crm", "security_token"),
                ("state", "url"), ("workers", "broker_url"), ("workers", "redis_url"),
                ("console", "token")}


def env_var(section: str, key: str) -> str:
    """Return the environment variable that overrides ``[section] key``."""
    return f"{ENV_PREFIX}{section.upper()}__{key.upper()}"

def _all_env_vars() -> list[str]:
    return [env_var(section, key) for section, keys in _KEYS.items() for key in keys]
