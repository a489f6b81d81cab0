"""The whole crmsync error tree, grouped by what the caller must do about each error.

Every error carries an exit code (DESIGN.md §4); only the CLI turns them into exits. Messages
never contain tokens or contact data: ids, JSON pointers and status codes only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes; schedulers and scripts depend on them."""

    OK = 0
    PARTIAL = 1  # some records rejected; they are retried next run
    BAD_CONFIG = 2  # bad config, rule file or input: fix it, then run again
    AUTH_OR_QUOTA = 3  # credentials refused or daily quota exhausted: resumes next time
    TRANSIENT = 4  # transient failures outlasted the retry budget
    BUSY = 5  # another run holds this CRM's lease: nothing was done (not a failure)


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One located problem in a file a person edits (rule file, field map, config).

    Rendered as ``file:line:col: message (at /json/pointer)`` plus an optional hint.
    """

    file: str
    line: int
    col: int
    pointer: str
    message: str
    suggestion: str | None = None
    severity: str = "error"

    def render(self) -> str:
        """Return the compiler-style one- or two-line form of this diagnostic."""
        text = f"{self.file}:{self.line}:{self.col}: {self.severity}: {self.message}"
        if self.pointer:
            text += f" (at {self.pointer})"
        if self.suggestion:
            text += f"\n    hint: {self.suggestion}"
        return text


class CrmsyncError(Exception):
    """Base of every error crmsync raises on purpose."""

    exit_code: ExitCode = ExitCode.TRANSIENT


class ConfigError(CrmsyncError):
    """Configuration is missing or wrong; nothing was contacted or written."""

    exit_code = ExitCode.BAD_CONFIG


class InvalidFileError(ConfigError):
    """A file a person edits (rule file, field map) has located problems, all listed."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)
        count = len(self.diagnostics)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} found")


class AuthError(CrmsyncError):
    """The CRM refused the credentials (after any refresh the client could do)."""

    exit_code = ExitCode.AUTH_OR_QUOTA


class QuotaExhausted(CrmsyncError):
    """The CRM's daily API quota is used up; the run stops cleanly and resumes next time."""

    exit_code = ExitCode.AUTH_OR_QUOTA


class TransientError(CrmsyncError):
    """A failure worth retrying: 429, 5xx, timeouts, dropped connections, lock contention.

    Attributes:
        retry_after: Seconds the server asked us to wait, when it said so.
    """

    exit_code = ExitCode.TRANSIENT

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RunInProgress(CrmsyncError):
    """Another run against the same CRM holds the run lease; try again when it has finished."""

    exit_code = ExitCode.BUSY


class CrmRequestError(CrmsyncError):
    """The CRM rejected a whole request as malformed; retrying it unchanged cannot help."""

    exit_code = ExitCode.TRANSIENT


__all__ = [
    "AuthError",
    "ConfigError",
    "CrmRequestError",
    "CrmsyncError",
    "Diagnostic",
    "ExitCode",
    "InvalidFileError",
    "QuotaExhausted",
    "RunInProgress",
    "TransientError",
]
