"""What every console page works with: the settings, the state stores, form tokens, the clock.

Settings are loaded once at start-up (a bad file fails ``crmsync serve`` before it listens);
each connection's credentials are checked only when a page needs its CRM (undo, explain, run
now), so a console over the state store alone works without any CRM secret.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from crmsync.config import Settings, load_settings
from crmsync.console.forms import FormTokens
from crmsync.state import StateStore

log = logging.getLogger("crmsync.console")


def _wall_clock() -> datetime:
    return datetime.now(UTC)  # noqa: TID251 - the console is an entry point, like the CLI


class Console:
    """The console's shared state: one instance per app, safe to use from request threads.

    Args:
        config_path: The settings file (``None``: ``./crmsync.toml``).
        connection: Show only this connection (``None``: every connection the file defines).
        now: The clock (tests may fix it).
        tokens: Form token maker (tests may give a fixed key).
    """

    def __init__(
        self,
        config_path: Path | None,
        connection: str | None = None,
        *,
        now: Callable[[], datetime] = _wall_clock,
        tokens: FormTokens | None = None,
    ) -> None:
        self.config_path = config_path
        self.settings = load_settings(config_path, require_crm=False)
        self.only = connection
        if connection is not None:
            # Checked now, so a misspelt --connection fails at start-up (exit 2).
            load_settings(config_path, require_crm=False, connection=connection)
        self.now = now
        self.tokens = tokens or FormTokens()
        self._stores: dict[tuple[str, str], StateStore] = {}
        self._lock = threading.Lock()
        self._background: dict[str, threading.Thread] = {}

    @property
    def connections(self) -> list[str]:
        """The connections the console shows, ``default`` first."""
        names = self.settings.connection_names() or ["default"]
        return [self.only] if self.only is not None else names

    def settings_for(self, connection: str, *, require_crm: bool) -> Settings:
        """Settings of one connection; with ``require_crm`` its credentials must be present.

        Raises:
            SettingsError: The connection is unknown, or its credentials are missing.
        """
        return load_settings(self.config_path, require_crm=require_crm, connection=connection)

    def store(self, connection: str = "default") -> StateStore:
        """The state store of ``connection`` (opened once, shared by every request)."""
        url = self.settings_for(connection, require_crm=False).state.url
        with self._lock:
            key = (url, connection)
            if key not in self._stores:
                self._stores[key] = StateStore.open(url, connection=connection)
            return self._stores[key]

    def shared_store(self) -> StateStore:
        """The ``[state] url`` store: schedule slots and pauses live there."""
        return self.open_store((self.settings.base or self.settings).state.url)

    def open_store(self, url: str) -> StateStore:
        """The store at ``url`` (for :func:`crmsync.schedule.schedule_statuses`)."""
        with self._lock:
            key = (url, "default")
            if key not in self._stores:
                self._stores[key] = StateStore.open(url)
            return self._stores[key]

    def start_background(self, name: str, work: Callable[[], object]) -> bool:
        """Run ``work`` in a thread named ``name``; False when that one is still running."""
        with self._lock:
            running = self._background.get(name)
            if running is not None and running.is_alive():
                return False

            def guarded() -> None:
                try:
                    work()
                except Exception as error:  # the ledger has the run's error; the type only here
                    log.error("console: %s ended with %s", name, type(error).__name__)

            thread = threading.Thread(target=guarded, name=f"console-{name}", daemon=True)
            self._background[name] = thread
            thread.start()
            return True

    def is_running(self, name: str) -> bool:
        """True while background work ``name`` runs."""
        thread = self._background.get(name)
        return thread is not None and thread.is_alive()

    def close(self) -> None:
        """Close every store opened."""
        with self._lock:
            for store in self._stores.values():
                store.close()
            self._stores.clear()
