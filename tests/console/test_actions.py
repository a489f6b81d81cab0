"""What the console changes: undo (preview, then confirm), pause/resume and run now."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starlette.testclient import TestClient

from console.conftest import History
from crmsync.config import load_settings
from crmsync.console import Console, create_app
from crmsync.schedule import RunStarted, Scheduler
from crmsync.state import StateStore


def _client(history: History) -> TestClient:
    return TestClient(create_app(Console(history.crm.config)), base_url="http://127.0.0.1",
                      follow_redirects=False)


def _statuses(history: History) -> dict[str, object]:
    return {c["id"]: c.get(history.crm.shape["status"]) for c in history.crm.contacts()}


def _token(html: str, action: str) -> str:
    match = re.search(rf'action="{re.escape(action)}">\s*<input type="hidden" name="token" '
                      r'value="([0-9a-f]+)"', html)
    assert match, action
    return match.group(1)


def _blank(value: object) -> object:
    return value or None


def test_undo_previews_then_restores_only_when_confirmed(fresh: History) -> None:
    written = _statuses(fresh)
    assert written != fresh.before_ok
    with _client(fresh) as client:
        run_page = client.get(f"/runs/{fresh.ok_id}").text
        assert f'href="/runs/{fresh.ok_id}/undo"' in run_page
        preview = client.get(f"/runs/{fresh.ok_id}/undo")
        assert preview.status_code == 200
        changed = sum(1 for k, v in written.items() if _blank(v) != _blank(fresh.before_ok[k]))
        assert f"Would restore {changed} records" in re.sub(r"</?b>", "", preview.text)
        assert _statuses(fresh) == written, "the preview writes nothing"
        action = f"/runs/{fresh.ok_id}/undo"
        # Forged or unconfirmed posts do nothing.
        assert client.post(action, data={"confirm": "yes"}).status_code == 403
        assert client.post(action, data={"confirm": "yes", "token": "0" * 64}).status_code == 403
        token = _token(preview.text, action)
        assert client.post(action, data={"token": token}).status_code == 403
        other = client.get(f"/runs/{fresh.partial_id}/undo").text
        assert client.post(action, data={"confirm": "yes",
                                         "token": _token(other, f"/runs/{fresh.partial_id}/undo")}
                           ).status_code == 403, "a token is good for its own run only"
        assert _statuses(fresh) == written
        done = client.post(action, data={"confirm": "yes", "token": token})
        assert done.status_code == 303
        undo_page = client.get(done.headers["location"])
        assert undo_page.status_code == 200 and "Undo of" in undo_page.text
    restored = _statuses(fresh)
    assert {k: _blank(v) for k, v in restored.items()} == {
        k: _blank(v) for k, v in fresh.before_ok.items()}


def test_pause_resume_and_run_now(fresh: History) -> None:
    with _client(fresh) as client:
        page = client.get("/schedules").text
        assert "nightly" in page and "1d" in page
        assert client.post("/schedules/nightly/pause", data={"token": "bad"}).status_code == 403
        paused = client.post("/schedules/nightly/pause",
                             data={"token": _token(page, "/schedules/nightly/pause")})
        assert paused.status_code == 303
        page = client.get(paused.headers["location"]).text
        assert "nightly paused" in page and ">paused</span>" in page
        settings = load_settings(fresh.crm.config, require_crm=False)
        store = StateStore.open(settings.state.url)
        try:
            assert set(store.paused_schedules()) == {"nightly"}
            started: list[str] = []

            def start(schedule: object, slot: datetime) -> RunStarted:
                started.append(str(slot))
                return RunStarted(None, "ok", 0)

            clock = [datetime(2026, 12, 1, 12, tzinfo=UTC)]
            scheduler = Scheduler(settings.schedules, store, start, now=lambda: clock[0],
                                  start_with_latest=True)
            assert scheduler.tick() == [] and started == [], "a paused schedule never fires"
            resumed = client.post("/schedules/nightly/resume",
                                  data={"token": _token(page, "/schedules/nightly/resume")})
            assert resumed.status_code == 303 and store.paused_schedules() == {}
            clock[0] += timedelta(minutes=1)
            assert [f.schedule for f in scheduler.tick()] == ["nightly"] and len(started) == 1

            page = client.get("/schedules").text
            ran = client.post("/schedules/nightly/run",
                              data={"token": _token(page, "/schedules/nightly/run")})
            assert ran.status_code == 303
            deadline = time.monotonic() + 120
            runs = []
            while time.monotonic() < deadline:
                runs = [r for r in store.runs(trigger="schedule:nightly") if r.finished_at]
                if runs:
                    break
                time.sleep(0.2)
            assert runs and runs[0].status == "ok", runs
            page = client.get("/schedules").text
            assert f'href="/runs/{runs[0].id}"' in page
        finally:
            store.close()


def test_a_store_from_before_pauses_gets_the_table_and_its_version(tmp_path: Path) -> None:
    import sqlalchemy as sa

    url = f"sqlite:///{(tmp_path / 'old.db').as_posix()}"
    StateStore.open(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # what a store written by crmsync with schema 2 holds
        conn.execute(sa.text("DROP TABLE crmsync_schedule_pauses"))
        conn.execute(sa.text("DELETE FROM crmsync_schema_version WHERE version > 2"))
    engine.dispose()
    store = StateStore.open(url)
    try:
        assert store.pause_schedule("nightly", by="console")
        assert not store.pause_schedule("nightly", by="console"), "already paused"
        assert set(store.paused_schedules()) == {"nightly"}
        assert store.resume_schedule("nightly") and not store.resume_schedule("nightly")
    finally:
        store.close()
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT max(version) FROM crmsync_schema_version")
                            ).scalar() == 3
    engine.dispose()


def test_pause_and_resume_from_the_command_line_show_in_the_console(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from crmsync.cli import main

    config = tmp_path / "crmsync.toml"
    config.write_text(f'[state]\nurl = "sqlite:///{(tmp_path / "s.db").as_posix()}"\n'
                      '[crm]\ntype = "hubspot"\n[schedules.nightly]\nevery = "1d"\n', "utf-8")
    paused = CliRunner().invoke(main, ["schedule", "pause", "nightly", "--config", str(config)])
    assert paused.exit_code == 0 and "paused" in paused.stdout, paused.output
    listed = CliRunner().invoke(main, ["schedule", "list", "--config", str(config),
                                       "--output", "json"])
    assert json.loads(listed.stdout)[0]["paused_at"]
    with TestClient(create_app(Console(config)), base_url="http://127.0.0.1") as client:
        assert ">paused</span>" in client.get("/schedules").text
    resumed = CliRunner().invoke(main, ["schedule", "resume", "nightly", "--config", str(config)])
    assert resumed.exit_code == 0 and "resumed" in resumed.stdout
    unknown = CliRunner().invoke(main, ["schedule", "pause", "nightlly", "--config", str(config)])
    assert unknown.exit_code == 2 and "did you mean nightly" in unknown.stderr
