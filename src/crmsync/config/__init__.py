"""Configuration: one frozen :class:`Settings` from ``crmsync.toml``, the environment and a
secrets file.

Each key is looked up, first hit wins, in: the environment (``CRMSYNC_<SECTION>__<KEY>``), the
secrets file (credentials only), ``crmsync.toml``, then the built-in default. Values are
type-checked and coerced; every problem is reported at once in one :class:`SettingsError`, and a
missing value names every place that was looked in. Credentials are held in :class:`Secret`, which
never shows its value in a repr, a log line or an error message.
"""

from __future__ import annotations

from crmsync.config.keys import env_var
from crmsync.config.loader import load_settings
from crmsync.config.secret import Secret
from crmsync.config.settings import (
    CONFIG_FILE,
    DEFAULT_STATE_URL,
    ENV_PREFIX,
    SECRETS_FILE_ENV,
    CrmSettings,
    RulesSettings,
    Settings,
    SettingsError,
    StateSettings,
    SyncSettings,
    redact_url,
)
from crmsync.config.starter import STARTER_TOML, write_starter

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_STATE_URL",
    "ENV_PREFIX",
    "SECRETS_FILE_ENV",
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
