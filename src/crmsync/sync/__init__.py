"""One sync run: read a page, evaluate, plan, apply, journal, commit the cursor.

The loop is the same for ``crmsync plan`` (dry run: nothing written, nothing committed) and
``crmsync run``. Its promises (DESIGN.md §5):

* incremental: read from the stream's cursor minus an overlap, skip records already decided in
  the same state (by id and modification stamp), cap the new cursor at the run's start, commit
  it only after the page's writes are journaled, and move it up to the run's start less the
  overlap once the read completed;
* a changed rule set or field map re-evaluates every contact of a stream once (a full pass),
  and says so; later runs are incremental again;
* minimal writes: only outputs that changed are written (``plan``), batched by the connector;
* nothing lost: every write is journaled *before* the CRM call and settled after it; per-record
  rejections are recorded and retried next run; a run killed anywhere leaves enough in the
  state store for the next run to finish the job without duplicates;
* clean stops: a used-up daily quota or refused credentials end the run with the cursor where
  the last fully written page left it; a run that finds the lease held does nothing (exit 5).

Modules: ``summary`` (options, what a run reports, its call estimates), ``tally`` (counting
decisions), ``writes`` (journaled writes and task recovery), ``cursoring`` (how a cursor moves
over pages), ``collector`` (garbage collection during a run), ``run`` (the loop).
"""

from crmsync.sync.run import LEASE_TTL, SyncRun, file_hash
from crmsync.sync.summary import (
    RunSummary,
    SyncOptions,
    estimate_write_calls,
    minimum_api_calls,
)
from crmsync.sync.tally import SLA_FIRST_TOUCH, STUCK_AFTER

__all__ = [
    "LEASE_TTL",
    "RunSummary",
    "SLA_FIRST_TOUCH",
    "STUCK_AFTER",
    "SyncOptions",
    "SyncRun",
    "estimate_write_calls",
    "file_hash",
    "minimum_api_calls",
]
