"""The HubSpot connector: the :class:`~crmsync.connectors.base.Connector` facade over its parts.

Reading (:mod:`.reading`), field writes (:mod:`.writing`), tasks (:mod:`.tasks`) and setup
(:mod:`.setup`) share one :class:`~crmsync.connectors.hubspot.client.HubSpotClient`, so pacing,
call counts and the retry policy cover every call the connector makes.

Thread safety: one connector may be called from several threads at once (reads of the next page
overlapping writes of this one, several write batches in flight). The parts hold no per-call
state; the client is thread-safe (see :mod:`.client`), and every call of every thread goes through
one :class:`~crmsync.connectors.pacing.Pacer`, which several connectors of one portal may share.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from crmsync import stopping
from crmsync.connectors.asof import OutcomeRecord
from crmsync.connectors.base import (
    ApiLimits,
    FoundTask,
    Page,
    RecordUpdate,
    SetupReport,
    WriteResult,
)
from crmsync.connectors.fieldmap import FieldMap
from crmsync.connectors.hubspot.client import HubSpotClient
from crmsync.connectors.hubspot.reading import ContactReader
from crmsync.connectors.hubspot.setup import PropertySetup
from crmsync.connectors.hubspot.shards import KeyRange
from crmsync.connectors.hubspot.tasks import TaskWriter
from crmsync.connectors.hubspot.wire import ASSOCIATION_BATCH, BATCH, KEY_LOOKUP, SEARCH_PAGE
from crmsync.connectors.hubspot.writing import FieldWriter
from crmsync.connectors.pacing import Pacer
from crmsync.errors import ConfigError, TransientError
from crmsync.model import Contact, TaskClose, TaskCreate
from crmsync.retry import RetryPolicy

#: Frozen, so one shared default is safe.
_DEFAULT_POLICY = RetryPolicy()


class HubSpotConnector:
    """Reads contacts (with deals) and writes crmsync's properties and tasks in one HubSpot account.

    Safe to call from several threads at once (see the module docstring).

    Args:
        fieldmap: The HubSpot field map (``connectors/hubspot.json``).
        token: Private-app access token (needs contacts, deals, tasks and schema scopes).
        base_url: API origin; ``None`` for the real HubSpot, ``http://127.0.0.1:PORT`` for the
            sandbox.
        policy: Retry policy for transient failures.
        sleep: Sleep function used between retries and for pacing (tests pass a recorder).
        owner_fallback: Owner id for tasks of contacts that have no owner.
        clock: Monotonic seconds, for client-side pacing (tests share a fake with ``sleep``).
        timeout: (connect, read) timeout in seconds of every HTTP call.
        on_retry: Told about each retry (the error and the wait) before it waits; every retry
            is also logged on ``crmsync.connectors.hubspot`` at INFO.
        pacer: The portal's :class:`~crmsync.connectors.pacing.Pacer`, shared by every
            connector (thread, process) of the portal; default: one of this connector's own
            (:func:`~crmsync.connectors.hubspot.client.hubspot_pacer`).
        reserve_daily_percent: Share (0-100) of the portal's daily limit left to other
            integrations: the connector stops with QuotaExhausted once only that much is left.
            Used by the default pacer only; a given pacer carries its own reserve.
    """

    crm = "hubspot"
    limits = ApiLimits(read_page=SEARCH_PAGE, write_batch=BATCH, task_batch=BATCH,
                       related_batch=BATCH, links_batch=ASSOCIATION_BATCH,
                       task_lookup_batch=KEY_LOOKUP)  # one key search per five create calls

    def __init__(
        self,
        fieldmap: FieldMap,
        *,
        token: str,
        base_url: str | None = None,
        policy: RetryPolicy = _DEFAULT_POLICY,
        sleep: Callable[[float], None] = stopping.sleep,
        owner_fallback: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        timeout: tuple[float, float] = (10.0, 120.0),
        on_retry: Callable[[TransientError, float], None] | None = None,
        pacer: Pacer | None = None,
        reserve_daily_percent: float = 0.0,
    ) -> None:
        if fieldmap.crm != "hubspot":
            raise ConfigError(f"{fieldmap.path}: field map is for {fieldmap.crm!r}, not hubspot")
        if "contacts" not in fieldmap.objects:
            raise ConfigError(f"{fieldmap.path}: a HubSpot field map needs objects.contacts")
        if not token:
            raise ConfigError("HubSpot needs a private-app token (crm token), and it is empty")
        self.fieldmap = fieldmap
        self.policy = policy
        self.owner_fallback = owner_fallback
        self._http = HubSpotClient(token=token, base_url=base_url, policy=policy, sleep=sleep,
                                   clock=clock, timeout=timeout, on_retry=on_retry,
                                   pacer=pacer, reserve_daily_percent=reserve_daily_percent)
        #: The pacer every call of this connector goes through.
        self.pacer = self._http.pacer
        contacts = fieldmap.objects["contacts"]
        override = next((s.field for s in contacts.sources if s.fact == "status_override"), None)
        self._reader = ContactReader(self._http, fieldmap)
        self._writer = FieldWriter(self._http, fieldmap)
        self._tasks = TaskWriter(self._http, fieldmap, reader=self._reader, writer=self._writer,
                                 owner_fallback=owner_fallback)
        self._setup = PropertySetup(self._http, fieldmap, override)

    # -- reading ------------------------------------------------------------------------------

    def streams(self) -> list[str]:
        """Return the one contact stream, ``hubspot:contacts``."""
        return self._reader.streams()

    def read(
        self, stream: str, since: datetime | None, until: datetime | None = None,
        key_range: KeyRange | None = None,
    ) -> Iterator[Page]:
        """Yield pages of contacts modified at or after ``since`` (all when ``None``).

        See :meth:`~crmsync.connectors.hubspot.reading.ContactReader.read`.
        """
        return self._reader.read(stream, since, until, key_range)

    def shard_ranges(self, stream: str, count: int) -> list[KeyRange]:
        """Split the stream into ``count`` id ranges (two search calls); see :mod:`.shards`."""
        return self._reader.shard_ranges(stream, count)

    def read_ids(self, stream: str, ids: Sequence[str]) -> list[Contact]:
        """Read specific contacts by id (batch read, with deals); unknown ids are skipped."""
        return self._reader.read_ids(stream, ids)

    def read_outcomes(self, since: datetime, until: datetime) -> Iterator[OutcomeRecord]:
        """Read-only: contacts whose deals closed in ``[since, until)``, facts as of the close.

        See :mod:`crmsync.connectors.hubspot.history` (for ``crmsync backtest``).
        """
        from crmsync.connectors.hubspot.history import OutcomeReader

        return OutcomeReader(self._reader).read_outcomes(since, until)

    # -- writing ------------------------------------------------------------------------------

    def write_fields(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        """Write output properties with ``batch/update`` (100 a call); one result per record."""
        return self._writer.write_fields(updates)

    def find_tasks(self, contact_ids: Sequence[str], keys: Sequence[str]) -> dict[str, str]:
        """Return ``{key: task id}`` for open crmsync tasks of these contacts carrying ``keys``."""
        return self._tasks.find_tasks(contact_ids, keys)

    def crmsync_tasks(self, contact_ids: Sequence[str]) -> list[FoundTask]:
        """Every task of these contacts carrying a crmsync key, open or closed."""
        return self._tasks.crmsync_tasks(contact_ids)

    def create_tasks(self, creates: Sequence[TaskCreate]) -> list[WriteResult]:
        """Create tasks with ``batch/create`` (100 a call), associated with their contacts."""
        return self._tasks.create_tasks(creates)

    def close_tasks(self, closes: Sequence[TaskClose]) -> list[WriteResult]:
        """Set the tasks' status to the field map's closed status (``batch/update``)."""
        return self._tasks.close_tasks(closes)

    # -- setup and check ----------------------------------------------------------------------

    def check(self) -> None:
        """Prove the token works and that every crmsync property exists (ConfigError if not)."""
        self._setup.check()

    def setup(self) -> SetupReport:
        """Create the ``crmsync`` property group and crmsync's properties; idempotent."""
        return self._setup.setup()

    # -- accounting ---------------------------------------------------------------------------

    def api_calls(self) -> int:
        """Return the HTTP calls made so far, retries included."""
        return self._http.api_calls()

    def close(self) -> None:
        """Release the HTTP connection pools."""
        self._http.close()
