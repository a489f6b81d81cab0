"""The honest comparator for a Salesforce sync's client CPU: a first full sync written plainly.

Run on demand (not a test):

    python benchmarks/plain_sync_salesforce.py [--contacts 10000] [--pairs 2] [--concurrency 4]

What ``plain_sync.py`` is for HubSpot, this is for Salesforce: crmsync's first full run
(``SyncOptions(full=True)``) and the plainest fast program that does the same job, one after
the other on fresh sandboxes of the same seed with the same clock, and their client CPU per
contact side by side with the ratio, a figure that does not depend on the machine.

The plain program is what a performance-minded engineer would write for this one job, with no
framework and no extension points. It makes the same calls as crmsync's Salesforce connector
(``connectors/salesforce.json``: Lead, then Contact) and keeps the same guarantees:

* **check**: one describe each of Lead, Contact, Task and Opportunity, refusing to run when a
  field it reads or writes is missing (crmsync's ``check``, the same four calls);
* **reads**, per object: one SOQL query with the same fields (every mapped fact, the modified
  and owner fields and the eight outputs; Contacts' firmographics as ``Account.*`` parent
  fields; ``IsConverted = false`` for Leads) ordered by ``SystemModstamp, Id``, paged by
  ``queryMore`` at 2,000 (``Sforce-Query-Options: batchSize=2000``). Before the Contacts, one
  paged Opportunity query (``ContactId != null``, ordered by contact) rolled up into each
  contact's deal facts as rows arrive (Closed Won / Closed Lost; the latest deal by close date
  gives the stage, the latest lost one the loss reason and competitor). When the first page's
  ``totalSize`` says a Bulk API 2.0 query job costs fewer calls than the pages still to come
  (about 14,000 records and up), the rest of the object is read as crmsync does: one query job
  (create, poll, CSV results of 10,000), skipping the records the first page already had;
* **rules**: ``rules/default.json`` by hand (``rules_ceiling.make_handwritten``), on facts
  coerced by hand from Salesforce's typed JSON (or a query job's CSV text): only the facts
  those rules read;
* **writes**: the changed outputs of each contact, spelled as crmsync sends them (numbers as
  numbers, instants as ``...T...000Z``), queued per object as crmsync queues them: once 10,000
  are pending they go as one Bulk API 2.0 ingest job (create, CSV upload, close, a poll while
  not done, then ``failedResults`` / ``unprocessedrecords`` / ``successfulResults`` only when
  the job's counters call for them); what is left at the object's end goes as one more job
  when it is 2,000 or more (``[sync] bulk_threshold``), through sObject Collections otherwise,
  200 a call. Follow-up tasks are upserted by their key
  (``PATCH composite/sobjects/Task/Crmsync_Task_Key__c``), 200 a call, full batches as they
  fill and the rest at the object's end: an upsert by key cannot duplicate, so no lookup;
* **journal** (``sqlite3``, WAL, ``synchronous=NORMAL``, ``plain_sync``'s schema): before a
  page's writes are sent, its field writes (before and after values as JSON, orjson as
  crmsync) and task intents are inserted and committed; each job or batch's outcome is
  settled and the decisions it wrote saved in one transaction; a page's cursor (its last
  ``SystemModstamp``) is committed only once every write planned from it and the pages before
  it settled (queued updates and tasks may wait several pages); an object read through a query
  job moves its cursor, to the run's clock, only at its end, as crmsync's does. Before
  planning, a page reads the stored decisions and open tasks of its contacts, and skips a
  contact already decided under these rules in this very state (on a fresh store, as in
  crmsync's full run, only one met twice in the run).

Left out, because a first run on a healthy sandbox exercises none of it or it costs nothing per
contact: pacing by ``Sforce-Limit-Info``, retries (of calls, of row-locked records, after an
expired session) and rejections, the run ledger and lease, progress, the summary's counts,
closing obsolete tasks and task generations, crmsync's final cursor floor (the run's clock less
the overlap), splitting an ingest CSV above 90 MB and the one-hour polling budget. HTTP goes
through a bare ``urllib3`` pool and the standard ``json`` (crmsync must use simple-salesforce
over ``requests``). It runs on one thread, which costs the least CPU; crmsync runs at
``[sync] concurrency`` 4 (writes in flight on threads, one page read ahead).

Calls: the same as crmsync's, endpoint by endpoint, at 600, 10,000 and 30,000 contacts (29 at
10,000: 4 describes, 3 queries and 5 ``queryMore``, 2 ingest jobs of 3 calls, 11 task upserts;
62 at 30,000, whose Leads are read through a query job). crmsync's
queues are run-wide and drained at each object's end, so the two batch alike; nothing is pooled
differently, and the request bodies (Collections records, task upserts, CSV lines) are the
same byte for byte.

Before any figure is printed, the two runs' decisions (status, miss type, score of every
contact) and task counts are compared, and so is what each left in the CRM (the eight outputs
of every Lead and Contact, the fields of every task, by key): a comparator that decides or
writes differently is not one.
"""

from __future__ import annotations

import csv
import io
import json
import math
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlencode

import urllib3

sys.path.insert(0, str(Path(__file__).resolve().parent))

from plain_sync import (  # noqa: E402
    RULES,
    SCHEMA,
    Measured,
    _decisions,
    _iso,
    compare,
    first_full_run,
    journal_page,
    settle_tasks,
)
from rules_ceiling import make_handwritten  # noqa: E402
from sync_bench import Sandbox, set_up  # noqa: E402

from crmsync.plan import task_key  # noqa: E402
from crmsync.rules import load_ruleset  # noqa: E402

API = "/services/data/v59.0"
OBJECTS = ("Lead", "Contact")
#: Output -> Salesforce field, in the order crmsync plans them.
OUTPUTS = {"status": "Crmsync_Status__c", "miss_type": "Crmsync_Miss_Type__c",
           "score": "Crmsync_Score__c", "reason": "Crmsync_Reason__c",
           "ruleset": "Crmsync_Ruleset__c", "icp_tier": "Crmsync_Icp_Tier__c",
           "evaluated_at": "Crmsync_Evaluated_At__c", "status_since": "Crmsync_Status_Since__c"}
_ENGAGEMENT = [
    "CreatedDate", "LastActivityDate", "Last_Contacted_At__c", "Form_Submissions__c",
    "Webinars_Attended__c", "Content_Downloads__c", "Page_Views__c", "Pricing_Page_Views__c",
    "Chat_Conversations__c", "Trial_Signup__c", "Demo_Requested__c", "Case_Study_Requested__c",
    "Inbound_From_Decision_Maker__c", "Budget_Confirmed__c", "Decision_Maker__c", "Not_A_Fit__c"]
_OUTPUT_FIELDS = [
    "Crmsync_Status__c", "Crmsync_Miss_Type__c", "Crmsync_Score__c", "Crmsync_Reason__c",
    "Crmsync_Ruleset__c", "Crmsync_Evaluated_At__c", "Crmsync_Status_Since__c",
    "Crmsync_Icp_Tier__c"]
#: What crmsync's Salesforce field map requests of each object, in its order.
FIELDS = {
    "Lead": ["Id", "Email", "FirstName", "LastName", "Title", "OwnerId", "LeadSource", "Company",
             "Country", "Industry", "NumberOfEmployees", "AnnualRevenue", *_ENGAGEMENT, "Status",
             "Crmsync_Status_Override__c", "SystemModstamp", *_OUTPUT_FIELDS],
    "Contact": ["Id", "Email", "FirstName", "LastName", "Title", "OwnerId", "LeadSource",
                "Account.Name", "MailingCountry", "Account.Industry",
                "Account.NumberOfEmployees", "Account.AnnualRevenue", *_ENGAGEMENT,
                "Crmsync_Status_Override__c", "SystemModstamp", *_OUTPUT_FIELDS],
}
WHERE = {"Lead": " WHERE IsConverted = false", "Contact": ""}
DEAL_FIELDS = ["Id", "StageName", "Amount", "CloseDate", "Loss_Reason__c", "Competitor__c",
               "ContactId", "SystemModstamp"]
DEAL_QUERY = (f"SELECT {', '.join(DEAL_FIELDS)} FROM Opportunity WHERE ContactId != null "
              "ORDER BY ContactId ASC, Id ASC")
WON, LOST = "Closed Won", "Closed Lost"
KEY_FIELD = "Crmsync_Task_Key__c"
TASK_FIELDS = ["WhoId", "Subject", "Description", "ActivityDate", "Status", "Priority",
               KEY_FIELD, "OwnerId"]
PRIORITY = {"high": "High", "normal": "Normal", "low": "Low"}
PAGE, BATCH, BULK_THRESHOLD, BULK_PAGE = 2000, 200, 2000, 10_000
#: Updates an ingest job carries while an object is still being read (crmsync's
#: ``BULK_JOB_RECORDS``: Salesforce makes a batch of every 10,000 records of a job).
BULK_JOB = 10_000
REASON_MAX = 255
NULL_CELL = "#N/A"
_DONE = frozenset({"JobComplete", "Failed", "Aborted"})
_BOOLS = {"true": True, "false": False}
_NO_DEALS = {"open_deals": 0, "won_deals": 0, "lost_deals": 0, "deal_stage": None,
             "closed_lost_reason": None, "competitor": None}
#: The plain program's journal, contacts, tasks and cursors: plain_sync's, with this CRM's
#: streams (Salesforce ids carry their object's prefix, so a record id alone is a key).
PLAIN_SCHEMA = SCHEMA.rsplit("INSERT INTO cursors", 1)[0] + (
    "INSERT INTO cursors VALUES ('salesforce:Lead', NULL), ('salesforce:Contact', NULL);")


# -- coercion of Salesforce's typed values (JSON), or a query job's CSV text, by hand ----------

def _text(value: str | None) -> str | None:
    return None if value is None else value.strip() or None


def _int(value: Any) -> int | None:
    kind = value.__class__
    if kind is int:
        return value
    if kind is float:
        return int(value) if math.isfinite(value) else None
    if kind is str:
        text = value.strip()
        if text.isdigit():
            return int(text)
        try:
            number = float(text.replace(",", ""))
        except ValueError:
            return None
        return int(number) if math.isfinite(number) else None
    return None  # null, and booleans


def _bool(value: Any) -> bool | None:
    if value is True or value is False:
        return value
    if value.__class__ is str:
        return _BOOLS.get(value.strip().lower())
    return None


def _day(value: str | None) -> datetime | None:
    """A date (``2026-11-23``, midnight UTC) or datetime (``...+0000``, ``...Z``) value."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _rollup(deals: list[dict[str, Any]]) -> dict[str, Any]:
    """The deal facts the rules read, from one contact's Opportunities."""
    open_deals = won = lost = 0
    latest = last_lost = None
    latest_at = lost_at = None
    for deal in deals:
        stage = _text(deal["StageName"])
        closed = _day(deal["CloseDate"])
        if stage == WON:
            won += 1
        elif stage == LOST:
            lost += 1
            if last_lost is None or (closed is not None and (lost_at is None or closed > lost_at)):
                last_lost, lost_at = deal, closed
        else:
            open_deals += 1
        if latest is None or (closed is not None and (latest_at is None or closed > latest_at)):
            latest, latest_at = deal, closed
    assert latest is not None
    return {"open_deals": open_deals, "won_deals": won, "lost_deals": lost,
            "deal_stage": _text(latest["StageName"]),
            "closed_lost_reason": _text(last_lost["Loss_Reason__c"]) if last_lost else None,
            "competitor": _text(last_lost["Competitor__c"]) if last_lost else None}


def _facts(r: Mapping[str, Any], company: str | None, country: str | None,
           industry: str | None, employees: int | None, lead_status: str | None
           ) -> dict[str, Any]:
    email = r["Email"]
    domain = None
    if email is not None:
        email = email.strip().lower()
        if "@" in email:
            domain = email.rpartition("@")[2].strip() or None
    return {
        "id": r["Id"], "email_domain": domain, "first_name": _text(r["FirstName"]),
        "title": _text(r["Title"]), "company": company,
        "country": country.strip().upper() or None if country is not None else None,
        "industry": industry, "employees": employees,
        "last_activity_at": _day(r["LastActivityDate"]),
        "form_submissions": _int(r["Form_Submissions__c"]),
        "webinars_attended": _int(r["Webinars_Attended__c"]),
        "content_downloads": _int(r["Content_Downloads__c"]),
        "page_views": _int(r["Page_Views__c"]),
        "pricing_page_views": _int(r["Pricing_Page_Views__c"]),
        "chat_conversations": _int(r["Chat_Conversations__c"]),
        "trial_signup": _bool(r["Trial_Signup__c"]),
        "demo_requested": _bool(r["Demo_Requested__c"]),
        "case_study_requested": _bool(r["Case_Study_Requested__c"]),
        "inbound_from_decision_maker": _bool(r["Inbound_From_Decision_Maker__c"]),
        "budget_confirmed": _bool(r["Budget_Confirmed__c"]),
        "decision_maker": _bool(r["Decision_Maker__c"]),
        "not_a_fit": _bool(r["Not_A_Fit__c"]),
        "lead_status": lead_status,
        "status_override": _text(r["Crmsync_Status_Override__c"]),
        "previous_status": _text(r["Crmsync_Status__c"]),
        **_NO_DEALS,
    }


def lead_facts(r: Mapping[str, Any]) -> dict[str, Any]:
    """A Lead's facts: its own company fields and lead status."""
    return _facts(r, _text(r["Company"]), r["Country"], _text(r["Industry"]),
                  _int(r["NumberOfEmployees"]), _text(r["Status"]))


def contact_facts(r: Mapping[str, Any]) -> dict[str, Any]:
    """A Contact's facts: company, industry and size from its Account, no lead status."""
    account = r["Account"]
    if account is None:
        return _facts(r, None, r["MailingCountry"], None, None, None)
    return _facts(r, _text(account["Name"]), r["MailingCountry"], _text(account["Industry"]),
                  _int(account["NumberOfEmployees"]), None)


def _differs(stored: Any, wanted: Any) -> bool:
    """Whether a stored output differs from the decided one (score: ``35.0``/``"35"`` is 35)."""
    if stored is None:
        return wanted is not None and wanted != ""
    return stored != wanted and (wanted.__class__ is not int or _int(stored) != wanted)


def _cell(value: Any) -> str:
    """A Bulk 2.0 CSV cell as crmsync spells it (null clears the field)."""
    if value is None or value == "":
        return NULL_CELL
    if value is True or value is False:
        return "true" if value else "false"
    return str(value)


def _csv_records(text: str) -> list[dict[str, Any]]:
    """A query job's CSV as REST-shaped records (``Account.Name`` under ``Account``)."""
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if not header:
        return []
    dotted = [(name, *name.split(".", 1)) for name in header if "." in name]
    records = []
    for row in rows:
        if not row:
            continue
        record: dict[str, Any] = {name: cell or None for name, cell in zip(header, row,
                                                                            strict=False)}
        for name, parent, leaf in dotted:
            record.setdefault(parent, {})[leaf] = record.pop(name, None)
        records.append(record)
    return records


def _bulk_read_pays(total: int, served: int) -> bool:
    """crmsync's choice after the first REST page: a query job (create, 3 polls assumed, one
    results call per 10,000) against the REST pages still to come."""
    rest = math.ceil(max(0, total - served) / max(1, served))
    return 1 + 3 + math.ceil(total / BULK_PAGE) < rest


class PlainSalesforceSync:
    """A first full Salesforce sync of Leads and Contacts, written plainly (module docstring)."""

    def __init__(self, base_url: str, token: str, db: Path, now: datetime,
                 bulk_threshold: int = BULK_THRESHOLD) -> None:
        self.host = base_url.rstrip("/")
        self.api = self.host + API
        self.http = urllib3.PoolManager(maxsize=1)
        auth = f"Bearer {token}"
        self.json_headers = {"Authorization": auth, "Content-Type": "application/json",
                             "Accept": "application/json"}
        self.query_headers = {**self.json_headers,
                              "Sforce-Query-Options": f"batchSize={PAGE}"}
        self.csv_headers = {"Authorization": auth, "Content-Type": "text/csv; charset=UTF-8",
                            "Accept": "application/json"}
        self.csv_accept = {"Authorization": auth, "Accept": "text/csv; charset=UTF-8"}
        ruleset = load_ruleset(RULES)
        self.version = ruleset.version
        self.decide = make_handwritten(now, ruleset.version, ruleset.content_hash)
        self.stamp = _iso(now)
        self.run_id = f"plain-{int(now.timestamp())}"
        self.db = sqlite3.connect(db, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(PLAIN_SCHEMA)
        self.bulk_threshold = bulk_threshold
        self.calls = 0
        self.tasks_created = 0
        #: Field updates waiting to be sent: (journal id, record id, after, decision row).
        self.updates: list[tuple[int, str, dict[str, Any], tuple[Any, ...]]] = []
        #: Task upserts waiting to be sent: (journal id, record id, key, Task record).
        self.tasks: list[tuple[int, str, str, dict[str, Any]]] = []
        #: Pages read but not yet safe to move the cursor past: (the page's last journal id,
        #: 0 for none; its cursor value, None for a query job's page), oldest first.
        self.held: list[tuple[int, str | None]] = []

    # -- HTTP --------------------------------------------------------------------------------

    def call(self, method: str, url: str, body: Any = None,
             headers: Mapping[str, str] | None = None) -> urllib3.BaseHTTPResponse:
        """One HTTP call (``body``: bytes as is, anything else as JSON); raise unless 2xx."""
        self.calls += 1
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body)
        response = self.http.request(method, url, body=body,
                                     headers=headers or self.json_headers)
        if response.status >= 300:
            raise RuntimeError(f"{method} {url[:120]}: HTTP {response.status} "
                               f"{response.data[:200]!r}")
        return response

    def rest(self, method: str, path: str, body: Any = None) -> Any:
        """A JSON call under ``/services/data/v59.0``."""
        return json.loads(self.call(method, self.api + path, body).data)

    def query_pages(self, soql: str) -> Iterator[dict[str, Any]]:
        """Every page of a SOQL query (first page, then ``nextRecordsUrl``), 2,000 a page."""
        page = json.loads(self.call("GET", f"{self.api}/query/?q={quote_plus(soql)}",
                                    headers=self.query_headers).data)
        while True:
            yield page
            if page["done"] or not page.get("nextRecordsUrl"):
                return
            page = json.loads(self.call("GET", self.host + page["nextRecordsUrl"],
                                        headers=self.query_headers).data)

    def wait(self, kind: str, info: dict[str, Any]) -> dict[str, Any]:
        """Poll a Bulk 2.0 job until it is done (0.5 s, doubling to 10 s), as crmsync does."""
        pause = 0.5
        while info.get("state") not in _DONE:
            time.sleep(pause)
            pause = min(10.0, pause * 2)
            info = self.rest("GET", f"/jobs/{kind}/{info['id']}")
        if info["state"] != "JobComplete":
            raise RuntimeError(f"bulk {kind} job {info['id']}: {info['state']}")
        return info

    # -- the run -----------------------------------------------------------------------------

    def run(self) -> None:
        """Check the org, then sync Leads, then Contacts."""
        self.check()
        for obj in OBJECTS:
            self.sync_object(obj)

    def check(self) -> None:
        """Describe the four objects; refuse to run when a field used here is missing."""
        wanted = {"Lead": FIELDS["Lead"], "Contact": FIELDS["Contact"], "Task": TASK_FIELDS,
                  "Opportunity": DEAL_FIELDS}
        missing = []
        for obj, fields in wanted.items():
            present = {f["name"].lower() for f in self.rest("GET", f"/sobjects/{obj}/describe")
                       ["fields"]}
            missing += [f"{obj}.{f}" for f in fields if "." not in f and f.lower() not in present]
        if missing:
            raise RuntimeError(f"fields missing in the org: {', '.join(missing)}")

    def read_deals(self) -> dict[str, dict[str, Any]]:
        """Every contact's deal facts: one Opportunity query, rows grouped by contact."""
        out: dict[str, dict[str, Any]] = {}
        current, group = None, []
        for page in self.query_pages(DEAL_QUERY):
            for row in page["records"]:
                contact_id = row["ContactId"]
                if contact_id != current:
                    if current is not None:
                        out[current] = _rollup(group)
                    current, group = contact_id, []
                group.append(row)
        if current is not None:
            out[current] = _rollup(group)
        return out

    def sync_object(self, obj: str) -> None:
        """Read, decide and write every record of ``obj``; then flush and move its cursor."""
        stream = f"salesforce:{obj}"
        facts_of = lead_facts if obj == "Lead" else contact_facts
        deals = self.read_deals() if obj == "Contact" else {}
        soql = f"SELECT {', '.join(FIELDS[obj])} FROM {obj}{WHERE[obj]}"
        pages = self.query_pages(soql + " ORDER BY SystemModstamp ASC, Id ASC")
        first = next(pages)
        records = first["records"]
        ordered = first["done"] or not _bulk_read_pays(first["totalSize"], len(records))
        if ordered:
            for page in chain([first], pages):
                if page["records"]:
                    self.process_page(obj, stream, page["records"], facts_of, deals, ordered)
        else:
            pages.close()
            seen = {r["Id"] for r in records}
            if records:
                self.process_page(obj, stream, records, facts_of, deals, ordered)
            for page in self.bulk_query(soql):
                fresh = [r for r in page if r["Id"] not in seen]
                if fresh:
                    self.process_page(obj, stream, fresh, facts_of, deals, ordered)
        self.flush(obj, stream)
        if not ordered:
            self.db.execute("UPDATE cursors SET value = ? WHERE stream = ?", (self.stamp, stream))

    def bulk_query(self, soql: str) -> Iterator[list[dict[str, Any]]]:
        """A full read through one Bulk 2.0 query job: create, poll, CSV results of 10,000."""
        info = self.wait("query", self.rest("POST", "/jobs/query", {
            "operation": "query", "query": soql, "columnDelimiter": "COMMA",
            "lineEnding": "LF"}))
        locator = ""
        while True:
            params = {"maxRecords": BULK_PAGE, **({"locator": locator} if locator else {})}
            response = self.call("GET", f"{self.api}/jobs/query/{info['id']}/results?"
                                 f"{urlencode(params)}", headers=self.csv_accept)
            records = _csv_records(response.data.decode("utf-8-sig"))
            if records:
                yield records
            locator = response.headers.get("Sforce-Locator") or ""
            if not locator or locator == "null":
                return

    def process_page(self, obj: str, stream: str, page: list[dict[str, Any]],
                     facts_of: Callable[[Mapping[str, Any]], dict[str, Any]],
                     deals: dict[str, dict[str, Any]], ordered: bool) -> None:
        """Decide a page, journal its writes, queue them and send what is due."""
        db = self.db
        ids = [r["Id"] for r in page]
        marks = ",".join("?" * len(ids))
        decided = {row[0]: (row[1], row[2]) for row in db.execute(
            f"SELECT record_id, ruleset, modified_at FROM contacts WHERE record_id IN ({marks})",
            ids)}
        open_purposes: dict[str, set[str]] = {}
        for record_id, purpose in db.execute(
                f"SELECT record_id, purpose FROM tasks WHERE record_id IN ({marks}) "
                "AND state IN ('intent', 'open')", ids):
            open_purposes.setdefault(record_id, set()).add(purpose)
        version, stamp, decide = self.version, self.stamp, self.decide
        writes, creates, states = [], [], []
        for r in page:
            cid, modified = r["Id"], r["SystemModstamp"]
            if decided.get(cid) == (version, modified):
                continue  # decided in this very state already (pages may overlap)
            facts = facts_of(r)
            rollup = deals.get(cid)
            if rollup is not None:
                facts.update(rollup)
            decision = decide(facts)
            reason = decision.reason
            tier = decision.extra.get("icp_tier") if decision.extra else None
            after: dict[str, Any] = {}
            for output, value in (("status", decision.status),
                                  ("miss_type", decision.miss_type),
                                  ("score", decision.score),
                                  ("reason", reason if len(reason) <= REASON_MAX
                                   else reason[:REASON_MAX]),
                                  ("ruleset", version), ("icp_tier", tier)):
                if _differs(r[OUTPUTS[output]], value):
                    after[output] = value
            if len(after) == 1 and "ruleset" in after:
                after = {}  # only the stamp differs: the CRM already shows this decision
            if after:
                after["evaluated_at"] = stamp
            since = r["Crmsync_Status_Since__c"]
            if "status" in after or (since is None and decision.status):
                after["status_since"] = since = stamp
                after.setdefault("evaluated_at", stamp)
            source = r["LeadSource"]
            state = (cid, decision.status, decision.miss_type, float(decision.score), since,
                     version, modified, r["OwnerId"],
                     None if source is None else source[:120])
            if after:
                writes.append((cid, {o: r[OUTPUTS[o]] for o in after}, after, state))
            else:
                states.append(state)
            if decision.tasks:
                owner = r["OwnerId"]
                for spec in decision.tasks:
                    if spec.purpose in open_purposes.get(cid, ()):
                        continue
                    key = task_key(cid, spec.purpose)
                    task = {"attributes": {"type": "Task"}, "WhoId": cid,
                            "Subject": spec.subject[:255], "Description": spec.body[:32_000],
                            "ActivityDate": spec.due.isoformat(), "Status": "Not Started",
                            "Priority": PRIORITY.get(spec.priority, spec.priority),
                            KEY_FIELD: key}
                    if owner:
                        task["OwnerId"] = owner
                    creates.append((cid, spec.purpose, key, task))
        first = journal_page(db, self.run_id, stamp, writes, creates, states)
        first_task = first + len(writes)
        self.updates.extend((first + n, cid, after, state)
                            for n, (cid, _, after, state) in enumerate(writes))
        if len(self.updates) >= max(self.bulk_threshold, BULK_JOB):
            self.send_bulk(obj, self.updates[:])
            self.updates.clear()
        self.tasks.extend((first_task + n, cid, key, task)
                          for n, (cid, _, key, task) in enumerate(creates))
        while len(self.tasks) >= BATCH:
            batch = self.tasks[:BATCH]
            del self.tasks[:BATCH]
            self.send_tasks(batch)
        last = first_task + len(creates) - 1
        self.held.append((last if last >= first else 0, page[-1]["SystemModstamp"] if ordered
                          else None))
        self.release(stream)

    def flush(self, obj: str, stream: str) -> None:
        """At an object's end: the pending updates (one job from 2,000, else Collections of
        200) and tasks; then the cursor of the last page."""
        updates = self.updates
        if len(updates) >= self.bulk_threshold:
            self.send_bulk(obj, updates[:])
        else:
            for start in range(0, len(updates), BATCH):
                self.send_updates(obj, updates[start:start + BATCH])
        updates.clear()
        for start in range(0, len(self.tasks), BATCH):
            self.send_tasks(self.tasks[start:start + BATCH])
        self.tasks.clear()
        self.release(stream)

    def release(self, stream: str) -> None:
        """Commit the cursor of the newest page whose writes, and every earlier page's, settled."""
        waiting = [queue[0][0] for queue in (self.updates, self.tasks) if queue]
        oldest = min(waiting) if waiting else None
        held, value = self.held, None
        while held and (oldest is None or held[0][0] < oldest):
            value = held.pop(0)[1] or value
        if value is not None:
            self.db.execute("UPDATE cursors SET value = ? WHERE stream = ?", (value, stream))

    # -- writing -----------------------------------------------------------------------------

    def send_updates(self, obj: str, batch: list[Any]) -> None:
        """One sObject Collections update of up to 200 records; results in input order."""
        results = self.rest("PATCH", "/composite/sobjects", {"allOrNone": False, "records": [
            {"attributes": {"type": obj}, "id": cid,
             **{OUTPUTS[o]: v for o, v in after.items()}} for _, cid, after, _ in batch]})
        self.settle_updates(batch, [bool(r.get("success")) for r in results])

    def send_bulk(self, obj: str, batch: list[Any]) -> None:
        """One Bulk 2.0 ingest job: create, upload the CSV, close, wait; failures if any."""
        fields = sorted({OUTPUTS[o] for _, _, after, _ in batch for o in after})
        names = {f: o for o, f in OUTPUTS.items()}
        columns = [names[f] for f in fields]
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["Id", *fields])
        writer.writerows([cid, *(_cell(after[o]) if o in after else "" for o in columns)]
                         for _, cid, after, _ in batch)
        job = self.rest("POST", "/jobs/ingest", {
            "object": obj, "operation": "update", "contentType": "CSV",
            "columnDelimiter": "COMMA", "lineEnding": "LF"})
        if job.get("state") != "Open":
            raise RuntimeError(f"bulk ingest {obj}: no open job")
        job_url = f"{self.api}/jobs/ingest/{job['id']}"
        if self.call("PUT", job_url + "/batches", buffer.getvalue().encode(),
                     headers=self.csv_headers).status != 201:
            raise RuntimeError(f"bulk upload {obj}: not 201")
        info = self.wait("ingest", self.rest("PATCH", f"/jobs/ingest/{job['id']}",
                                             {"state": "UploadComplete"}))
        processed = int(info.get("numberRecordsProcessed") or 0)
        failed_count = int(info.get("numberRecordsFailed") or 0)
        bad: set[str] = set()
        if failed_count:
            bad.update(row.get("Id") or row.get("sf__Id") or ""
                       for row in self.ingest_results(job_url, "failedResults"))
        if processed < len(batch):
            bad.update(row.get("Id") or "" for row in self.ingest_results(
                job_url, "unprocessedrecords"))
        good = None
        if sum(1 for _, cid, _, _ in batch if cid not in bad) != processed - failed_count:
            # The counters and the lists disagree: ask for the successes themselves.
            good = {row.get("Id") or row.get("sf__Id") or ""
                    for row in self.ingest_results(job_url, "successfulResults")}
        self.settle_updates(batch, [cid not in bad and (good is None or cid in good)
                                    for _, cid, _, _ in batch])

    def ingest_results(self, job_url: str, kind: str) -> list[dict[str, str]]:
        """A job's ``failedResults`` / ``unprocessedrecords`` / ``successfulResults`` CSV."""
        response = self.call("GET", f"{job_url}/{kind}/", headers=self.csv_accept)
        return list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))

    def settle_updates(self, batch: list[Any], ok: list[bool]) -> None:
        """A job or batch's outcome and the decisions it wrote, in one transaction."""
        db, stamp = self.db, self.stamp
        db.execute("BEGIN")
        db.executemany("UPDATE journal SET state = ?, updated_at = ? WHERE id = ?",
                       [("applied" if done else "rejected", stamp, jid)
                        for (jid, _, _, _), done in zip(batch, ok, strict=True)])
        db.executemany("INSERT OR REPLACE INTO contacts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       [state for (_, _, _, state), done in zip(batch, ok, strict=True)
                        if done])
        db.execute("COMMIT")

    def send_tasks(self, batch: list[tuple[int, str, str, dict[str, Any]]]) -> None:
        """Upsert up to 200 tasks by key; settle their intents in one transaction."""
        results = self.rest("PATCH", f"/composite/sobjects/Task/{KEY_FIELD}", {
            "allOrNone": False, "records": [task for _, _, _, task in batch]})
        made = {key: r["id"] for (_, _, key, _), r in zip(batch, results, strict=True)
                if r.get("success")}
        self.tasks_created += len(made)
        settle_tasks(self.db, self.stamp, batch, made)


# -- measuring ----------------------------------------------------------------------------------

def _prepare(contacts: int, page_size: int | None = None) -> tuple[Sandbox, Path]:
    """A seeded Salesforce sandbox with crmsync's fields, 20 ms latency; query pages forced
    down to ``page_size`` records if given."""
    box = Sandbox("salesforce", contacts)
    config, _limits = set_up(box, "salesforce", latency_ms=20)
    if page_size is not None:
        box.admin("POST", "config", {"page_size": page_size})
    return box, config


def crm_state(box: Sandbox) -> dict[str, Any]:
    """What a run left in the CRM: every Lead's and Contact's outputs (by id) and every crmsync
    task's fields (by key), read through the sandbox's admin API (not counted as calls)."""
    state: dict[str, Any] = {}
    for obj in OBJECTS:
        for r in box.admin("GET", f"records/{obj}")["records"]:
            state[r["Id"]] = tuple(r.get(f) for f in _OUTPUT_FIELDS)
    for t in box.admin("GET", "records/Task")["records"]:
        if t.get(KEY_FIELD):
            state[t[KEY_FIELD]] = tuple(t.get(f) for f in TASK_FIELDS)
    return state


def measure_crmsync(contacts: int, now: datetime, concurrency: int = 4, *,
                    bulk_threshold: int = BULK_THRESHOLD, page_size: int | None = None
                    ) -> tuple[float, int, dict[str, Any], dict[str, Any]]:
    """crmsync's first full run: (client CPU s, calls, decisions and open tasks, CRM state).

    ``bulk_threshold`` (``[sync] bulk_threshold``) and ``page_size`` (the sandbox's largest
    query page) let a small org take the Bulk API 2.0 paths; the defaults are crmsync's.
    """
    box, config = _prepare(contacts, page_size)
    try:
        cpu = first_full_run(config, now, concurrency=concurrency, bulk_threshold=bulk_threshold)
        calls = box.admin("GET", "calls")["total"]
        written = crm_state(box)
    finally:
        box.close()
    with closing(sqlite3.connect(config.parent / "state.db")) as db:
        # crmsync keys contacts by (stream, record id); Salesforce ids are unique across
        # objects (their prefix names the object), so the record id alone compares.
        rows, ids = db.execute("SELECT count(*), count(DISTINCT record_id) "
                               "FROM crmsync_contacts").fetchone()
        if rows != ids:
            raise SystemExit(f"crmsync stored {rows - ids} record ids under two streams")
        decided = _decisions(db, "crmsync_contacts", "crmsync_tasks")
    return cpu, calls, decided, written


def measure_plain(contacts: int, now: datetime, *, bulk_threshold: int = BULK_THRESHOLD,
                  page_size: int | None = None
                  ) -> tuple[float, int, dict[str, Any], dict[str, Any]]:
    """The plain program's first full run: (client CPU s, calls, decisions, CRM state)."""
    box, config = _prepare(contacts, page_size)
    try:
        sync = PlainSalesforceSync(box.base_url, box.token, config.parent / "plain.db", now,
                                   bulk_threshold)
        cpu = time.process_time()
        sync.run()
        cpu = time.process_time() - cpu
        calls = box.admin("GET", "calls")["total"]
        written = crm_state(box)
    finally:
        box.close()
    decided = _decisions(sync.db, "contacts", "tasks")
    sync.db.close()
    return cpu, calls, decided, written


def main() -> None:
    """Measure ``--pairs`` crmsync/plain pairs and print calls, CPU µs/contact and ratio."""
    def named(measured: tuple[float, int, dict[str, Any], dict[str, Any]]) -> Measured:
        cpu, calls, decided, wrote = measured
        return cpu, calls, {"decided": decided, "wrote": wrote}

    compare(__doc__.splitlines()[0],
            lambda n, now, concurrency: named(measure_crmsync(n, now, concurrency)),
            lambda n, now: named(measure_plain(n, now)))


if __name__ == "__main__":
    main()
