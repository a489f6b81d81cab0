"""Read the next page while this one is decided and written (one page ahead, one thread)."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

from crmsync import stopping

T = TypeVar("T")

_DONE = object()


class _Failed:
    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(pages: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Yield ``pages`` while a thread already fetches up to ``depth`` pages ahead.

    The CRM call for page N+1 then overlaps the rules, the state store and the writes of page
    N. Errors raised by the reader are re-raised here, in order. Closing this generator early
    (the run stopped) stops the reader after the page it is fetching.
    """
    slots: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def produce() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        slots.put(page, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(_DONE)
        except BaseException as error:  # noqa: BLE001 - handed to the consumer, which raises it
            slots.put(_Failed(error))
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    reader = threading.Thread(target=produce, name="crmsync-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            try:
                item = slots.get(timeout=stopping.POLL_S)
            except queue.Empty:
                stopping.check()  # a SIGTERM while the CRM is slow stops here, not mid-call
                continue
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        # Free a reader blocked on a full queue, then let it finish its current call.
        while reader.is_alive():
            with contextlib.suppress(queue.Empty):
                slots.get(timeout=0.1)
        reader.join()
