"""Log output on stderr: ``-v/--verbose`` levels, ``--log-format text|json``, always redacted.

Only crmsync's own loggers are raised to INFO/DEBUG: the SDKs log request and response bodies
at DEBUG (contact data), so their loggers stay at WARNING whatever the verbosity.

Without ``-v`` a person still sees what a long run waits for: each retry
(``crmsync.retry``: "retrying in 4 s (2/5): ...") and, while a progress bar is shown, rate-limit
pacing on the bar itself (see :class:`ProgressNotes`).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from crmsync.redact import redact_text

_HANDLER_NAME = "crmsync-cli"
#: The SDKs and transports whose DEBUG output may quote headers or bodies.
_QUIET = ("hubspot", "simple_salesforce", "urllib3", "requests", "sqlalchemy")


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time, so a live progress bar (which
    redirects stderr) prints log lines above itself instead of tearing."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # logging must never end a run
            self.handleError(record)


class TextFormatter(logging.Formatter):
    """``crmsync: warning: message`` (default), with time and logger name under ``-v``."""

    def __init__(self, detailed: bool) -> None:
        super().__init__()
        self.detailed = detailed

    def format(self, record: logging.LogRecord) -> str:
        message = redact_text(record.getMessage())
        level = record.levelname.lower()
        if self.detailed:
            stamp = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S")
            return f"{stamp} {level:<7} {record.name}: {message}"
        return f"crmsync: {level}: {message}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact_text(record.getMessage()),
        }, ensure_ascii=False)


def configure_logging(verbose: int = 0, log_format: str = "text") -> None:
    """(Re)install crmsync's stderr log handler; safe to call more than once."""
    logger = logging.getLogger("crmsync")
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logger.setLevel(level)
    for handler in list(logger.handlers):
        if handler.get_name() == _HANDLER_NAME:
            logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter(verbose > 0))
    logger.addHandler(handler)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


class ProgressNotes(logging.Handler):
    """Shows what a run is waiting for (pacing, retries) on its progress bar.

    Attached to the ``crmsync`` logger while a progress bar is live; ``note`` is called with a
    short text ("pacing for the rate limit: 0.40 s", "retrying in 4 s (2/5)") or "" when the
    run moves on.
    """

    def __init__(self, note: Callable[[str], None]) -> None:
        super().__init__(level=logging.DEBUG)
        self.note = note

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        # "pacing burst: waiting 0.40s for the rate limit" (the pacers), "pacing: waiting ..."
        if message.startswith("pacing") and ": waiting" in message:
            wait = message.split("waiting", 1)[1].split(" for")[0].strip()
            self.note(f"pacing for the rate limit ({wait})")
        elif message.startswith("retrying in"):
            self.note(redact_text(message.split(":", 1)[0]))


#: Loggers that say (at DEBUG) when a call waits for a rate limit: in-process and shared pacers.
PACING_LOGGERS = ("crmsync.connectors.pacing", "crmsync.connectors.hubspot",
                  "crmsync.workers.pacer")


def attach_progress_notes(note: Callable[[str], None]) -> Callable[[], None]:
    """Route pacing and retry messages to ``note`` until the returned detach is called.

    Pacing is logged at DEBUG; the pacers' loggers are lowered to DEBUG for the bar while
    other handlers keep their own levels.
    """
    handler = ProgressNotes(note)
    logger = logging.getLogger("crmsync")
    pacers = [logging.getLogger(name) for name in PACING_LOGGERS]
    previous = [pacer.level for pacer in pacers]
    cli_handlers = [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]
    previous_levels = [h.level for h in cli_handlers]
    if logger.getEffectiveLevel() > logging.DEBUG:
        # Let DEBUG records reach the bar without printing them: the stderr handler keeps the
        # level the user chose.
        for h in cli_handlers:
            h.setLevel(logger.getEffectiveLevel())
        for pacer in pacers:
            pacer.setLevel(logging.DEBUG)
    logger.addHandler(handler)

    def detach() -> None:
        logger.removeHandler(handler)
        for pacer, level in zip(pacers, previous, strict=True):
            pacer.setLevel(level)
        for h, level in zip(cli_handlers, previous_levels, strict=True):
            h.setLevel(level)

    return detach


__all__ = ["JsonFormatter", "ProgressNotes", "TextFormatter", "attach_progress_notes",
           "configure_logging"]
