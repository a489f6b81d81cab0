"""How the CLI fails: one error format on stderr, one JSON error shape, exit codes, signals.

Every way a command can end badly goes through here:

* a :class:`~crmsync.errors.CrmsyncError` (raised on purpose) prints
  ``crmsync: error: <message>`` (plus ``hint: ...`` when the error carries one) and exits with
  its code;
* anything else is a bug or a vendor surprise: the last-resort handler prints
  ``crmsync: error: <ErrorClass>: <message>`` with every credential redacted (an SDK's exception
  can quote a request header), a hint to re-run with ``--debug``, and exits 1; the traceback is
  shown only under ``--debug``, redacted too;
* Ctrl-C and SIGTERM (``systemctl stop``, ``timeout``) stop the command the same way: the
  run's ledger row says ``aborted``, its lease is released, and the exit code is 130 or 143.

Under ``--output json`` each of these also writes one JSON document to stdout of the shape
:func:`error_payload` returns, whatever the command.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from crmsync import stopping
from crmsync.cli.common import emit_json, stderr, wants_json
from crmsync.errors import CrmsyncError, ExitCode, InvalidFileError
from crmsync.redact import redact_text

#: Exit codes of a stop by signal, as shells report them (128 + signal number).
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
#: The reader of stdout went away (``crmsync runs | head -1``): 128 + SIGPIPE, as a shell
#: reports a program that SIGPIPE stopped.
EXIT_PIPE_CLOSED = 141
#: The exit code of an unexpected error (click's own convention for "it failed").
EXIT_INTERNAL = 1

_KIND_BY_CODE = {
    ExitCode.PARTIAL: "partial",
    ExitCode.BAD_CONFIG: "bad_config",
    ExitCode.AUTH_OR_QUOTA: "auth_or_quota",
    ExitCode.TRANSIENT: "transient",
    ExitCode.BUSY: "busy",
}
DEBUG_HINT = "re-run with --debug to see where it happened (credentials stay hidden)"
#: What to do, by exit code, when the error itself names no hint (its message says what).
DEFAULT_HINTS = {
    ExitCode.AUTH_OR_QUOTA: "check the credentials; a used-up daily quota resumes on the next "
                            "run after it resets",
    ExitCode.TRANSIENT: "safe to run again: the next run finishes the job",
}


class SIGTERM(BaseException):  # noqa: N801 - the ledger shows "interrupted (SIGTERM)"
    """SIGTERM arrived. A BaseException, like KeyboardInterrupt: no ``except Exception`` in
    the run swallows it, and the run's own handler records the run as ``aborted``; the ledger
    keeps only the class name, hence the name."""


Terminated = SIGTERM


def error_payload(kind: str, message: str, exit_code: int, *, hint: str | None = None,
                  **extra: Any) -> dict[str, Any]:
    """The one JSON shape of every failure under ``--output json``.

    ``error`` is a stable kind (``bad_config``, ``auth_or_quota``, ``transient``, ``busy``,
    ``internal``, ``interrupted``), never a Python class name; ``exit_code`` is the process's.
    """
    return {"error": kind, "message": message, "hint": hint, "exit_code": int(exit_code),
            **extra}


def _say(message: str, hint: str | None = None) -> None:
    stderr.print(f"crmsync: error: {message}", markup=False)
    if hint:
        stderr.print(f"hint: {hint}", markup=False)


def fail(kind: str, message: str, exit_code: int, *, hint: str | None = None,
         **extra: Any) -> None:
    """Report a failure the CLI found itself (a held lease) and exit."""
    if wants_json():
        emit_json(error_payload(kind, message, exit_code, hint=hint, **extra))
    _say(message, hint)
    raise SystemExit(int(exit_code))


def report_crmsync_error(error: CrmsyncError) -> int:
    """Print a crmsync error (diagnostics first for a file) and return its exit code."""
    code = int(error.exit_code)
    hint = getattr(error, "hint", None) or DEFAULT_HINTS.get(error.exit_code)
    extra: dict[str, Any] = {}
    if isinstance(error, InvalidFileError):
        extra["diagnostics"] = [
            {"file": d.file, "line": d.line, "col": d.col, "pointer": d.pointer,
             "message": d.message, "hint": d.suggestion}
            for d in error.diagnostics
        ]
    # A message is meant to hold no secret; redacting it anyway costs nothing.
    message = redact_text(str(error))
    if wants_json():
        emit_json(error_payload(_KIND_BY_CODE.get(error.exit_code, "error"), message, code,
                                hint=hint, **extra))
    if isinstance(error, InvalidFileError):
        for diagnostic in error.diagnostics:
            stderr.print(diagnostic.render(), markup=False)
    _say(message, hint)
    return code


def report_unexpected(error: BaseException, *, debug: bool) -> int:
    """The last resort: an exception crmsync did not expect. Never prints a secret."""
    message = redact_text(f"{type(error).__name__}: {error}".rstrip(": "))
    if wants_json():
        emit_json(error_payload("internal", message, EXIT_INTERNAL,
                                hint=None if debug else DEBUG_HINT))
    if debug:
        import traceback  # only here: start-up time matters more than this rare path

        text = "".join(traceback.format_exception(error))
        stderr.print(redact_text(text).rstrip(), markup=False)
    _say(message, None if debug else DEBUG_HINT)
    return EXIT_INTERNAL


def pipe_closed() -> int:
    """stdout's reader stopped reading: end quietly, with no message (it would go nowhere).

    Python flushes stdout again at exit, which would fail the same way and print a warning:
    stdout is pointed at the null device first (the recipe of the ``signal`` module's docs).
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (an in-process runner): nothing to do
        pass
    return EXIT_PIPE_CLOSED


def report_stop(error: BaseException) -> int:
    """Ctrl-C or SIGTERM: say so in one line; the run (if any) was recorded as aborted."""
    terminated = isinstance(error, Terminated)
    code = EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    message = "stopped by SIGTERM" if terminated else "interrupted"
    if wants_json():
        emit_json(error_payload("interrupted", message, code))
    stderr.print(f"crmsync: {message}", markup=False)
    return code


def _stop_terminated(signum: int, _frame: FrameType | None) -> None:
    # Once is enough: a second SIGTERM must not cut short the clean-up the first one started
    # (recording the run as aborted, releasing the lease).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    stop = SIGTERM(signum)
    # In a sync run the stop waits for the run's next safe point (see crmsync.stopping).
    if not stopping.request(stop):
        raise stop


def _stop_interrupted(signum: int, frame: FrameType | None) -> None:
    # The first Ctrl-C of a sync run waits for a safe point; a second one stops at once.
    stop = KeyboardInterrupt()
    if not stopping.request(stop):
        raise stop


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated`, Ctrl-C into ``KeyboardInterrupt``, while a
    command runs (main thread only); a sync run defers both to its next safe point."""
    try:
        previous = signal.signal(signal.SIGTERM, _stop_terminated)
    except ValueError:  # not the main thread (e.g. an embedding test runner): leave it
        yield
        return
    previous_int = signal.getsignal(signal.SIGINT)
    # Only Python's own Ctrl-C handler is replaced (not one an embedding program installed).
    replace_int = previous_int is signal.default_int_handler
    if replace_int:
        signal.signal(signal.SIGINT, _stop_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if replace_int:
            signal.signal(signal.SIGINT, previous_int)


__all__ = [
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_TERMINATED",
    "SIGTERM",
    "Terminated",
    "error_payload",
    "fail",
    "report_crmsync_error",
    "report_stop",
    "report_unexpected",
    "sigterm_raises",
]
