"""The one small protocol every CRM connector implements, and the values it exchanges.

A connector reads contacts as canonical facts (through its field map) and writes crmsync's
output fields and tasks back. It knows nothing about rules: the sync decides, the connector
moves data. It counts its own API calls so a run can report them against the minimum.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar, runtime_checkable

from crmsync.model import Contact, TaskClose, TaskCreate, slot_init

T = TypeVar("T")


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Yield consecutive slices of at most ``size`` items (API batches and pages)."""
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + size]


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Yield lists of at most ``size`` items taken from ``items`` as they come (none empty):
    :func:`chunks` for an iterator, which builds each item only when its batch is asked for."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, max(1, size))):
        yield batch


@slot_init
@dataclass(frozen=True, slots=True)
class Page:
    """One page of contacts read from a stream, in ascending ``modified_at`` order.

    Attributes:
        stream: The stream it came from (``hubspot:contacts``, ``salesforce:Lead``).
        contacts: The contacts, facts already normalised by the field map.
        related: True for contacts re-read because a related record (a deal) changed; they do
            not move the stream's cursor.
        ordered: True when pages arrive in ascending ``modified_at`` order (search, SOQL
            ``ORDER BY``), so the cursor may advance page by page; False for an id-ordered full
            scan, whose cursor may only move once the whole stream is read.
    """

    stream: str
    contacts: Sequence[Contact]
    related: bool = False
    ordered: bool = True


@slot_init
@dataclass(frozen=True, slots=True)
class RecordUpdate:
    """New values for crmsync's output fields on one record, by canonical output name."""

    record_id: str
    object_type: str
    values: Mapping[str, Any]


@slot_init
@dataclass(frozen=True, slots=True)
class WriteResult:
    """What the CRM said about one record of a batched write.

    Attributes:
        record_id: The contact (for field writes and task creates) or task (for closes).
        ok: Whether the write took effect.
        error_code: The CRM's error code when it did not (``UNABLE_TO_LOCK_ROW``...).
        message: The CRM's message, with record data stripped.
        retryable: Whether the same write may succeed on a later run.
        task_id: The created task's id (task creates only).
        key: The task key (task creates and closes).
        existed: Task creates: the CRM already held a task under this key (found or
            upserted), so none was created (a lost or separate state store).
    """

    record_id: str
    ok: bool
    error_code: str | None = None
    message: str | None = None
    retryable: bool = False
    task_id: str | None = None
    key: str | None = None
    existed: bool = False


@dataclass(frozen=True, slots=True)
class FoundTask:
    """A crmsync task the CRM holds for a contact, open or closed (its key identifies it)."""

    contact_id: str
    key: str
    task_id: str
    open: bool


@dataclass(frozen=True, slots=True)
class SetupReport:
    """What ``crmsync setup`` did: fields created now and fields that were already there."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ApiLimits:
    """The CRM's batch and page maxima, used to batch writes and estimate API calls."""

    read_page: int
    write_batch: int
    task_batch: int
    #: Related records (deals) one read call returns; 0: ``read_page`` (HubSpot's deal batch
    #: read takes 100 ids where its contact search pages 200).
    related_batch: int = 0
    #: Contacts whose related-record links one call returns, where the contact read does not
    #: carry them (HubSpot search: a v4 association batch read per 1,000 contacts); 0: the
    #: read carries them.
    links_batch: int = 0
    #: Task keys one lookup call checks before their tasks are created (HubSpot: a search for
    #: open tasks carrying the keys, 500 a call); 0: the connector creates without a lookup.
    #: The run hands the connector this many queued creates at once, so one lookup covers
    #: several create calls.
    task_lookup_batch: int = 0
    #: Whether the connector also writes large volumes as one asynchronous job
    #: (:class:`BulkWriter`: Salesforce Bulk API 2.0).
    bulk_write: bool = False
    #: Calls one bulk write costs per object, whatever the number of records (when
    #: ``bulk_write``): create, upload, close, poll, read the failures.
    calls_per_bulk_write: int = 0


@runtime_checkable
class BulkWriter(Protocol):
    """What a connector whose ``limits.bulk_write`` is true offers besides :class:`Connector`."""

    def write_fields_bulk(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        """Write output fields through one asynchronous bulk job per object; one result per
        update, in input order (per-record failures with the CRM's error code, never values).
        """
        ...


@runtime_checkable
class Connector(Protocol):
    """Everything the sync needs from a CRM."""

    crm: str
    limits: ApiLimits

    def streams(self) -> list[str]:
        """Return the contact streams this connector reads (one per CRM object)."""
        ...

    def check(self) -> None:
        """Verify credentials and that crmsync's fields exist (ConfigError names the missing)."""
        ...

    def setup(self) -> SetupReport:
        """Create crmsync's fields/properties in the CRM; idempotent."""
        ...

    def read(
        self, stream: str, since: datetime | None, until: datetime | None = None
    ) -> Iterator[Page]:
        """Yield pages of contacts modified at or after ``since`` (all when ``None``).

        Contacts whose related deals changed since ``since`` come first, in pages marked
        ``related`` (they never move the cursor). Then pages in ascending ``modified_at``
        order; windowing around search caps is the connector's business, and so is keeping
        records changed after ``until`` (the run's start, e.g. by the run's own writes) from
        shifting the pages.
        """
        ...

    def read_ids(self, stream: str, ids: Sequence[str]) -> list[Contact]:
        """Read specific contacts (rejected last run, or otherwise due a re-evaluation)."""
        ...

    def write_fields(self, updates: Sequence[RecordUpdate]) -> list[WriteResult]:
        """Write output fields, batched at ``limits.write_batch``; one result per record."""
        ...

    def find_tasks(self, contact_ids: Sequence[str], keys: Sequence[str]) -> dict[str, str]:
        """Return ``{task key: task id}`` for open crmsync tasks among those contacts' tasks.

        Used to recover after a crash between creating a task and recording it.
        """
        ...

    def crmsync_tasks(self, contact_ids: Sequence[str]) -> list[FoundTask]:
        """Return every crmsync task (one carrying a key), open or closed, of these contacts.

        Used when the state store has no record of contacts crmsync decided before (a lost or
        new store), to learn which of their tasks exist before planning new ones.
        """
        ...

    def create_tasks(self, creates: Sequence[TaskCreate]) -> list[WriteResult]:
        """Create tasks (idempotently by key where the CRM allows); one result per task."""
        ...

    def close_tasks(self, closes: Sequence[TaskClose]) -> list[WriteResult]:
        """Mark tasks completed; one result per task."""
        ...

    def api_calls(self) -> int:
        """Return how many API calls this connector has made so far."""
        ...

    def close(self) -> None:
        """Release HTTP sessions."""
        ...
