"""The honest comparator for a sync's client CPU: a first full HubSpot sync written plainly.

Run on demand (not a test):

    python benchmarks/plain_sync.py [--contacts 10000] [--pairs 2]

Client CPU per contact is an absolute figure, and this machine's speed moves between sessions
(Salesforce's first run measured 77-82 µs one day and 118-130 µs another, same code). This
script measures crmsync's first full HubSpot run and the plainest fast program that does the
same job, one after the other on fresh sandboxes of the same seed, and prints both and their
ratio: a figure that does not depend on the machine.

The plain program is what a performance-minded engineer would write for this one job, with no
framework and no extension points. It makes the same calls and keeps the same guarantees:

* **reads**: search pages of 200 with the same 40 properties (keyset on ``hs_object_id``); the
  contacts' deals through one v4 association read per 1,000 contacts (pages pooled, as
  crmsync pools them) and deal batch reads of 100;
* **rules**: ``rules/default.json`` by hand (``rules_ceiling.make_handwritten``), on facts
  coerced by hand from HubSpot's text (only the facts those rules read);
* **writes**: the changed outputs of each contact in batch updates of 100, spelled as HubSpot
  stores them; follow-up tasks with the key in their own property, looked up first (one search
  per 500 keys, as crmsync does against duplicates), then created in batches of 100 with their
  contact association;
* **journal** (``sqlite3``, WAL, ``synchronous=NORMAL``): before a page's writes are sent, its
  field writes (before and after values as JSON, orjson as crmsync) and task intents are
  inserted and committed; each batch's outcome is settled and the decisions it wrote saved in
  one transaction; the cursor is committed only once every write planned from its page settled.
  Before planning, a page reads the stored decisions and open tasks of its contacts (what
  crmsync reads to skip contacts decided already and never open a second task).

Left out, because a first run on a healthy sandbox exercises none of it or it costs nothing
per contact: the pre-flight check (crmsync reads the contact and task property definitions,
two calls), pacing by rate-limit headers, retries and rejections, the run ledger and lease,
progress, the summary's counts, closing obsolete tasks. It makes 223 calls where crmsync makes
220 at 10,000 contacts: no check, and 30 deal reads to crmsync's 25 (crmsync fills every read
with 100 deals across up to eight pages; this reads each 1,000 contacts' deals on their own).
HTTP goes through a bare ``urllib3``
pool and the standard ``json`` (crmsync must use hubspot-api-client, and chose ``json`` over
orjson for bodies: the SDK's own cost is measured in ``hubspot_micro.py``). It runs on one
thread, which costs the least CPU; crmsync runs at ``[sync] concurrency`` 4.

Before any figure is printed, the two runs' decisions (status, miss type, score of every
contact) and task counts are compared: a comparator that decides differently is not one.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rules_ceiling import make_handwritten  # noqa: E402
from sync_bench import Sandbox, set_up  # noqa: E402

from crmsync.plan import task_key  # noqa: E402
from crmsync.rules import load_ruleset  # noqa: E402

RULES = Path(__file__).resolve().parent.parent / "rules" / "default.json"
#: What crmsync's default HubSpot field map requests: every mapped fact and every output.
PROPERTIES = [
    "hs_object_id", "email", "firstname", "lastname", "jobtitle", "hubspot_owner_id",
    "hs_analytics_source", "company", "country", "industry", "numemployees", "annualrevenue",
    "createdate", "notes_last_updated", "notes_last_contacted", "num_conversion_events",
    "hs_analytics_num_page_views", "webinars_attended", "content_downloads",
    "pricing_page_views", "chat_conversations", "trial_signup", "demo_requested",
    "case_study_requested", "inbound_from_decision_maker", "budget_confirmed",
    "decision_maker", "not_a_fit", "lifecyclestage", "hs_lead_status",
    "crmsync_status_override", "lastmodifieddate", "crmsync_status", "crmsync_miss_type",
    "crmsync_score", "crmsync_reason", "crmsync_ruleset", "crmsync_evaluated_at",
    "crmsync_status_since", "crmsync_icp_tier"]
#: Output -> HubSpot property, in the order crmsync writes them.
OUTPUTS = {"status": "crmsync_status", "miss_type": "crmsync_miss_type",
           "score": "crmsync_score", "reason": "crmsync_reason", "ruleset": "crmsync_ruleset",
           "evaluated_at": "crmsync_evaluated_at", "status_since": "crmsync_status_since",
           "icp_tier": "crmsync_icp_tier"}
DEAL_PROPERTIES = ["dealstage", "amount", "closedate", "closed_lost_reason", "competitor",
                   "hs_lastmodifieddate"]
PRIORITY = {"high": "HIGH", "normal": "MEDIUM", "low": "LOW"}
PAGE, BATCH, POOL, KEYS = 200, 100, 1000, 500
REASON_MAX = 255
_BOOLS = {"true": True, "false": False}

SCHEMA = """
CREATE TABLE journal (id INTEGER PRIMARY KEY, run_id TEXT NOT NULL, record_id TEXT NOT NULL,
    kind TEXT NOT NULL, before TEXT, after TEXT, task_key TEXT, state TEXT NOT NULL,
    updated_at TEXT NOT NULL);
CREATE INDEX journal_run ON journal (run_id, id);
CREATE INDEX journal_state ON journal (state);
CREATE TABLE contacts (record_id TEXT PRIMARY KEY, status TEXT, miss_type TEXT, score REAL,
    status_since TEXT, ruleset TEXT, modified_at TEXT, owner_id TEXT, lead_source TEXT);
CREATE TABLE tasks (key TEXT PRIMARY KEY, record_id TEXT NOT NULL, purpose TEXT NOT NULL,
    state TEXT NOT NULL, task_id TEXT, journal_id INTEGER);
CREATE INDEX tasks_record ON tasks (record_id, state);
CREATE TABLE cursors (stream TEXT PRIMARY KEY, value TEXT);
INSERT INTO cursors VALUES ('hubspot:contacts', NULL);
"""


# -- coercion of HubSpot's text, by hand ------------------------------------------------------

def _text(value: str | None) -> str | None:
    return None if value is None else value.strip() or None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        return int(float(value.replace(",", "")))
    except ValueError:
        return None


def _bool(value: str | None) -> bool | None:
    if value is None:
        return None
    known = _BOOLS.get(value)
    return known if known is not None else _BOOLS.get(value.strip().lower())


def _instant(value: str | None) -> datetime | None:
    if not value:
        return None
    if value.isdigit():
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class PlainSync:
    """A first full HubSpot sync, written plainly (see the module docstring)."""

    def __init__(self, base_url: str, token: str, db: Path, now: datetime) -> None:
        self.base = base_url.rstrip("/")
        self.http = urllib3.PoolManager(maxsize=1)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        ruleset = load_ruleset(RULES)
        self.version = ruleset.version
        self.decide = make_handwritten(now, ruleset.version, ruleset.content_hash)
        self.now, self.stamp = now, _iso(now)
        self.run_id = f"plain-{int(now.timestamp())}"
        self.db = sqlite3.connect(db, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self.calls = 0
        self.tasks_created = 0
        self.queued_tasks: list[tuple[int, str, str, dict[str, str]]] = []
        #: Pages read but not yet safe to move the cursor past: (last task intent's journal
        #: id, 0 for none; the page's cursor value), oldest first.
        self.held: list[tuple[int, str]] = []

    def post(self, path: str, body: Any) -> Any:
        self.calls += 1
        response = self.http.request("POST", self.base + path, body=json.dumps(body),
                                     headers=self.headers)
        if response.status >= 300:
            raise RuntimeError(f"{path}: HTTP {response.status} {response.data[:200]!r}")
        return json.loads(response.data)

    # -- reading ----------------------------------------------------------------------------

    def pages(self) -> Iterator[list[dict[str, Any]]]:
        after_id = "0"
        while True:
            page = self.post("/crm/v3/objects/contacts/search", {
                "filterGroups": [{"filters": [
                    {"propertyName": "hs_object_id", "operator": "GT", "value": after_id}]}],
                "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                "properties": PROPERTIES, "limit": PAGE})
            results = page["results"]
            if not results:
                return
            yield results
            if len(results) < PAGE:
                return
            after_id = results[-1]["id"]

    def deals_of(self, contact_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Each contact's deals' properties: one association read, deal reads of 100."""
        links = self.post("/crm/v4/associations/contacts/deals/batch/read",
                          {"inputs": [{"id": i} for i in contact_ids]})
        by_contact: dict[str, list[str]] = {}
        for row in links.get("results") or []:
            by_contact[row["from"]["id"]] = [str(t["toObjectId"]) for t in row["to"]]
        deal_ids = list(dict.fromkeys(d for ids in by_contact.values() for d in ids))
        deals: dict[str, dict[str, Any]] = {}
        for start in range(0, len(deal_ids), BATCH):
            answer = self.post("/crm/v3/objects/deals/batch/read", {
                "inputs": [{"id": i} for i in deal_ids[start:start + BATCH]],
                "properties": DEAL_PROPERTIES})
            for deal in answer["results"]:
                deals[deal["id"]] = deal["properties"]
        return {cid: [deals[d] for d in ids if d in deals] for cid, ids in by_contact.items()}

    # -- deciding ---------------------------------------------------------------------------

    def facts(self, p: dict[str, Any], deals: list[dict[str, Any]]) -> dict[str, Any]:
        email = _text(p.get("email"))
        email = email.lower() if email else None
        country = _text(p.get("country"))
        facts = {
            "id": _text(p.get("hs_object_id")),
            "email_domain": (email.rpartition("@")[2] or None) if email and "@" in email
            else None,
            "first_name": _text(p.get("firstname")), "title": _text(p.get("jobtitle")),
            "company": _text(p.get("company")), "country": country.upper() if country else None,
            "industry": _text(p.get("industry")), "employees": _int(p.get("numemployees")),
            "last_activity_at": _instant(p.get("notes_last_updated")),
            "form_submissions": _int(p.get("num_conversion_events")),
            "page_views": _int(p.get("hs_analytics_num_page_views")),
            "webinars_attended": _int(p.get("webinars_attended")),
            "content_downloads": _int(p.get("content_downloads")),
            "pricing_page_views": _int(p.get("pricing_page_views")),
            "chat_conversations": _int(p.get("chat_conversations")),
            "trial_signup": _bool(p.get("trial_signup")),
            "demo_requested": _bool(p.get("demo_requested")),
            "case_study_requested": _bool(p.get("case_study_requested")),
            "inbound_from_decision_maker": _bool(p.get("inbound_from_decision_maker")),
            "budget_confirmed": _bool(p.get("budget_confirmed")),
            "decision_maker": _bool(p.get("decision_maker")),
            "not_a_fit": _bool(p.get("not_a_fit")),
            "lead_status": _text(p.get("hs_lead_status")),
            "status_override": _text(p.get("crmsync_status_override")),
            "previous_status": _text(p.get("crmsync_status")),
            "open_deals": 0, "won_deals": 0, "lost_deals": 0, "deal_stage": None,
            "closed_lost_reason": None, "competitor": None,
        }
        if deals:
            latest = last_lost = None
            latest_at = lost_at = None
            open_deals = won = lost = 0
            for deal in deals:
                stage = _text(deal.get("dealstage"))
                closed = _instant(deal.get("closedate"))
                if stage == "closedwon":
                    won += 1
                elif stage == "closedlost":
                    lost += 1
                    if last_lost is None or (closed is not None
                                             and (lost_at is None or closed > lost_at)):
                        last_lost, lost_at = deal, closed
                else:
                    open_deals += 1
                if latest is None or (closed is not None
                                      and (latest_at is None or closed > latest_at)):
                    latest, latest_at = deal, closed
            facts.update(open_deals=open_deals, won_deals=won, lost_deals=lost,
                         deal_stage=_text(latest.get("dealstage")) if latest else None)
            if last_lost is not None:
                facts["closed_lost_reason"] = _text(last_lost.get("closed_lost_reason"))
                facts["competitor"] = _text(last_lost.get("competitor"))
        return facts

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> None:
        pooled: list[list[dict[str, Any]]] = []
        pooled_size = 0
        for page in self.pages():
            pooled.append(page)
            pooled_size += len(page)
            if pooled_size >= POOL:
                self.process(pooled)
                pooled, pooled_size = [], 0
        if pooled:
            self.process(pooled)
        self.send_tasks(final=True)

    def process(self, pages: list[list[dict[str, Any]]]) -> None:
        deals = self.deals_of([c["id"] for page in pages for c in page])
        for page in pages:
            self.process_page(page, deals)

    def process_page(self, page: list[dict[str, Any]], deals: dict[str, list[Any]]) -> None:
        db = self.db
        ids = [c["id"] for c in page]
        marks = ",".join("?" * len(ids))
        decided = {row[0]: row[1] for row in db.execute(
            f"SELECT record_id, ruleset FROM contacts WHERE record_id IN ({marks})", ids)}
        open_purposes: dict[str, set[str]] = {}
        for record_id, purpose in db.execute(
                f"SELECT record_id, purpose FROM tasks WHERE record_id IN ({marks}) "
                "AND state IN ('intent', 'open')", ids):
            open_purposes.setdefault(record_id, set()).add(purpose)
        writes, creates, states = [], [], []
        no_deals: list[Any] = []
        for contact in page:
            cid, p = contact["id"], contact["properties"]
            if decided.get(cid) == self.version:
                continue
            decision = self.decide(self.facts(p, deals.get(cid, no_deals)))
            reason = decision.reason
            wanted = {"status": decision.status, "miss_type": decision.miss_type,
                      "score": str(decision.score),
                      "reason": reason if len(reason) <= REASON_MAX else reason[:REASON_MAX],
                      "ruleset": self.version}
            tier = decision.extra.get("icp_tier") if decision.extra else None
            if tier is not None:
                wanted["icp_tier"] = str(tier)
            before, after = {}, {}
            for output, value in wanted.items():
                old = p.get(OUTPUTS[output])
                if old != value:
                    before[output], after[output] = old, value
            if after:
                after["evaluated_at"] = self.stamp
                before["evaluated_at"] = p.get("crmsync_evaluated_at")
            since = p.get("crmsync_status_since")
            if "status" in after or since is None:
                before["status_since"], after["status_since"] = since, self.stamp
                since = self.stamp
                if "evaluated_at" not in after:
                    before["evaluated_at"] = p.get("crmsync_evaluated_at")
                    after["evaluated_at"] = self.stamp
            state = (cid, decision.status, decision.miss_type, float(decision.score), since,
                     self.version, p.get("lastmodifieddate"), p.get("hubspot_owner_id"),
                     p.get("hs_analytics_source"))
            if after:
                writes.append((cid, before, after, state))
            else:
                states.append(state)
            owner = p.get("hubspot_owner_id")
            for spec in decision.tasks:
                if spec.purpose in open_purposes.get(cid, ()):
                    continue
                key = task_key(cid, spec.purpose)
                due = _iso(datetime(spec.due.year, spec.due.month, spec.due.day, 12,
                                    tzinfo=UTC))
                values = {"hs_task_subject": spec.subject,
                          "hs_task_body": f"{spec.body}\n<!-- crmsync-key:{key} -->",
                          "hs_timestamp": due, "hs_task_status": "NOT_STARTED",
                          "hs_task_priority": PRIORITY.get(spec.priority, spec.priority),
                          "crmsync_task_key": key, "hs_task_type": "TODO"}
                if owner:
                    values["hubspot_owner_id"] = owner
                creates.append((cid, spec.purpose, key, values))
        first = journal_page(db, self.run_id, self.stamp, writes, creates, states)
        for start in range(0, len(writes), BATCH):
            self.send_updates(writes[start:start + BATCH], first + start)
        self.queued_tasks.extend((first + len(writes) + n, cid, key, values)
                                 for n, (cid, _, key, values) in enumerate(creates))
        last_task = self.queued_tasks[-1][0] if creates else 0
        self.held.append((last_task, max(c["properties"]["lastmodifieddate"] or ""
                                         for c in page)))
        self.send_tasks(final=False)

    def send_updates(self, batch: list[Any], first_id: int) -> None:
        answer = self.post("/crm/v3/objects/contacts/batch/update", {"inputs": [
            {"id": cid, "properties": {OUTPUTS[o]: v for o, v in after.items()}}
            for cid, _, after, _ in batch]})
        ok = {r["id"] for r in answer["results"]}
        db = self.db
        db.execute("BEGIN")
        db.executemany("UPDATE journal SET state = ?, updated_at = ? WHERE id = ?",
                       [("applied" if cid in ok else "rejected", self.stamp, first_id + n)
                        for n, (cid, _, _, _) in enumerate(batch)])
        db.executemany("INSERT OR REPLACE INTO contacts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       [state for cid, _, _, state in batch if cid in ok])
        db.execute("COMMIT")

    def send_tasks(self, *, final: bool) -> None:
        """Create queued tasks once 500 keys wait (one lookup, then batches of 100).

        Then commit the cursor of the newest page whose writes have all settled.
        """
        queued = self.queued_tasks
        while len(queued) >= KEYS or (final and queued):
            group, queued[:] = queued[:KEYS], queued[KEYS:]
            found = self.existing_tasks([key for _, _, key, _ in group])
            todo = [t for t in group if t[2] not in found]
            for start in range(0, len(todo), BATCH):
                batch = todo[start:start + BATCH]
                answer = self.post("/crm/v3/objects/tasks/batch/create", {"inputs": [
                    {"properties": values, "associations": [{"to": {"id": cid}, "types": [
                        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}]}]}
                    for _, cid, _, values in batch]})
                made = {r["properties"]["crmsync_task_key"]: r["id"] for r in answer["results"]}
                self.tasks_created += len(made)
                settle_tasks(self.db, self.stamp, batch, made)
            settle_tasks(self.db, self.stamp, [t for t in group if t[2] in found], found)
        waiting = queued[0][0] if queued else None  # the oldest task intent not yet sent
        value = None
        while self.held and (waiting is None or self.held[0][0] < waiting):
            value = self.held.pop(0)[1]
        if value is not None:
            self.db.execute("UPDATE cursors SET value = ? WHERE stream = 'hubspot:contacts'",
                            (value,))

    def existing_tasks(self, keys: list[str]) -> dict[str, str]:
        """Open tasks already carrying these keys (one search per 500 keys)."""
        groups = [{"filters": [
            {"propertyName": "crmsync_task_key", "operator": "IN", "values": keys[i:i + 100]},
            {"propertyName": "hs_task_status", "operator": "NEQ", "value": "COMPLETED"}]}
            for i in range(0, len(keys), 100)]
        page = self.post("/crm/v3/objects/tasks/search", {
            "filterGroups": groups, "properties": ["crmsync_task_key", "hs_task_status"],
            "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
            "limit": PAGE})
        return {t["properties"]["crmsync_task_key"]: t["id"] for t in page["results"]}


def journal_page(db: sqlite3.Connection, run_id: str, stamp: str, writes: Sequence[Any],
                 creates: Sequence[Any], states: Sequence[Any]) -> int:
    """Journal a page before any of it is sent, in one transaction: its field writes
    ``(record id, before, after, decision row)`` and task intents ``(record id, purpose, key,
    task values)``, pending, and the decisions of contacts it writes nothing to.

    Returns the first journal id: field writes take the ids from it, task intents follow.
    """
    db.execute("BEGIN")
    first = db.execute("SELECT coalesce(max(id), 0) FROM journal").fetchone()[0] + 1
    dumps = orjson.dumps
    db.executemany(
        "INSERT INTO journal (run_id, record_id, kind, before, after, task_key, state, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
        [(run_id, cid, "fields", dumps(before), dumps(after), None, stamp)
         for cid, before, after, _ in writes]
        + [(run_id, cid, "task_create", None, dumps(values), key, stamp)
           for cid, _, key, values in creates])
    db.executemany(
        "INSERT INTO tasks (key, record_id, purpose, state, journal_id) "
        "VALUES (?, ?, ?, 'intent', ?)",
        [(key, cid, purpose, first + len(writes) + n)
         for n, (cid, purpose, key, _) in enumerate(creates)])
    if states:
        db.executemany("INSERT OR REPLACE INTO contacts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       states)
    db.execute("COMMIT")
    return first


def settle_tasks(db: sqlite3.Connection, stamp: str, batch: Sequence[Any],
                 made: Mapping[str, str]) -> None:
    """Settle sent task intents ``(journal id, record id, key, values)`` in one transaction:
    those in ``made`` (key -> CRM task id) applied and open, the others rejected."""
    if not batch:
        return
    db.execute("BEGIN")
    db.executemany("UPDATE journal SET state = ?, updated_at = ? WHERE id = ?",
                   [("applied" if key in made else "rejected", stamp, jid)
                    for jid, _, key, _ in batch])
    db.executemany("UPDATE tasks SET state = 'open', task_id = ? WHERE key = ?",
                   [(made[key], key) for _, _, key, _ in batch if key in made])
    db.execute("COMMIT")


def _prepare(contacts: int) -> tuple[Sandbox, Path]:
    """A seeded sandbox with crmsync's properties created, quotas lifted, 20 ms latency."""
    box = Sandbox("hubspot", contacts)
    config, _limits = set_up(box, "hubspot", latency_ms=20)
    return box, config


def first_full_run(config: Path, now: datetime, **options: Any) -> float:
    """crmsync's first full run with the config at ``config`` and the clock ``now``; returns
    its client CPU seconds (building and closing the parts left out)."""
    from crmsync.config import load_settings
    from crmsync.sync import SyncOptions, SyncRun
    from crmsync.wiring import load_parts

    parts = load_parts(load_settings(config, env={}))
    try:
        run = SyncRun(parts.connector, parts.ruleset, parts.store, now=now,
                      options=SyncOptions(full=True, **options))
        cpu = time.process_time()
        run.execute()
        return time.process_time() - cpu
    finally:
        parts.close()


def measure_crmsync(contacts: int, now: datetime, concurrency: int = 4
                    ) -> tuple[float, int, dict[str, Any]]:
    """crmsync's first full run: (client CPU s, calls, decisions by contact id, open tasks)."""
    box, config = _prepare(contacts)
    try:
        cpu = first_full_run(config, now, concurrency=concurrency)
        calls = box.admin("GET", "calls")["total"]
    finally:
        box.close()
    with closing(sqlite3.connect(config.parent / "state.db")) as db:
        decided = _decisions(db, "crmsync_contacts", "crmsync_tasks")
    return cpu, calls, decided


def measure_plain(contacts: int, now: datetime) -> tuple[float, int, dict[str, Any]]:
    """The plain program's first full run: (client CPU s, calls, decisions, open tasks)."""
    box, config = _prepare(contacts)
    try:
        sync = PlainSync(box.base_url, box.token, config.parent / "plain.db", now)
        cpu = time.process_time()
        sync.run()
        cpu = time.process_time() - cpu
        calls = box.admin("GET", "calls")["total"]
    finally:
        box.close()
    decided = _decisions(sync.db, "contacts", "tasks")
    sync.db.close()
    return cpu, calls, decided


def _decisions(db: sqlite3.Connection, contacts: str, tasks: str) -> dict[str, Any]:
    """Status, miss type and score by contact id, and ``_tasks``: the open tasks' count."""
    decided: dict[str, Any] = {r: (s, m, sc) for r, s, m, sc in db.execute(
        f"SELECT record_id, status, miss_type, score FROM {contacts}")}  # noqa: S608
    decided["_tasks"] = db.execute(
        f"SELECT count(*) FROM {tasks} WHERE state = 'open'").fetchone()[0]  # noqa: S608
    return decided


def run_clock() -> datetime:
    """One clock for both runs of a pair, to the millisecond as crmsync keeps it: rules with
    time windows (active in the last 14 days) must see the same instant in both."""
    now = datetime.now(UTC)  # noqa: TID251 - a benchmark, not crmsync's code
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


#: One program's first run: (client CPU s, calls, results by name: decisions, CRM state...).
Measured = tuple[float, int, dict[str, Mapping[str, Any]]]


def compare(description: str, crmsync: Callable[[int, datetime, int], Measured],
            plain: Callable[[int, datetime], Measured]) -> None:
    """A comparator's command line: ``--pairs`` crmsync/plain pairs on fresh sandboxes with one
    clock each, every named result checked equal before the pair's CPU is printed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=2,
                        help="crmsync/plain pairs, alternating (the machine is shared)")
    parser.add_argument("--concurrency", type=int, default=4, help="crmsync's [sync] concurrency")
    parser.add_argument("--target", type=float, default=None, metavar="RATIO",
                        help="exit 1 when the median crmsync ÷ plain ratio is above RATIO (the "
                             "client-CPU target, stated against the plain program)")
    args = parser.parse_args()
    n = args.contacts
    ratios = []
    print(f"{'pair':<6}{'program':<10}{'calls':>7}{'cpu µs/contact':>16}{'x plain':>9}")
    for pair in range(1, args.pairs + 1):
        now = run_clock()
        mine_cpu, mine_calls, mine = crmsync(n, now, args.concurrency)
        plain_cpu, plain_calls, theirs = plain(n, now)
        for what, results in mine.items():
            differ = differences(results, theirs[what])
            if differ:
                sample = dict(sorted(differ.items())[:5])
                raise SystemExit(f"the two runs {what} {len(differ)} contacts or tasks "
                                 f"differently (or made different task counts): {sample}")
        print(f"{pair:<6}{'crmsync':<10}{mine_calls:>7}{mine_cpu / n * 1e6:>16.1f}"
              f"{mine_cpu / plain_cpu:>9.2f}")
        print(f"{pair:<6}{'plain':<10}{plain_calls:>7}{plain_cpu / n * 1e6:>16.1f}"
              f"{1.0:>9.2f}", flush=True)
        ratios.append(mine_cpu / plain_cpu)
    median = statistics.median(ratios)
    verdict = "" if args.target is None else (
        f" (target ≤ {args.target:.2f}: {'met' if median <= args.target else 'NOT met'})")
    print(f"median crmsync ÷ plain: {median:.2f}{verdict}")
    if args.target is not None and median > args.target:
        raise SystemExit(1)


def differences(mine: Mapping[str, Any], plain: Mapping[str, Any]) -> dict[str, Any]:
    """Keys whose values differ between two runs' results: (crmsync's, plain's)."""
    return {k: (mine.get(k), plain.get(k)) for k in mine.keys() | plain.keys()
            if mine.get(k) != plain.get(k)}


def main() -> None:
    """Measure ``--pairs`` crmsync/plain pairs and print calls, CPU µs/contact and ratio."""
    compare(__doc__.splitlines()[0],
            lambda n, now, concurrency: _named(measure_crmsync(n, now, concurrency)),
            lambda n, now: _named(measure_plain(n, now)))


def _named(measured: tuple[float, int, dict[str, Any]]) -> Measured:
    cpu, calls, decided = measured
    return cpu, calls, {"decided": decided}


if __name__ == "__main__":
    main()
