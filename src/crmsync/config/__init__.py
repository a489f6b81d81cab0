"""Configuration: one frozen :class:`Settings` from ``crmsync.toml``, the environment and a
secrets file.

Each key is looked up, first hit wins, in: the environment (``CRMSYNC_<SECTION>__<KEY>``), the
secrets file (credentials only), ``crmsync.toml``, then the built-in default. Values are
type-checked and coerced; every problem is reported at once in one :class:`SettingsError`, and a
missing value names every place that was looked in. Credentials are held in :class:`Secret`, which
never shows its value in a repr, a log line or an error message.
"""

from __future__ import annotations

from crmsync.config.connections import ConnectionSettings, named_env_var, select_connection
from crmsync.config.keys import env_var
from crmsync.config.loader import load_settings
from crmsync.config.schedules import ScheduleSettings, format_every, parse_every
from crmsync.config.secret import Secret
from crmsync.config.settings import (
    CONFIG_FILE,
    DEFAULT_CONNECTION,
    DEFAULT_STATE_URL,
    ENV_PREFIX,
    SECRETS_FILE_ENV,
    ConsoleSettings,
    CrmSettings,
    RulesSettings,
    Settings,
    SettingsError,
    StateSettings,
    SyncSettings,
    WorkersSettings,
    redact_url,
)
from crmsync.config.starter import STARTER_TOML, write_starter

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_CONNECTION",
    "DEFAULT_STATE_URL",
    "ENV_PREFIX",
    "SECRETS_FILE_ENV",
    "STARTER_TOML",
    "ConnectionSettings",
    "ConsoleSettings",
    "CrmSettings",
    "RulesSettings",
    "ScheduleSettings",
    "Secret",
    "Settings",
    "SettingsError",
    "StateSettings",
    "SyncSettings",
    "WorkersSettings",
    "env_var",
    "format_every",
    "load_settings",
    "named_env_var",
    "parse_every",
    "redact_url",
    "select_connection",
    "write_starter",
]
