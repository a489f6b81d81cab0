"""Quota knobs for pacing and scale-out tests (issue 8 §4): set a limit when the sandbox starts,
from Python or from ``crmsync sandbox serve``, hit it from many clients at once, and read back
how many calls it refused."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from typing import Any

import pytest
import requests

from crmsync.sandbox.launch import build_sandbox
from crmsync.sandbox.server import SandboxServer

#: A window far longer than any test: what is admitted depends on counts only, never on timing.
LONG_WINDOW_S = 3600


def _hammer(server: SandboxServer, path: str, threads: int, calls: int) -> Counter[int]:
    """``calls`` GETs from each of ``threads`` clients with their own keep-alive connection."""
    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def client() -> None:
        with requests.Session() as session:
            session.headers["Authorization"] = f"Bearer {server.token}"
            start.wait()
            for _ in range(calls):
                status = session.get(server.base_url + path, timeout=30).status_code
                with lock:
                    statuses[status] += 1

    workers = [threading.Thread(target=client) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return statuses


def test_hubspot_limit_set_at_start_holds_under_concurrent_clients() -> None:
    server = build_sandbox("hubspot", contacts=5, config={
        "rate_limits": {"per_10s": 20, "window_s": LONG_WINDOW_S}})
    with server:
        statuses = _hammer(server, "/crm/v3/objects/contacts?limit=1", threads=8, calls=10)
        counts = server.call_counts()
        headers = requests.get(server.base_url + "/crm/v3/owners", timeout=10,
                               headers={"Authorization": f"Bearer {server.token}"}).headers
    assert statuses == {200: 20, 429: 60}
    assert counts["rate_limited"] == 60
    assert counts["rate_limited_by_policy"] == {"TEN_SECONDLY_ROLLING": 60}
    assert counts["by_status"] == {"200": 20, "429": 60}
    assert counts["total"] == 80  # refused calls are still calls
    assert headers["X-HubSpot-RateLimit-Max"] == "20"
    assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == str(LONG_WINDOW_S * 1000)


_CLIENT = """
import sys, requests
base, token, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with requests.Session() as s:
    s.headers["Authorization"] = "Bearer " + token
    print(" ".join(str(s.get(base + "/crm/v3/owners", timeout=30).status_code) for _ in range(n)))
"""


def test_hubspot_limit_holds_across_client_processes() -> None:
    server = build_sandbox("hubspot", contacts=5, config={
        "rate_limits": {"per_10s": 25, "window_s": LONG_WINDOW_S}})
    with server:
        procs = [subprocess.Popen([sys.executable, "-c", _CLIENT, server.base_url, server.token,
                                   "15"], stdout=subprocess.PIPE, text=True) for _ in range(3)]
        outputs = [p.communicate(timeout=60)[0] for p in procs]
        counts = server.call_counts()
    statuses = Counter(int(s) for out in outputs for s in out.split())
    assert statuses == {200: 25, 429: 20}
    assert counts["rate_limited"] == 20


def test_refusals_are_counted_apart_from_scripted_faults() -> None:
    server = build_sandbox("hubspot", contacts=5, config={
        "rate_limits": {"per_10s": 2, "window_s": LONG_WINDOW_S}})
    with server:
        server.install_faults({"rules": [{"path": "/crm/v3/owners", "status": 429, "times": 1}]})
        statuses = _hammer(server, "/crm/v3/owners", threads=1, calls=4)
        counts = server.call_counts()
        server.reset()
        assert server.call_counts()["rate_limited"] == 0
    # The scripted 429 did not use the quota: two admitted, one scripted, one refused.
    assert statuses == {200: 2, 429: 2}
    assert counts["rate_limited"] == 1 and counts["by_status"] == {"200": 2, "429": 2}


def test_salesforce_daily_allowance_holds_under_concurrent_clients() -> None:
    server = build_sandbox("salesforce", contacts=5, config={"daily_limit": 7})
    with server:
        statuses = _hammer(server, "/services/data/v59.0/limits", threads=4, calls=5)
        counts = server.call_counts()
    assert statuses == {200: 7, 403: 13}
    assert counts["rate_limited"] == 13
    assert counts["rate_limited_by_policy"] == {"DailyApiRequests": 13}


@pytest.mark.parametrize("crm,config", [
    ("hubspot", {"rate_limits": {"per_10s": 0}}),
    ("hubspot", {"rate_limits": {"window_s": -1}}),
    ("hubspot", {"rate_limits": {"per_second": 5}}),
    ("salesforce", {"daily_limt": 5}),
])
def test_a_bad_quota_is_refused_at_start(crm: str, config: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        build_sandbox(crm, contacts=1, config=config)


def _serve(*options: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "crmsync", "sandbox", "serve", "--port", "0", "--contacts", "3",
         *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_serve_takes_the_hubspot_limit_as_options() -> None:
    process = _serve("--crm", "hubspot", "--rate-limit", "3", "--rate-window", "3600",
                     "--daily-limit", "1000")
    try:
        assert process.stdout is not None
        base_url, token = process.stdout.readline().split()
        auth = {"Authorization": f"Bearer {token.removeprefix('token=')}"}
        statuses = [requests.get(base_url + "/crm/v3/owners", headers=auth, timeout=10).status_code
                    for _ in range(5)]
        counts = requests.get(base_url + "/_sandbox/calls", timeout=10).json()
        config = requests.get(base_url + "/_sandbox/config", timeout=10).json()
    finally:
        process.terminate()
        process.communicate(timeout=20)
    assert statuses == [200, 200, 200, 429, 429]
    assert counts["rate_limited"] == 2
    assert config["rate_limits"]["per_10s"] == 3 and config["rate_limits"]["daily"] == 1000


def test_serve_takes_the_salesforce_daily_allowance_and_refuses_a_window() -> None:
    process = _serve("--crm", "salesforce", "--daily-limit", "2")
    try:
        assert process.stdout is not None
        base_url, token = process.stdout.readline().split()
        auth = {"Authorization": f"Bearer {token.removeprefix('token=')}"}
        statuses = [requests.get(base_url + "/services/data/v59.0/limits", headers=auth,
                                 timeout=10).status_code for _ in range(3)]
        counts = requests.get(base_url + "/_sandbox/calls", timeout=10).json()
    finally:
        process.terminate()
        process.communicate(timeout=20)
    assert statuses == [200, 200, 403]
    assert counts["rate_limited_by_policy"] == {"DailyApiRequests": 1}

    refused = _serve("--crm", "salesforce", "--rate-limit", "20")
    _, err = refused.communicate(timeout=30)
    assert refused.returncode == 2 and "daily API allowance" in err


def test_sforce_limit_info_carries_the_per_app_part_too(sf, sf_http) -> None:
    """Issue 10 item 6: real orgs send ``api-usage=...; per-app-api-usage=...(appName=...)``."""
    sf.query("SELECT Id FROM User LIMIT 1")
    assert set(sf.api_usage) == {"api-usage", "per-app-api-usage"}
    used = sf.api_usage["api-usage"].used
    assert sf.api_usage["per-app-api-usage"].used == used
    assert sf.api_usage["per-app-api-usage"].total == 5000
    assert sf.api_usage["per-app-api-usage"].name == "crmsync_sandbox"
    sf_http("POST", "/_sandbox/config", {"per_app_limit": None})
    _, _, headers = sf_http("GET", "/services/data/v59.0/limits")
    assert headers["Sforce-Limit-Info"] == f"api-usage={used + 1}/15000"
