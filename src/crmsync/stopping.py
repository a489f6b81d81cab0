"""Stop requests: a signal asks a sync run to stop, and the run stops at its next safe point.

Raising an exception straight from a signal handler lands wherever the main thread happens to
be: inside ``Thread.join`` (CPython's ``_wait_for_tstate_lock`` is not safe against it and can
later fail its own ``assert``), half-way through a SQLAlchemy transaction, or in the write pool's
shutdown. A run stopped that way can end in an ``AssertionError`` instead of a clean "aborted".

So while a run is in progress (:func:`safe_points`), the CLI's SIGTERM/Ctrl-C handler only
*records* the stop (:func:`request`), and the run raises it where stopping is safe
(:func:`check`): between pages, before each CRM call, every :data:`POLL_S` while it waits for a
page or a write, and in the connectors' pacing and retry sleeps (:func:`sleep`). Outside a run
nothing is deferred: the handler raises at once, as before.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: How often a blocked wait looks for a stop request (seconds).
POLL_S = 0.1

_lock = threading.Lock()
_depth = 0
_pending: BaseException | None = None
_requested = threading.Event()


@contextmanager
def safe_points() -> Iterator[None]:
    """Defer stop requests to the safe points of the code inside (a sync run).

    Nested uses share one request. The outermost clears it on the way out, and raises it
    there when the code inside finished without reaching a safe point after it arrived (the
    stop came during the run's last bookkeeping): the process still stops, just later.
    """
    global _depth, _pending
    with _lock:
        _depth += 1
    unraised = None
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                unraised, _pending = _pending, None
                _requested.clear()
    if unraised is not None:  # reached only when the code inside returned normally
        raise unraised


def request(stop: BaseException) -> bool:
    """Record ``stop`` for the next safe point; False when nothing defers it (raise it now).

    A second request while one is pending is refused too, so a second Ctrl-C stops at once.
    """
    global _pending
    with _lock:
        if _depth == 0 or _pending is not None:
            return False
        _pending = stop
        _requested.set()
        return True


def check() -> None:
    """Raise the pending stop request, if there is one."""
    stop = _pending
    if stop is not None:
        raise stop


def sleep(seconds: float) -> None:
    """``time.sleep`` that a stop request cuts short (pacing and retry waits use it)."""
    if seconds <= 0:
        check()
        return
    _requested.wait(seconds)
    check()


__all__ = ["POLL_S", "check", "request", "safe_points", "sleep"]
