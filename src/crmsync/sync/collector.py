"""Garbage collection tuned for the length of a sync run.

A run allocates millions of short-lived, acyclic objects (parsed records, facts, decisions,
plans, journal rows). With CPython's defaults (a young collection every 700 allocations, a full
one whenever enough survivors pile up) the collector keeps walking everything the process has
loaded: SQLAlchemy, the CRM SDKs' thousands of model classes, the compiled rules. Measured with
``benchmarks/sync_bench.py`` (client CPU per contact, first full run, 20,000 contacts) that
walking was 10-15% of a run's CPU.

So, for the duration of a run, :func:`tuned_for_run`:

* moves every object alive when the run starts into the permanent generation
  (``gc.freeze()``): what was loaded before the run is not garbage the run can create;
* collects the young generation every :data:`RUN_GEN0_THRESHOLD` allocations instead of 700.

Reference counting still frees almost everything the moment it is dropped; only reference
cycles wait for a collection, and those still come, less often. Both settings are restored
when the last run of the process ends (runs may overlap in one process: a scheduler's
threads), and objects frozen by it are unfrozen then.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: Allocations between young collections during a run (CPython's default: 700). Above about
#: 10,000 the gain flattens (sync_bench: 50,000 saved no more).
RUN_GEN0_THRESHOLD = 10_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] | None = None


@contextmanager
def tuned_for_run() -> Iterator[None]:
    """Run the body with fewer collections (see the module docstring); always restored."""
    _enter()
    try:
        yield
    finally:
        _exit()


def _enter() -> None:
    global _depth, _saved
    with _lock:
        _depth += 1
        if _depth > 1:
            return
        _saved = gc.get_threshold()
        gen0, gen1, gen2 = _saved
        gc.freeze()
        if gen0:  # 0 means the process switched automatic collection off: leave it so
            gc.set_threshold(max(gen0, RUN_GEN0_THRESHOLD), gen1, gen2)


def _exit() -> None:
    global _depth, _saved
    with _lock:
        _depth -= 1
        if _depth or _saved is None:
            return
        gc.set_threshold(*_saved)
        gc.unfreeze()
        _saved = None
