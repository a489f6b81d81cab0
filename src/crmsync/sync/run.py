"""One sync run of one connector: streams, pages, the lease, the outcome."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from crmsync import stopping
from crmsync.connectors.base import Connector, Page
from crmsync.errors import (
    AuthError,
    CrmsyncError,
    ExitCode,
    QuotaExhausted,
    RunInProgress,
    TransientError,
)
from crmsync.model import Contact, Cursor
from crmsync.plan import ContactPlan, OpenTask, PlanOptions, plan_contact
from crmsync.rules import RuleSet
from crmsync.state import (
    REDECIDE_AFTER_UPGRADE,
    RUN_PART,
    ContactState,
    StateError,
    StateStore,
    TaskRecord,
    stored_category,
)
from crmsync.sync.adopt import adopt_forgotten_tasks, forgotten
from crmsync.sync.collector import tuned_for_run
from crmsync.sync.cursoring import advance, already_processed
from crmsync.sync.inflight import CursorGate, InFlight
from crmsync.sync.readahead import read_ahead
from crmsync.sync.shadow import ShadowTally
from crmsync.sync.summary import RunSummary, SyncOptions, estimate_write_calls
from crmsync.sync.tally import Tally, miss_rule_ids, rule_ids
from crmsync.sync.writes import Writer

log = logging.getLogger("crmsync.sync")

ProgressCallback = Callable[[str, int], None]

#: How long a run's lease lasts without a heartbeat.
LEASE_TTL = timedelta(minutes=15)
#: A run renews its lease after a page once this many seconds passed since it last did: far
#: inside ``LEASE_TTL``, and one store transaction every few seconds instead of one a page.
LEASE_HEARTBEAT_S = 5.0


@dataclass
class StreamPass:
    """One stream's pass through a run: how it is read and how far it got.

    Attributes:
        stream: The stream.
        full: Whether every record is read (first read, rule change, ``--full``).
        since: Where an incremental read starts (the cursor less the overlap); None if full.
        cursor: The cursor the read started from (records it already covers are skipped).
        retried: Records rejected last run, re-read first; pages skip them.
        new_cursor: Where the ordered pages read so far have moved the cursor.
        scanned_unordered: Whether pages came in id order (a full list scan), whose cursor may
            only move once the whole stream is read.
    """

    stream: str
    full: bool
    since: datetime | None
    cursor: Cursor
    retried: set[str] = field(default_factory=set)
    new_cursor: Cursor | None = None
    scanned_unordered: bool = False


def file_hash(path: str | Path) -> str:
    """Return the SHA-256 of a file's bytes (a field map's identity, as a stream stamp keeps)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


#: Why a stream is read whole when that is expected (everything else is worth a warning).
FULL_REQUESTED, FIRST_READ = "full re-scan requested", "first read"


class SyncRun(Writer):
    """Execute one run of one connector against one rule set, recording it in the state store.

    Args:
        connector: The CRM to read from and write to.
        ruleset: The compiled rules.
        store: The state store (ledger, cursors, journal, tasks, rejections, contact states).
        options: Run behaviour.
        now: The run's clock; the only time the rules ever see.
        on_progress: Called with (stream, contacts processed) after each page.
        fieldmap_hash: Identity of the field map in use; a change re-evaluates every contact,
            as a rule set change does.
        shadow: A candidate rule set evaluated beside ``ruleset`` on every contact, counted
            and recorded (never planned or written); see :mod:`crmsync.sync.shadow`.
    """

    def __init__(
        self,
        connector: Connector,
        ruleset: RuleSet,
        store: StateStore,
        *,
        options: SyncOptions | None = None,
        now: datetime | None = None,
        on_progress: ProgressCallback | None = None,
        fieldmap_hash: str = "",
        shadow: RuleSet | None = None,
    ) -> None:
        self.connector = connector
        self.ruleset = ruleset
        self.shadow = shadow
        self._shadow: ShadowTally | None = None
        self.store = store
        self.options = options or SyncOptions()
        self.fieldmap_hash = fieldmap_hash
        # The one place a run reads the clock: everything downstream is given this value.
        moment = (now or datetime.now(UTC)).astimezone(UTC)  # noqa: TID251
        # CRMs keep milliseconds; a run's stamps are cut to that, so what is written reads back
        # equal (diffs and undo compare them).
        self.now = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
        self.on_progress = on_progress or (lambda stream, n: None)
        self.plan_options = _plan_options(self.options.task_close_policy, ruleset,
                                          restamp=self.options.restamp)
        self._task_purposes = frozenset(task.purpose for task in ruleset.tree.tasks)
        self.summary: RunSummary | None = None
        self._queued_tasks = []
        self._queued_updates = []
        self._queued_closes = []
        self._rejected_now = set()
        self._seen: set[str] = set()  # dry runs only: they save no contact states
        self._lease_renewed = float("-inf")  # time.monotonic() of the last lease renewal
        self._tally: Tally | None = None
        self._gate = CursorGate()
        self._page = self._gate.open_page()
        # Write batches in flight, settled on this thread (the state store stays single-threaded).
        self._inflight = InFlight(self.options.concurrency,
                                  on_settled=lambda pages: self._gate.settled(pages))

    @property
    def _current(self) -> RunSummary:
        """The summary of the run in progress (only inside :meth:`execute`)."""
        assert self.summary is not None, "no run in progress"
        return self.summary

    @property
    def mode(self) -> str:
        """``plan`` for a dry run, ``full`` for a re-scan, ``run`` otherwise."""
        if self.options.dry_run:
            return "plan"
        return "full" if self.options.full else "run"

    @property
    def _rules_hash(self) -> str:
        return self.ruleset.content_hash + (f":{self.fieldmap_hash[:16]}" if self.fieldmap_hash
                                            else "")

    def execute(self) -> RunSummary:
        """Run every stream of the connector; never raises a CrmsyncError (the summary says).

        A state store that fails mid-run is the exception: the ledger cannot record anything,
        so its :class:`~crmsync.state.StateError` is raised once the run has stopped. A
        SIGTERM or Ctrl-C stops the run at its next safe point (between pages, or while it
        waits for the CRM), never half-way through a store transaction or a thread join; the
        run is recorded as aborted and the stop re-raised. The garbage collector runs less
        often meanwhile (:mod:`crmsync.sync.collector`).
        """
        with stopping.safe_points(), tuned_for_run():
            return self._execute()

    def _execute(self) -> RunSummary:
        run_id = self.store.start_run(
            crm=self.connector.crm,
            mode=self.mode,
            ruleset_version=self.ruleset.version,
            ruleset_hash=self.ruleset.content_hash,
            started_at=self.now,
            trigger=self.options.trigger,
        )
        summary = RunSummary(run_id, self.connector.crm, self.mode, self.now,
                             ruleset_version=self.ruleset.version)
        self.summary = summary
        self._tally = Tally(summary, self.now, miss_rule_ids(self.ruleset.tree.decisions),
                            self.options.samples, rule_ids(self.ruleset.tree))
        self._shadow = ShadowTally(self.shadow) if self.shadow is not None else None
        started = time.monotonic()
        calls_before = self.connector.api_calls()
        try:
            self._take_lease()
            # Credentials and crmsync's fields, checked before anything is read or written (a
            # plan against a CRM without them would promise writes a run cannot make).
            self.connector.check()
            for stream in self.connector.streams():
                self._sync_stream(stream)
        except RunInProgress as error:
            # Overlapping schedules are normal: nothing was done, nobody should be paged.
            summary.status, summary.exit_code, summary.error = "skipped", ExitCode.BUSY, str(error)
        except StateError as error:
            summary.status, summary.exit_code, summary.error = "failed", error.exit_code, str(error)
            self._finish(summary, started, calls_before, store_failed=True)
            raise
        except CrmsyncError as error:
            summary.status, summary.exit_code = _outcome(error)
            summary.error = str(error)
        except BaseException as error:
            # Interrupted (Ctrl-C, SIGTERM) or a bug: the ledger must not say "running" forever.
            # Only the error's type is kept: a foreign message may quote record data.
            summary.status, summary.exit_code = "aborted", ExitCode.TRANSIENT
            summary.error = f"interrupted ({type(error).__name__})"
            self._finish(summary, started, calls_before)
            raise
        else:
            rejected = summary.counts.get("rejected", 0)
            summary.status = "partial" if rejected else "ok"
            summary.exit_code = ExitCode.PARTIAL if rejected else ExitCode.OK
        self._finish(summary, started, calls_before)
        return summary

    # -- the lease ----------------------------------------------------------------------------

    def _take_lease(self) -> None:
        """Take the CRM's run lease; close the books of a run that died holding it."""
        if self.options.dry_run:
            return
        dead = self.store.acquire_lease(self._lease_name, self._current.run_id, LEASE_TTL)
        self._lease_renewed = time.monotonic()
        # Its unsettled writes are re-read and re-planned stream by stream (recovery).
        if dead and self.store.abort_run(dead, "stopped without finishing (lease taken over)"):
            log.warning("run %s stopped without finishing; this run finishes its work", dead)

    def _hold_lease(self) -> None:
        """Extend the lease (after a page, every few seconds); two writers could duplicate tasks."""
        if self.options.dry_run:
            return
        moment = time.monotonic()
        if moment - self._lease_renewed < LEASE_HEARTBEAT_S:
            return
        self.store.acquire_lease(self._lease_name, self._current.run_id, LEASE_TTL)
        self._lease_renewed = moment

    @property
    def _lease_name(self) -> str:
        return f"sync:{self.connector.crm}"

    def _finish(self, summary: RunSummary, started: float, calls_before: int,
                store_failed: bool = False) -> None:
        assert self._tally is not None
        if not store_failed:
            # A run that stopped early still settles the writes already in flight: they
            # happened, and the journal must say so (else the next run re-reads them).
            try:
                self._inflight.close()
            except Exception as error:  # noqa: BLE001 - the run already has its outcome
                log.warning("could not settle the writes in flight: %s", type(error).__name__)
        self._tally.finish()
        summary.api_calls = self.connector.api_calls() - calls_before
        summary.finished_at = summary.started_at + timedelta(seconds=time.monotonic() - started)
        if self.options.dry_run:
            summary.estimated_write_calls = estimate_write_calls(
                summary, self.connector.limits, bulk_threshold=self.options.bulk_threshold)
        try:
            if not store_failed:
                self._record_shadow(summary)
            if not self.options.dry_run and summary.status != "skipped":
                # Two aggregate queries a run (not a contact): the report's stage counts over
                # time, one point per run, taken while this run still holds the lease.
                summary.stage_totals = dict(self.store.status_counts())
                summary.miss_totals = dict(self.store.miss_type_counts())
                self.store.release_lease(self._lease_name, summary.run_id)
            self.store.finish_run(
                summary.run_id,
                status=summary.status,
                exit_code=int(summary.exit_code),
                counts=summary.to_json(),
                error=summary.error,
                finished_at=summary.finished_at,
            )
        except StateError:
            if not store_failed:
                raise
            # The store is gone: the error being raised already says so.
        log.info(summary.logfmt())

    def _record_shadow(self, summary: RunSummary) -> None:
        """Record the candidate's comparison (one row); the summary shows the run's total.

        A dry run records nothing (its ledger row is a plan, not a run the candidate shadowed)
        but shows the comparison. A sharded run's total adds up the rows its shards recorded.
        """
        if self._shadow is None or summary.status == "skipped":
            return
        if self.options.dry_run:
            summary.shadow = self._shadow.to_json()
            return
        self.store.record_shadow(summary.run_id, RUN_PART, self._shadow.to_json())
        summary.shadow = self.store.shadow_comparison(summary.run_id)

    # -- one stream ---------------------------------------------------------------------------

    def _full_reason(self, stream: str, cursor: Cursor) -> str | None:
        """Why this stream must be read whole this time, or None for an incremental read."""
        if self.options.full:
            return FULL_REQUESTED
        if cursor.value is None:
            return FIRST_READ
        stamp = self.store.stream_stamp(stream)
        if stamp is None:
            return "rules changed (no record of the rules that decided): re-evaluating all contacts"
        if stamp.ruleset_version == REDECIDE_AFTER_UPGRADE:
            return ("store upgraded (owner and lead source are now recorded): re-evaluating "
                    "all contacts once")
        if stamp.ruleset_hash != self.ruleset.content_hash:
            return (f"rules changed ({stamp.ruleset_version or stamp.ruleset_hash[:12]} → "
                    f"{self.ruleset.version or self.ruleset.content_hash[:12]}): "
                    "re-evaluating all contacts")
        if self.fieldmap_hash and stamp.fieldmap_hash != self.fieldmap_hash:
            return "field map changed: re-evaluating all contacts"
        return None

    def _sync_stream(self, stream: str) -> None:
        """One stream in this process: open it, read every page, close it."""
        stream_pass = self._open_stream(stream)
        self._read_pages(stream_pass, self.connector.read(stream, stream_pass.since, self.now),
                         commit_cursors=True)
        self._close_stream(stream_pass)

    def _open_stream(self, stream: str) -> StreamPass:
        """Recover what a stopped run left, decide full or incremental, retry rejected records.

        Everything a stream needs before its pages are read, done once per stream and run
        (by the coordinator of a sharded run, before any shard starts).
        """
        summary = self._current
        cursor = self.store.get_cursor(stream)
        if not self.options.dry_run:
            self._recover_pending_tasks(stream)
            self._recover_pending_writes(stream)
        reason = self._full_reason(stream, cursor)
        full = reason is not None
        since = None if full else cursor.value - self.options.overlap  # type: ignore[operator]
        # A full read nobody asked for (rules, field map or store changed) is worth a warning.
        if reason and reason not in (FULL_REQUESTED, FIRST_READ):
            log.warning("%s: %s", stream, reason)
        summary.scope[stream] = (
            f"full: {reason}" if full else
            f"incremental (partial: contacts changed since {since:%Y-%m-%d %H:%M:%S}Z)"
        )
        log.info("%s: reading, %s", stream, summary.scope[stream])
        # Each stream's pages are numbered from 0; retried records count as a page of their own.
        self._gate = CursorGate()
        self._page = self._gate.open_page()
        # Records rejected last run are retried first, whatever their state says.
        stream_pass = StreamPass(stream, full=full, since=since,
                                 cursor=Cursor(stream) if full else cursor)
        retry_ids = [] if self.options.dry_run else self.store.rejected_ids(stream)
        if retry_ids:
            self._process(stream, self.connector.read_ids(stream, retry_ids), dedupe=False)
            stream_pass.retried.update(retry_ids)
        stream_pass.new_cursor = stream_pass.cursor
        return stream_pass

    def _read_pages(self, stream_pass: StreamPass, pages: Iterator[Page], *,
                    commit_cursors: bool) -> None:
        """Decide and write every page of a stream (or of one shard of it), then settle.

        With ``commit_cursors`` each page's cursor is committed once its writes settled; a
        shard of a sharded run commits none (its coordinator moves the cursor when every
        shard is done).
        """
        stream = stream_pass.stream
        if self.options.concurrency > 1:
            pages = read_ahead(pages)
        try:
            for page in pages:
                stopping.check()
                self._page = self._gate.open_page()
                if stream_pass.cursor.value is None and not stream_pass.retried:
                    contacts = list(page.contacts)  # a full read with no retries: all fresh
                else:
                    contacts = [
                        c for c in page.contacts
                        if c.id not in stream_pass.retried
                        and not already_processed(c, stream_pass.cursor)
                    ]
                self._process(stream, contacts, dedupe=True, explicit_full=self.options.full)
                self._hold_lease()
                if page.related or self.options.dry_run:
                    continue
                if not page.ordered:
                    stream_pass.scanned_unordered = True
                elif commit_cursors:
                    stream_pass.new_cursor = advance(stream_pass.new_cursor, page.contacts,
                                                     cap=self.now)
                    self._gate.page_read(self._page, stream_pass.new_cursor)
                # The cursor moves once every write planned from its page (and before) settled.
                self._inflight.settle_ready()
                ready = self._gate.ready()
                if ready is not None and commit_cursors:
                    self.store.commit_cursor(ready)
        finally:
            # A run stopped mid-stream stops the page reader too (it may be a thread).
            close = getattr(pages, "close", None)
            if close is not None:
                close()
        self._flush_writes(stream)

    def _close_stream(self, stream_pass: StreamPass) -> None:
        """Settle retried records, move the cursor past the completed read, stamp the rules."""
        stream = stream_pass.stream
        # A record retried this run and not rejected again is settled, whatever its outcome
        # was (written, unchanged by now, or gone from the CRM): stop retrying it.
        self.store.resolve_rejections(stream, stream_pass.retried - self._rejected_now)
        if self.options.dry_run:
            return
        if stream_pass.scanned_unordered:
            # An id-ordered scan saw everything modified before the run started, no more.
            self.store.commit_cursor(Cursor(stream, self.now, frozenset()))
        else:
            # The read completed: everything modified before the run started (less the overlap,
            # for records indexed late) has been seen, even where nothing changed; without
            # this the cursor would sit at the last change and every run would re-read the
            # overlap behind it forever.
            new_cursor = stream_pass.new_cursor
            floor = self.now - self.options.overlap
            if new_cursor.value is None or new_cursor.value < floor:
                new_cursor = Cursor(stream, floor, frozenset())
            self.store.commit_cursor(new_cursor)
        if stream_pass.full:
            self.store.set_stream_stamp(
                stream, ruleset_version=self.ruleset.version,
                ruleset_hash=self.ruleset.content_hash, fieldmap_hash=self.fieldmap_hash,
                run_id=self._current.run_id)

    def _process(self, stream: str, fresh: Sequence[Contact], *, dedupe: bool,
                 explicit_full: bool = False) -> None:
        if not fresh:
            return
        summary = self._current
        # One read for the page: states, open tasks and closed counts of all its contacts.
        ids = [c.id for c in fresh]
        context = self.store.page_context(stream, ids)
        states = context.states
        lost = forgotten(fresh, states) if not self.options.dry_run else []
        if lost:
            recorded, still_open = adopt_forgotten_tasks(
                self.connector, self.store, summary.run_id, stream, lost, self._task_purposes)
            if still_open:
                summary.counts["tasks_found"] += still_open
            if recorded:
                # What the CRM holds, now in the store: the page's open tasks and closed counts.
                context = self.store.page_context(stream, ids)
        if dedupe:
            fresh = self._unseen(fresh, states, explicit_full)
            if not fresh:
                return
        open_tasks = self._open_tasks(context.open_tasks)
        closed: dict[str, dict[str, int]] = {}
        for (record_id, purpose), count in context.closed_counts.items():
            closed.setdefault(record_id, {})[purpose] = count
        plans = []
        assert self._tally is not None
        # Bound once a page, not per contact (the loop below runs for every contact read).
        evaluate, shadow, add = self.ruleset.evaluate, self._shadow, self._tally.add
        now, plan_options, rules_hash = self.now, self.plan_options, self._rules_hash
        open_for, closed_for, state_of = open_tasks.get, closed.get, states.get
        for contact in fresh:
            contact_id = contact.id
            # Facts come through the field map, already coerced to their types.
            decision = evaluate(contact.facts, now=now, contact_id=contact_id, coerced=True)
            if shadow is not None:
                shadow.add(contact, decision, now=now, coerced=True)
            plan = plan_contact(contact, decision, now=now, open_tasks=open_for(contact_id),
                                closed_counts=closed_for(contact_id), options=plan_options)
            plans.append(plan)
            state = state_of(contact_id)
            by_rules = (state is not None and state.modified_at is not None
                        and state.modified_at == contact.modified_at
                        and state.ruleset_hash != rules_hash)
            add(stream, plan, by_rules=by_rules)
        summary.counts["read"] += len(fresh)
        summary.read_by_stream[stream] += len(fresh)
        summary.counts["evaluated"] += len(fresh)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: page %d: %d contacts decided, %d with changes", stream, self._page,
                      len(fresh), sum(1 for p in plans if p.changed))
        if not self.options.dry_run:
            self._apply(stream, plans)
            # Contacts with field updates are saved once their batch settles.
            self._save_states(stream, [p for p in plans if not p.updates])
        self.on_progress(stream, len(fresh))

    def _unseen(self, contacts: Sequence[Contact], states: dict[str, ContactState],
                explicit_full: bool) -> list[Contact]:
        """Drop contacts this run, or a run under the same rules, decided in this very state.

        Pages overlap (the cursor's overlap, keyset ties, related re-reads): a record met again
        with the same modification stamp is not evaluated, counted or written twice. A plan
        skips what the run after it would skip; as it saves no decisions, it also remembers
        the ids it met itself.
        """
        kept = []
        dry_run, seen = self.options.dry_run, self._seen
        run_id, rules_hash = self._current.run_id, self._rules_hash
        for contact in contacts:
            state = states.get(contact.id)
            decided = (state is not None and contact.modified_at is not None
                       and state.modified_at == contact.modified_at
                       and state.ruleset_hash == rules_hash)
            if decided and (not explicit_full or state.run_id == run_id):  # type: ignore[union-attr]
                self._current.counts["duplicates_skipped"] += 1
                continue
            if dry_run:
                if contact.id in seen:
                    self._current.counts["duplicates_skipped"] += 1
                    continue
                seen.add(contact.id)
            kept.append(contact)
        return kept

    def _save_states(self, stream: str, plans: Sequence[ContactPlan]) -> None:
        self.store.save_contact_states(self._current.run_id, stream, self._state_rows(plans))

    def _state_rows(self, plans: Sequence[ContactPlan]) -> list[dict[str, object]]:
        """The decisions of ``plans`` to save (not those the CRM refused just now)."""
        rows = []
        rejected, rules_hash = self._rejected_now, self._rules_hash
        for plan in plans:
            contact = plan.contact
            if contact.id in rejected:
                continue  # the CRM does not hold this decision; the retry will save it
            decision = plan.decision
            since = plan.updates.get("status_since", contact.outputs.get("status_since"))
            source = contact.facts.get("lead_source")
            rows.append({
                "record_id": contact.id, "status": decision.status,
                "miss_type": decision.miss_type, "score": float(decision.score),
                "status_since": since if isinstance(since, datetime) else None,
                "ruleset_hash": rules_hash, "modified_at": contact.modified_at,
                # The report's breakdowns: already on the contact, so saving them is free.
                "owner_id": contact.owner_id,
                "lead_source": stored_category(source),
            })
        return rows

    def _open_tasks(self, tasks: Iterable[TaskRecord]) -> dict[str, dict[str, OpenTask]]:
        by_contact: dict[str, dict[str, OpenTask]] = {}
        for task in tasks:
            # An unsettled intent has no CRM id yet: it blocks a second create, but cannot be
            # closed until recovery finds it.
            by_contact.setdefault(task.record_id, {})[task.key] = OpenTask(
                task.key, task.purpose, task.task_id or ""
            )
        return by_contact


def _outcome(error: CrmsyncError) -> tuple[str, ExitCode]:
    """Return the run status and exit code an error ends a run with (DESIGN.md §4)."""
    if isinstance(error, QuotaExhausted):
        return "aborted", ExitCode.AUTH_OR_QUOTA  # resumes next time, where it stopped
    if isinstance(error, AuthError):
        return "failed", ExitCode.AUTH_OR_QUOTA
    if isinstance(error, TransientError):
        return "failed", ExitCode.TRANSIENT
    return "failed", error.exit_code


def _plan_options(policy: str, ruleset: RuleSet, *, restamp: bool) -> PlanOptions:
    if policy == "leave":
        return PlanOptions(close_obsolete_tasks=False, restamp=restamp)
    if policy == "close":
        return PlanOptions(close_obsolete_tasks=True, restamp=restamp)
    # "rule": a purpose whose template says so stays open; a purpose no template names any
    # more (the rule was deleted) is closed.
    keep = frozenset(t.purpose for t in ruleset.tree.tasks if not t.close_when_obsolete)
    return PlanOptions(close_obsolete_tasks=True, keep_open_purposes=keep, restamp=restamp)
