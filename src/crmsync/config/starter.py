"""``crmsync init``'s starter settings file."""

from __future__ import annotations

from pathlib import Path

from crmsync.config.settings import CONFIG_FILE
from crmsync.errors import ConfigError

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
# A candidate rule file every run also evaluates and compares, writing nothing for it
# (`crmsync shadow report`; `crmsync rules promote` makes it production).
# shadow = "rules/candidate.json"

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
# Write calls in flight at once (the CRM's rate limits still apply to all of them together).
concurrency = 4
# Salesforce: from this many pending updates per object, Bulk API 2.0 jobs (up to 10,000
# records each) instead of 200-record collection calls (0: never).
bulk_threshold = 2000
# After a rule change every contact is re-evaluated once; only contacts whose outputs change
# are written. true: also write the new rule-set version onto every unchanged contact.
restamp = false
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
