"""The rows the state store returns and takes: plain frozen dataclasses, no SQLAlchemy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run in the ledger: ``connection`` it synced, ``trigger`` who started it
    (``schedule:NAME``, ``user@host``, or ``None`` for runs recorded before either was kept)."""

    id: str
    crm: str
    mode: str
    started_at: datetime
    finished_at: datetime | None
    status: str
    exit_code: int | None
    counts: Mapping[str, Any]
    ruleset_version: str
    ruleset_hash: str
    error: str | None
    connection: str = "default"
    trigger: str | None = None


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One journaled write: a record's field values, a task create or a task close.

    For ``fields`` entries ``before``/``after`` map output names to values (what undo restores);
    for ``field`` entries they are the single field's values and ``name`` is the output.
    Datetimes inside values come back as ISO 8601 strings.
    """

    id: int
    run_id: str
    seq: int
    stream: str
    object_type: str
    record_id: str
    kind: str
    name: str | None
    before: Any
    after: Any
    state: str
    error_code: str | None
    error_message: str | None
    task_key: str | None
    task_id: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A crmsync task in the registry; ``key`` is deterministic in (record, purpose)."""

    key: str
    record_id: str
    stream: str
    purpose: str
    state: str
    task_id: str | None
    run_id: str
    updated_at: datetime

    @property
    def is_open(self) -> bool:
        """True while the task is open in the CRM, or might be (a create not yet settled)."""
        return self.state in ("intent", "open")


@dataclass(frozen=True, slots=True)
class PendingWrite:
    """A write about to be sent to the CRM, as given to :meth:`StateStore.journal_pending`."""

    stream: str
    object_type: str
    record_id: str
    kind: str
    name: str | None
    before: Any
    after: Any
    task_key: str | None = None
    task_id: str | None = None


@dataclass(frozen=True, slots=True)
class StreamStamp:
    """Which rule set and field map last decided every contact of a stream (a full pass)."""

    stream: str
    ruleset_version: str
    ruleset_hash: str
    fieldmap_hash: str
    run_id: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ContactState:
    """A contact's current crmsync decision: ids and outputs only, never personal data.

    ``modified_at`` is the CRM's modification stamp of the record as it was evaluated; a record
    met again with the same stamp under the same rule set was already decided (de-duplication
    across pages, overlaps and runs).
    """

    stream: str
    record_id: str
    status: str
    miss_type: str
    score: float | None
    status_since: datetime | None
    ruleset_hash: str
    modified_at: datetime | None
    first_run_id: str
    run_id: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PageContext:
    """What the store holds about a page of contacts before they are evaluated.

    ``states`` by record id; ``open_tasks`` the tasks open (or possibly open) for them;
    ``closed_counts`` how many tasks of each (record id, purpose) were closed so far.
    """

    states: dict[str, ContactState]
    open_tasks: list[TaskRecord]
    closed_counts: dict[tuple[str, str], int]


@dataclass(frozen=True, slots=True)
class ContactRow:
    """One contact's current decision as the funnel report reads it: ids and categories only."""

    stream: str
    record_id: str
    status: str
    miss_type: str
    score: float | None
    status_since: datetime | None
    owner_id: str | None
    lead_source: str | None


def stored_category(value: object) -> str | None:
    """A picklist value as the store keeps it (lead source): text, cut to its 120 characters."""
    return None if value is None else str(value)[:120]
