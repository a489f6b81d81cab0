"""Every console page over a real state store filled by real sandbox runs (TestClient)."""

from __future__ import annotations

import re
from html import unescape

from starlette.testclient import TestClient

from console.conftest import History
from crmsync.state import StateStore


def _text(html: str) -> str:
    """The page's visible text, tags dropped, whitespace folded."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _store(history: History) -> StateStore:
    return StateStore.open(f"sqlite:///{(history.crm.workdir / 'state.db').as_posix()}")


def test_runs_page_lists_every_run_with_status_counts_and_api_calls(
        client: TestClient, history: History) -> None:
    response = client.get("/runs")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    text = _text(response.text)
    for run_id in (history.plan_id, history.partial_id, history.ok_id):
        assert f'href="/runs/{run_id}"' in response.text
    store = _store(history)
    try:
        partial = store.get_run(history.partial_id)
    finally:
        store.close()
    assert partial is not None
    row_html = re.search(rf'<tr>\s*<td><a href="/runs/{history.partial_id}">.*?</tr>',
                         response.text, re.DOTALL)
    assert row_html, response.text
    row = _text(row_html.group(0)) + " "
    # status, read count, rejected count and API calls of the partial run, as the ledger has them
    counts = partial.counts["counts"]
    assert "partial (exit 1)" in row
    assert f" {counts['read']} " in row and f" {counts['rejected']} " in row
    assert f" {partial.counts['api_calls']} " in row
    assert "dry run" in text  # the plan run is never shown as one that wrote


def test_run_page_shows_transitions_and_rejections_without_values(
        client: TestClient, history: History) -> None:
    ok = _text(client.get(f"/runs/{history.ok_id}").text)
    for transition, count in history.ok_transitions.items():
        assert f"{transition} {count}" in ok
    page = client.get(f"/runs/{history.partial_id}")
    assert page.status_code == 200
    text = _text(page.text)
    assert "FIELD_CUSTOM_VALIDATION_EXCEPTION" in text
    contact_ids = {c["id"] for c in history.crm.contacts()}
    rows = re.findall(r"<tr><td>([^<]+)</td><td>([^<]*)</td><td>([^<]*)</td>", page.text)
    listed = {record for record, stream, _ in rows if stream.endswith("contacts")}
    assert all("status" in fields.split(", ") for _, _, fields in rows)  # the refused outputs
    assert listed and listed <= contact_ids
    # No decided value is shown next to a rejection: statuses appear only in transitions.
    rejections = page.text.split("Rejected records", 1)[1]
    assert not re.search(r"<td>(lead|prospect|opportunity|disqualified)</td>", rejections)


def test_unknown_run_is_a_page_saying_so(client: TestClient) -> None:
    response = client.get("/runs/r-nope")
    assert response.status_code == 400
    assert "no run 'r-nope'" in _text(response.text)


def test_funnel_page_is_the_report_with_the_console_navigation(
        client: TestClient, history: History) -> None:
    response = client.get("/funnel")
    assert response.status_code == 200
    html = response.text
    body = html.index("<body")
    nav = html.index("<nav class=\"console\"")
    assert nav > body and html.index(">", body) + 1 == nav, "navigation right after <body>"
    for label in ("Runs", "Schedules", "Funnel", "Contact lookup"):
        assert f">{label}</a>" in html
    store = _store(history)
    try:
        stages = store.status_counts()
    finally:
        store.close()
    text = _text(html)
    assert stages and all(str(count) in text for count in stages.values())


def test_contact_lookup_shows_the_stored_decision_and_the_rule_trace(
        client: TestClient, history: History) -> None:
    contact = history.crm.contacts()[0]
    stored_status = contact[history.crm.shape["status"]]
    page = client.get("/contacts", params={"id": contact["id"]})
    assert page.status_code == 200
    text = _text(page.text)
    assert f"contacts {stored_status}" in text  # stream, then the status the store holds
    assert 'id="explain"' in page.text and "rule / step" not in text
    explained = client.get("/contacts", params={"id": contact["id"], "explain": "1"})
    assert explained.status_code == 200
    trace = _text(explained.text)
    assert "rule / step" in trace
    assert re.search(rf"\b{contact['id']} ?: {stored_status},", trace), "the same decision"
    assert re.search(r"\b(fired|missed)\b", trace)
    # Facts read from the CRM (names, emails) are evaluated, never shown.
    for fact in ("firstname", "lastname", "email"):
        value = contact.get(fact)
        if value:
            assert str(value) not in explained.text


def test_contact_lookup_of_an_unknown_id(client: TestClient) -> None:
    page = client.get("/contacts", params={"id": "999999999"})
    assert page.status_code == 200
    assert "No decision stored for 999999999" in _text(page.text)
    explained = client.get("/contacts", params={"id": "999999999", "explain": "1"})
    assert explained.status_code == 400
    assert "no contact with id 999999999" in _text(explained.text)
