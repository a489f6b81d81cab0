"""Connectors called from several threads at once, and one pacer per CRM connection.

Nothing is mocked: threads drive the real SDKs over loopback HTTP against the sandbox emulators.
The HubSpot tests share a thread-safe fake clock between the emulator (its rate-limit windows)
and the pacer (its waits), so a 10-second window passes instantly.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest

from crmsync.connectors.base import RecordUpdate, WriteResult
from crmsync.connectors.hubspot import HubSpotConnector, hubspot_pacer
from crmsync.connectors.pacing import LocalPacer, Pacer
from crmsync.connectors.salesforce import SalesforceAuth, SalesforceConnector
from crmsync.errors import QuotaExhausted, TransientError
from crmsync.retry import RetryPolicy
from crmsync.sandbox.hubspot import HubSpotEmulator
from crmsync.sandbox.hubspot.ratelimit import RateLimits
from crmsync.sandbox.seed import generate_org
from crmsync.sandbox.server import SandboxServer

pytestmark = pytest.mark.filterwarnings(
    "ignore:The 'initial' parameter is deprecated:DeprecationWarning")

ANCHOR = datetime(2026, 11, 23, tzinfo=UTC)
HUBSPOT = "hubspot:contacts"
LEAD = "salesforce:Lead"


class ThreadClock:
    """A fake clock several threads share: ``sleep`` records the wait and moves time on."""

    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


def _in_threads(jobs: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run every job in its own thread, started together; return their results in order."""
    start = threading.Barrier(len(jobs))

    def run(job: Callable[[], Any]) -> Any:
        start.wait()
        return job()

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(run, jobs))


def _hubspot_records(server: SandboxServer) -> dict[str, dict[str, Any]]:
    with urllib.request.urlopen(server.base_url + "/_sandbox/records/contacts") as response:
        return {r["id"]: r for r in json.loads(response.read())["results"]}


def _hubspot_429s(server: SandboxServer, clock: ThreadClock) -> int:
    """How many calls the emulator's own limiter refused: calls it saw less calls it admitted.

    Admitted calls are read from its ``X-HubSpot-RateLimit-Daily*`` headers, on one probe made
    after the window has passed (the probe is admitted and counted on both sides).
    """
    seen = int(server.call_counts()["total"])
    clock.sleep(11)
    request = urllib.request.Request(server.base_url + "/crm/v3/objects/contacts?limit=1",
                                     headers={"Authorization": f"Bearer {server.token}"})
    with urllib.request.urlopen(request) as response:
        daily = int(response.headers["X-HubSpot-RateLimit-Daily"])
        left = int(response.headers["X-HubSpot-RateLimit-Daily-Remaining"])
    admitted = daily - left - 1
    return seen - admitted


@pytest.fixture
def hubspot_limited(
    hubspot_serve: Callable[[Any], SandboxServer], hubspot_fieldmap: Any,
) -> tuple[SandboxServer, ThreadClock]:
    """An account of 400 contacts whose limiter allows 10 calls per 10 s, crmsync set up."""
    clock = ThreadClock(ANCHOR)
    org = generate_org(400, 7, ANCHOR)
    server = hubspot_serve(HubSpotEmulator(org, clock=clock,
                                           rate_limits=RateLimits(per_10s=500)))
    setup = HubSpotConnector(hubspot_fieldmap, token=server.token, base_url=server.base_url,
                             sleep=clock.sleep, clock=clock)
    setup.setup()
    setup.close()
    # The emulator's own knobs, over HTTP: 10 calls per 10 s, counters zeroed.
    config = urllib.request.Request(
        server.base_url + "/_sandbox/config", method="POST",
        data=json.dumps({"rate_limits": {"per_10s": 10}, "reset_rate_limits": True}).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(config) as response:
        assert json.loads(response.read())["rate_limits"]["per_10s"] == 10
    server.reset()
    return server, clock


def _hubspot(server: SandboxServer, fieldmap: Any, clock: ThreadClock,
             pacer: Pacer | None = None) -> HubSpotConnector:
    return HubSpotConnector(fieldmap, token=server.token, base_url=server.base_url,
                            policy=RetryPolicy(attempts=6, budget_s=3600), sleep=clock.sleep,
                            clock=clock, pacer=pacer)


def _scores(ids: Sequence[str], offset: int) -> list[RecordUpdate]:
    return [RecordUpdate(i, "contacts", {"score": offset + n}) for n, i in enumerate(ids)]


def _batches(updates: Sequence[RecordUpdate], size: int) -> list[list[RecordUpdate]]:
    return [list(updates[i:i + size]) for i in range(0, len(updates), size)]


def test_hubspot_connector_is_safe_to_call_from_several_threads(
    hubspot_connector: HubSpotConnector, hubspot_server: SandboxServer,
) -> None:
    ids = sorted(_hubspot_records(hubspot_server), key=int)
    slices = [ids[n::4] for n in range(4)]  # four disjoint sets of 75 contacts
    writes = [lambda s=s, n=n: hubspot_connector.write_fields(_scores(s, 1000 * (n + 1)))
              for n, s in enumerate(slices)]
    reads = [lambda s=s: hubspot_connector.read_ids(HUBSPOT, s) for s in slices]
    results = _in_threads([*writes, *reads])
    written: list[list[WriteResult]] = results[:4]
    read = results[4:]
    for n, (part, answer) in enumerate(zip(slices, written, strict=True)):
        assert [r.record_id for r in answer] == part and all(r.ok for r in answer)
        assert sorted(c.id for c in read[n]) == sorted(part)
    stored = _hubspot_records(hubspot_server)
    for n, part in enumerate(slices):
        assert [stored[i]["properties"]["crmsync_score"] for i in part] == [
            str(1000 * (n + 1) + k) for k in range(len(part))]
    # One batch update per 75 records; per read: the contacts, their deal links, the deals.
    by_endpoint = hubspot_server.call_counts()["by_endpoint"]
    assert by_endpoint["POST /crm/v3/objects/contacts/batch/update"] == 4
    assert by_endpoint["POST /crm/v3/objects/contacts/batch/read"] == 4
    assert hubspot_connector.api_calls() == int(hubspot_server.call_counts()["total"]) == 4 + 12


def test_one_pacer_shared_by_two_connectors_keeps_the_portal_under_its_limit(
    hubspot_limited: tuple[SandboxServer, ThreadClock], hubspot_fieldmap: Any,
) -> None:
    server, clock = hubspot_limited
    ids = sorted(_hubspot_records(server), key=int)
    pacer = hubspot_pacer(clock=clock, sleep=clock.sleep)
    first, second = (_hubspot(server, hubspot_fieldmap, clock, pacer) for _ in range(2))
    # 40 batch updates of 10 records from two connectors (two threads) at 10 calls per 10 s.
    halves = [ids[:200], ids[200:]]
    jobs = [lambda c=c, h=h, n=n: [r for batch in _batches(_scores(h, 10_000 * (n + 1)), 10)
                                   for r in c.write_fields(batch)]
            for n, (c, h) in enumerate(zip((first, second), halves, strict=True))]
    started = clock()
    results = _in_threads(jobs)
    elapsed = clock() - started
    assert all(r.ok for part in results for r in part)
    assert first.api_calls() + second.api_calls() == int(server.call_counts()["total"]) == 40
    assert _hubspot_429s(server, clock) == 0
    assert pacer.backoffs == {}  # no 429 was ever answered
    # 40 calls at no more than 8 a window (2 of 10 kept for other apps): four windows waited.
    assert elapsed >= 40
    stored = _hubspot_records(server)
    assert stored[ids[0]]["properties"]["crmsync_score"] == "10000"
    assert stored[ids[399]]["properties"]["crmsync_score"] == str(20_000 + 199)
    first.close()
    second.close()


class NoPacing:
    """A pacer that lets every call go at once (the control: what the limiter does unpaced)."""

    def acquire(self, bucket: str) -> None:
        """Never wait."""

    def observe(self, bucket: str, **figures: Any) -> None:
        """Ignore the headers."""

    def backoff(self, bucket: str, seconds: float) -> None:
        """Ignore 429s (the retry policy still waits)."""


def test_the_same_load_unpaced_meets_the_emulators_limit(
    hubspot_limited: tuple[SandboxServer, ThreadClock], hubspot_fieldmap: Any,
) -> None:
    """The control for the test above: the load does exceed the limit, and 429s are seen."""
    server, clock = hubspot_limited
    ids = sorted(_hubspot_records(server), key=int)
    unpaced = [_hubspot(server, hubspot_fieldmap, clock, NoPacing()) for _ in range(2)]
    halves = [ids[:200], ids[200:]]
    jobs = [lambda c=c, h=h: [r for batch in _batches(_scores(h, 1), 10)
                              for r in c.write_fields(batch)]
            for c, h in zip(unpaced, halves, strict=True)]
    results = _in_threads(jobs)
    assert all(r.ok for part in results for r in part)  # retried through the 429s
    assert _hubspot_429s(server, clock) > 0
    for connector in unpaced:
        connector.close()


def test_local_pacer_stops_at_the_daily_reserve_for_every_caller() -> None:
    clock = ThreadClock(ANCHOR)
    pacer = LocalPacer(reserve_daily_percent=20, clock=clock, sleep=clock.sleep)
    pacer.observe("api", daily_remaining=23, daily_limit=100)
    for _ in range(3):
        pacer.acquire("api")  # 23, 22, 21 left: above the reserve of 20
    with pytest.raises(QuotaExhausted, match="80/100.*reserve of 20"):
        pacer.acquire("api")
    with pytest.raises(QuotaExhausted):
        pacer.acquire("other bucket")  # the daily allowance is the connection's, not a bucket's
    assert clock.sleeps == []


def test_local_pacer_backoff_holds_every_caller_of_the_bucket() -> None:
    clock = ThreadClock(ANCHOR)
    pacer = LocalPacer(clock=clock, sleep=clock.sleep)
    pacer.acquire("burst")
    pacer.backoff("burst", 7.0)
    pacer.acquire("search")  # another bucket is not held
    assert clock.sleeps == []
    _in_threads([lambda: pacer.acquire("burst")] * 3)
    assert clock.sleeps and clock() - ANCHOR.timestamp() >= 7.0
    assert pacer.admitted == {"burst": 4, "search": 1} and pacer.backoffs == {"burst": 1}


def test_local_pacer_admits_at_most_limit_less_reserve_per_window() -> None:
    clock = ThreadClock(ANCHOR)
    pacer = LocalPacer(window_reserve={"burst": 2}, clock=clock, sleep=clock.sleep)
    pacer.observe("burst", limit=10, interval_s=10.0)
    stamps: list[float] = []
    lock = threading.Lock()

    def call() -> None:
        pacer.acquire("burst")
        with lock:
            stamps.append(clock())

    _in_threads([call] * 24)
    stamps.sort()
    for n, stamp in enumerate(stamps):
        in_window = [s for s in stamps[: n + 1] if s > stamp - 10.0]
        assert len(in_window) <= 8
    assert stamps[-1] - stamps[0] >= 20  # three windows' worth


# -- Salesforce ---------------------------------------------------------------------------------


def test_salesforce_connector_is_safe_to_call_from_several_threads(
    salesforce_server: Any, salesforce_fieldmap: Any, salesforce_admin: Any,
) -> None:
    connector = SalesforceConnector(
        salesforce_fieldmap,
        auth=SalesforceAuth.with_session(salesforce_server.base_url, salesforce_server.token))
    leads = [c.id for page in connector.read(LEAD, None) for c in page.contacts][:240]
    slices = [leads[n::4] for n in range(4)]
    calls = connector.api_calls()
    writes = [lambda s=s, n=n: connector.write_fields(
        [RecordUpdate(i, "Lead", {"score": 100 * n + k}) for k, i in enumerate(s)])
        for n, s in enumerate(slices)]
    reads = [lambda s=s: connector.read_ids(LEAD, s) for s in slices]
    results = _in_threads([*writes, *reads])
    for n, part in enumerate(slices):
        assert [r.record_id for r in results[n]] == part and all(r.ok for r in results[n])
        assert sorted(c.id for c in results[4 + n]) == sorted(part)
    for n, part in enumerate(slices):
        for k in (0, len(part) - 1):
            status, body = salesforce_admin("GET", f"/_sandbox/records/Lead/{part[k]}")
            assert status == 200 and body["Crmsync_Score__c"] == 100 * n + k
    # Four Collections calls (60 records each) and four queries.
    assert connector.api_calls() - calls == 8
    assert connector.api_calls() == int(salesforce_server.call_counts()["total"])
    connector.close()


def test_salesforce_threads_share_one_login_and_the_org_pacer(
    salesforce_server: Any, salesforce_fieldmap: Any, salesforce_login: dict[str, str],
) -> None:
    pacer = LocalPacer(reserve_daily_percent=2)
    auth = SalesforceAuth.with_password(**salesforce_login,
                                        instance_url=salesforce_server.base_url)
    connectors = [SalesforceConnector(salesforce_fieldmap, auth=auth, pacer=pacer)
                  for _ in range(2)]
    one = connectors[0]
    ids = ["00Q000000000001AAA"] * 1
    _in_threads([lambda: one.read_ids(LEAD, ids) for _ in range(4)]
                + [lambda: connectors[1].read_ids(LEAD, ids)])
    counts = salesforce_server.call_counts()["by_endpoint"]
    assert counts["POST /services/Soap/u/59.0"] == 2  # one login per connector, not per thread
    assert pacer.admitted == {"api": 5}
    for connector in connectors:
        connector.close()


def test_a_salesforce_concurrency_refusal_holds_every_caller_of_the_org(
    salesforce_server: Any, salesforce_fieldmap: Any,
) -> None:
    """403 REQUEST_LIMIT_EXCEEDED (concurrent requests) with Retry-After: the shared pacer holds
    the other connector of the org too, not only the retry loop that met it."""
    clock = ThreadClock(ANCHOR)
    pacer = LocalPacer(clock=clock, sleep=clock.sleep)
    auth = SalesforceAuth.with_session(salesforce_server.base_url, salesforce_server.token)
    # The first gives up at once (one attempt), so only the pacer can make the second wait.
    first = SalesforceConnector(salesforce_fieldmap, auth=auth, pacer=pacer, sleep=clock.sleep,
                                policy=RetryPolicy(attempts=1))
    second = SalesforceConnector(salesforce_fieldmap, auth=auth, pacer=pacer, sleep=clock.sleep)
    salesforce_server.install_faults({"rules": [
        {"kind": "rate_limit", "retry_after": 30, "times": 1}]})
    with pytest.raises(TransientError, match="concurrent"):
        first.read_ids(LEAD, ["00Q000000000001AAA"])
    assert pacer.backoffs == {"api": 1} and clock.sleeps == []
    second.read_ids(LEAD, ["00Q000000000001AAA"])
    assert sum(clock.sleeps) >= 30  # nobody called before the 30 s were up
    assert int(salesforce_server.call_counts()["total"]) == 2
    for connector in (first, second):
        connector.close()
