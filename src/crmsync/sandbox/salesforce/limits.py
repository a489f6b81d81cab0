"""The daily API request allocation: a rolling 24-hour count, as Salesforce keeps it (§2.9)."""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta

WINDOW = timedelta(hours=24)


class DailyUsage:
    """Counted API calls in the 24 hours before "now" (the emulator clock)."""

    def __init__(self) -> None:
        self._calls: deque[datetime] = deque()
        # Fault responses read the count outside the server's data lock.
        self._lock = threading.Lock()

    def used(self, now: datetime) -> int:
        """Calls counted in the window ending at ``now``."""
        with self._lock:
            while self._calls and self._calls[0] <= now - WINDOW:
                self._calls.popleft()
            return len(self._calls)

    def record(self, now: datetime) -> None:
        """Count one call."""
        with self._lock:
            self._calls.append(now)

    def set(self, used: int, now: datetime) -> None:
        """Pretend ``used`` calls were made just now (sandbox knob, state files)."""
        with self._lock:
            self._calls = deque([now] * max(0, used))
