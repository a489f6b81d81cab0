"""Errors of the state store, each with the exit code a scheduler acts on (README, "Exit codes").

A database problem never reaches the user as a raw SQLAlchemy traceback: :func:`store_error`
turns it into one of these, naming the store with its password (and any credential-looking query
parameter) hidden.
"""

from __future__ import annotations

import sqlalchemy as sa

from crmsync.errors import CrmsyncError, ExitCode
from crmsync.redact import redact_text, redact_url


class StateError(CrmsyncError):
    """The state store cannot be opened or read safely; crmsync refuses to guess."""

    exit_code = ExitCode.BAD_CONFIG


class StoreCorrupt(StateError):
    """The store's file is not a database, or is damaged: fix or move it, then run again."""

    exit_code = ExitCode.BAD_CONFIG


class StoreUnavailable(StateError):
    """The store went away mid-run (connection dropped, backend terminated, file locked).

    Exit 4, which a scheduler may retry: everything up to the failure was journaled, and the
    next run finishes the job like after any interrupted run.
    """

    exit_code = ExitCode.TRANSIENT


class StoreLost(StateError):
    """The SQLite file was deleted or replaced while crmsync had it open."""

    exit_code = ExitCode.TRANSIENT


def shown_url(url: str) -> str:
    """Return a database URL fit for a message: no password, no credential query values."""
    return redact_url(url)


def store_error(exc: sa.exc.DBAPIError | sa.exc.SQLAlchemyError, shown: str) -> StateError:
    """Return the :class:`StateError` for a database failure of the store ``shown``."""
    orig = getattr(exc, "orig", None)
    first_line = (str(orig) if orig is not None else str(exc)).strip().splitlines()[:1]
    cause = redact_text(first_line[0] if first_line else type(exc).__name__)
    lowered = cause.lower()
    if "not a database" in lowered or "malformed" in lowered or "file is encrypted" in lowered:
        return StoreCorrupt(
            f"state store {shown} is not a crmsync database or is damaged ({cause}); "
            "move the file aside and run again (a new store starts afresh; tasks already in "
            "the CRM are found, not duplicated)"
        )
    if "unable to open database" in lowered or "readonly database" in lowered:
        return StateError(f"cannot write state store {shown} ({cause}); check the path and "
                          "its permissions")
    if "locked" in lowered or "busy" in lowered:
        return StoreUnavailable(f"state store {shown} is locked by another process ({cause}); "
                                "run again when it is free")
    return StoreUnavailable(
        f"lost the state store {shown} ({cause}); the run stopped where it was; run again to "
        "finish (exit 4: safe to retry)"
    )
