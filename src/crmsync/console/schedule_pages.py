"""Schedules: each ``[schedules.NAME]`` with its next and last run; pause, resume, run now.

A pause is a row in the state store the scheduler reads every tick, so it holds across
restarts and for every scheduler sharing the store. "Run now" starts the schedule's run in a
thread of this process (recorded as ``schedule:NAME``, like ``crmsync schedule run``).
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from crmsync.console.context import Console
from crmsync.console.render import page
from crmsync.errors import ConfigError

#: The form actions the page offers.
ACTIONS = ("pause", "resume", "run")


def _when(moment: object) -> str:
    return f"{moment:%Y-%m-%d %H:%M}Z" if moment else "-"


def schedules_list(request: Request) -> Response:
    """``GET /schedules``: every schedule, with forms for pause/resume and run now."""
    from crmsync.schedule import schedule_statuses

    console: Console = request.app.state.console
    statuses = schedule_statuses(console.settings, console.now(), console.open_store)
    rows = []
    for status in statuses:
        s, run = status.schedule, status.last_run
        if console.only is not None and s.connection != console.only:
            continue
        rows.append({
            "name": s.name, "connection": s.connection,
            "when": s.when + (", full" if s.mode == "full" else ""), "enabled": s.enabled,
            "paused_at": _when(status.paused_at) if status.paused_at else None,
            "next": _when(status.next_at), "last_run": run.id if run else None,
            "last_started": _when(run.started_at) if run else "-",
            "outcome": status.outcome, "running": console.is_running(f"schedule:{s.name}"),
            "tokens": {a: console.tokens.make(f"schedule-{a}", s.name) for a in ACTIONS},
        })
    return page(request, "schedules.html", "Schedules", rows=rows,
                notice=request.query_params.get("notice"))


async def schedule_action(request: Request) -> Response:
    """``POST /schedules/{name}/{action}``: pause, resume or run now (form token required)."""
    console: Console = request.app.state.console
    name, action = request.path_params["name"], request.path_params["action"]
    form = await request.form()
    if action not in ACTIONS or not console.tokens.check(
            f"schedule-{action}", name, str(form.get("token") or "")):
        return page(request, "error.html", "Not done", status_code=403,
                    message="This form is stale or was not sent from the Schedules page.",
                    hint="open /schedules again and use its buttons")
    schedule = (console.settings.base or console.settings).schedules.get(name)
    if schedule is None or (console.only is not None and schedule.connection != console.only):
        raise ConfigError(f"unknown schedule {name!r}")
    store = console.shared_store()
    if action == "pause":
        done = store.pause_schedule(name, by="console")
        notice = f"{name} paused" if done else f"{name} was already paused"
    elif action == "resume":
        done = store.resume_schedule(name)
        notice = f"{name} resumed" if done else f"{name} was not paused"
    else:
        notice = _run_now(console, name)
    return RedirectResponse(f"/schedules?notice={quote(notice)}", status_code=303)


def _run_now(console: Console, name: str) -> str:
    from crmsync.schedule import run_schedule

    root = console.settings.base or console.settings
    schedule = root.schedules[name]
    # Credentials checked before the thread starts: a missing secret is an answer, not a log.
    console.settings_for(schedule.connection, require_crm=True)
    started = console.start_background(f"schedule:{name}",
                                       lambda: run_schedule(root, schedule))
    return f"{name}: run started" if started else f"{name}: a run is still going"
