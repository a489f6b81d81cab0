"""Write batches in flight: up to ``concurrency`` CRM calls at once, settled on the run's thread.

A run's CRM writes are I/O: while one batch waits for the CRM, the run reads and decides the
next page and sends more batches. Threads do the waiting; everything else stays on the run's
own thread: journaling happens *before* a batch is handed to a thread, and its result is
settled (journal, task registry, rejections, contact states) by :meth:`InFlight.settle_ready`
or :meth:`InFlight.settle_all` on the run's thread, so the state store is never touched from
two threads and its transactions keep their order.

:class:`CursorGate` keeps the other ordering promise: a page's cursor is committed only after
every write planned from that page (and from every page before it) has settled.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from crmsync import stopping
from crmsync.model import Cursor

log = logging.getLogger("crmsync.sync")


@dataclass
class _Batch:
    future: Future[Any]
    settle: Callable[[Any], None]
    pages: tuple[int, ...]


class InFlight:
    """A bounded pool of write calls whose results are settled on the caller's thread.

    Args:
        concurrency: Most calls in flight at once (``[sync] concurrency``); 1 sends each
            batch on the caller's thread, as a plain sequential loop would.
        on_settled: Told the page numbers of every batch once it has settled (the cursor gate).
    """

    def __init__(self, concurrency: int,
                 on_settled: Callable[[tuple[int, ...]], None] = lambda pages: None) -> None:
        self.concurrency = max(1, concurrency)
        self.on_settled = on_settled
        self._pool: ThreadPoolExecutor | None = None
        self._batches: deque[_Batch] = deque()
        self._error: BaseException | None = None

    def submit(self, call: Callable[[], Any], settle: Callable[[Any], None],
               pages: tuple[int, ...] = ()) -> None:
        """Send ``call`` (a CRM write) and have ``settle(result)`` run here once it returns.

        Blocks while ``concurrency`` calls are already in flight, settling the first that
        finishes. A call that raised re-raises its error from a later settle, after the calls
        still in flight have been settled (their writes happened; the journal must say so).
        """
        self.settle_ready()  # a call that failed stops the sending here (settle_ready raises)
        if self.concurrency == 1:
            result = call()
            settle(result)
            self.on_settled(pages)
            return
        while len(self._batches) >= self.concurrency:
            self._settle_one(block=True, stoppable=True)
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="crmsync-write")
        self._batches.append(_Batch(self._pool.submit(call), settle, pages))

    def settle_ready(self) -> None:
        """Settle every call that has already returned, without waiting for the others."""
        while self._batches and any(b.future.done() for b in self._batches):
            self._settle_one(block=False)
        if self._error is not None:
            self.settle_all()

    def settle_all(self) -> None:
        """Wait for every call in flight and settle it; then raise the first error, if any."""
        while self._batches:
            self._settle_one(block=True, stoppable=True)
        self._raise_first_error()

    def close(self) -> None:
        """Settle what is still in flight (errors already reported are not raised again).

        A pending stop request does not cut this short: the writes happened, and the journal
        must say so before the run records itself as aborted.
        """
        try:
            while self._batches:
                self._settle_one(block=True)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def _settle_one(self, *, block: bool, stoppable: bool = False) -> None:
        if block:
            futures = [b.future for b in self._batches]
            # With ``stoppable`` the wait polls for a stop request (SIGTERM) between steps.
            timeout = stopping.POLL_S if stoppable else None
            while not wait(futures, timeout=timeout, return_when=FIRST_COMPLETED).done:
                stopping.check()
        done = next((b for b in self._batches if b.future.done()), None)
        if done is None:
            return
        self._batches.remove(done)
        error = done.future.exception()
        if error is not None:
            # The first failure stops the run; later ones are usually the same cause.
            if self._error is None:
                self._error = error
            else:
                log.debug("another write call failed as well: %s", type(error).__name__)
            return
        done.settle(done.future.result())
        self.on_settled(done.pages)

    def _raise_first_error(self) -> None:
        if self._error is not None and not self._batches:
            error, self._error = self._error, None
            raise error


@dataclass
class CursorGate:
    """Commit a page's cursor only once every write planned from it, and before it, settled.

    Pages are numbered in the order they were read. ``open_page`` starts a page, ``planned``
    counts writes queued from it, ``settled`` counts them off, and :meth:`ready` returns the
    newest cursor whose page and every earlier page have nothing outstanding.
    """

    _outstanding: dict[int, int] = field(default_factory=dict)
    _cursors: dict[int, Cursor] = field(default_factory=dict)
    _next: int = 0

    def open_page(self) -> int:
        """Start a page; return its number."""
        page = self._next
        self._next += 1
        self._outstanding[page] = 0
        return page

    def page_read(self, page: int, cursor: Cursor | None) -> None:
        """Attach the cursor that a page moves the stream to (None: it moves nothing)."""
        if cursor is not None:
            self._cursors[page] = cursor

    def planned(self, page: int, writes: int = 1) -> None:
        """Count writes queued from ``page``."""
        self._outstanding[page] = self._outstanding.get(page, 0) + writes

    def settled(self, pages: tuple[int, ...]) -> None:
        """Count off one settled write per entry of ``pages``."""
        for page in pages:
            self._outstanding[page] -= 1

    def ready(self) -> Cursor | None:
        """Pop and return the newest committable cursor, or None when none is due."""
        newest = None
        for page in sorted(self._outstanding):
            if self._outstanding[page] > 0:
                break
            del self._outstanding[page]
            newest = self._cursors.pop(page, newest)
        return newest
