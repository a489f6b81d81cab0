"""The calls a sync run makes for every page and every write batch, one transaction each.

A page costs one read (:meth:`Pages.page_context`: its contacts' states, open tasks and closed
task counts), one journal write for its planned field writes and task creates together
(:meth:`Pages.journal_page`), and a write batch one settle (:meth:`Pages.settle_fields`:
journal, rejections and contact states together), instead of three connections and three to
five commits. Settling in one transaction is also the stronger guarantee: a batch's journal
rows, rejections and saved decisions are either all recorded or none are (a run stopped in
between leaves the journal ``pending``, which the next run re-reads).

Streams and record ids are given bare, as everywhere in the store: the helpers these calls share
with the single-purpose methods store streams and task keys scoped to the store's connection and
return them bare.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from crmsync.model import TaskCreate
from crmsync.state.contacts import ContactStates
from crmsync.state.records import PageContext, TaskRecord
from crmsync.state.rejections import Rejections
from crmsync.state.tasks import TaskRegistry


class Pages(TaskRegistry, Rejections, ContactStates):
    """Per-page reads and per-batch settles (see the module docstring)."""

    def page_context(self, stream: str, record_ids: Iterable[str]) -> PageContext:
        """Return what the store holds about some records of ``stream``, in one connection.

        The same as :meth:`contact_states`, :meth:`open_tasks` and :meth:`closed_task_counts`
        of those ids, read together.
        """
        ids = list(record_ids)
        if not ids:
            return PageContext({}, [], {})
        # No explicit transaction to commit: the store has one writer (the lease), and on
        # PostgreSQL committing this read made a page's read 5x slower in wall time
        # (store_bench, HubSpot shape: 262 vs 56 µs a contact); the connection's implicit
        # transaction is rolled back on release, as for every other read.
        with self._connect() as conn:
            return PageContext(self._states(conn, stream, ids), self._open(conn, ids),
                               self._closed_counts(conn, ids))

    def journal_page(
        self,
        run_id: str,
        stream: str,
        writes: Sequence[tuple[str, str, Mapping[str, Any], Mapping[str, Any]]],
        creates: Sequence[TaskCreate],
    ) -> tuple[list[int], list[TaskRecord]]:
        """Journal a page's field writes and record its task intents, in one transaction.

        The same as :meth:`journal_fields` of ``writes`` then :meth:`task_intents` of
        ``creates`` (same rows, same journal order), with one commit and one journal insert
        instead of two of each. Both are committed before this returns, so before any of them
        is sent; a run stopped later leaves pending rows and intents that recovery settles,
        as it does when the two are committed one after the other.

        Returns:
            The field writes' journal ids, in order, and the creates' task records.
        """
        if not writes and not creates:
            return [], []
        rows = self._field_rows(stream, writes)
        with self._begin() as conn:
            return self._intents(conn, run_id, stream, creates, self._clock(), rows)

    def settle_fields(
        self,
        run_id: str,
        stream: str,
        *,
        applied: Sequence[int] = (),
        resolved: Iterable[str] = (),
        states: Sequence[Mapping[str, Any]] = (),
        rejected: Sequence[tuple[int, str, str, str]] = (),
    ) -> None:
        """Settle one batch of field writes in one transaction, one statement per table.

        Args:
            run_id: The run that wrote them.
            stream: Their records' stream.
            applied: Journal ids the CRM applied (as :meth:`journal_applied`).
            resolved: Record ids written successfully (as :meth:`resolve_rejections`).
            states: Decisions the CRM now holds (rows as :meth:`save_contact_states` takes).
            rejected: ``(journal id, record id, error code, message)`` of each write the CRM
                refused: the entry is marked rejected (as :meth:`journal_rejected`) and the
                record remembered for retry (as :meth:`record_rejection`).
        """
        resolved = list(resolved)
        if not (applied or resolved or states or rejected):
            return
        now = self._clock()
        with self._begin() as conn:
            if applied:
                self._settle_entries(conn, applied, "applied", now)
            if rejected:
                self._reject_entries(conn, [(j, code, msg) for j, _, code, msg in rejected], now)
                self._record_rejections(conn, stream, run_id,
                                        [(rid, code, msg) for _, rid, code, msg in rejected], now)
            if resolved:
                self._resolve(conn, stream, resolved, now)
            if states:
                self._save(conn, run_id, stream, states, now)
