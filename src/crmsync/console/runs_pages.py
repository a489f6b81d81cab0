"""Runs: history per connection, one run's transitions and rejections, and undo.

Undo is two steps, both reading the CRM: a dry-run preview (what would be restored, what is
skipped because it changed since) whose form carries a token, then the confirmed POST that
writes. Rejected records show id, field and the CRM's error, never a value.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from crmsync.charts import CHART_CSS
from crmsync.console.context import Console
from crmsync.console.render import page
from crmsync.console.run_chart import calls_chart
from crmsync.errors import ConfigError
from crmsync.history import (
    MODE_LABELS,
    duration_s,
    duration_text,
    minimum_calls,
    rejection_rows,
    run_counts,
    undone_run,
)

#: Runs listed per connection.
RUNS_SHOWN = 50
#: Records a preview lists before it only counts.
PREVIEW_SHOWN = 200
#: Rejected records a run's page lists (``crmsync rejections RUN --output json`` lists all).
REJECTIONS_SHOWN = 200


def run_row(record: Any) -> dict[str, Any]:
    """One run as the Runs table shows it."""
    summary, counts = run_counts(record)
    return {
        "id": record.id, "connection": record.connection, "crm": record.crm,
        "mode": MODE_LABELS.get(record.mode, record.mode), "status": record.status,
        "exit_code": record.exit_code, "trigger": record.trigger or "",
        "started": record.started_at.strftime("%Y-%m-%d %H:%M:%SZ"),
        "took": duration_text(duration_s(record)),
        "read": counts.get("read", ""),
        "wrote": counts.get("updated", counts.get("restored", "")),
        "tasks": counts.get("tasks_created", ""),
        "rejected": counts.get("rejected", counts.get("failed", "")),
        "api_calls": summary.get("api_calls", ""), "minimum": minimum_calls(record),
        "error": record.error or "", "undo_of": undone_run(record),
    }


def runs_list(request: Request) -> Response:
    """``GET /runs``: the latest runs of each connection, newest first."""
    console: Console = request.app.state.console
    groups = []
    for name in console.connections:
        records = console.store(name).runs(limit=RUNS_SHOWN, connection=name)
        rows = [run_row(r) for r in records]
        groups.append({"connection": name, "runs": rows, "chart": calls_chart(rows)})
    return page(request, "runs.html", "Runs", groups=groups, chart_css=CHART_CSS)


def _run(console: Console, run_id: str) -> Any:
    for name in console.connections:
        record = console.store(name).get_run(run_id)
        if record is not None and record.connection in console.connections:
            return record
    raise ConfigError(f"no run {run_id!r} in the state store")


def run_detail(request: Request) -> Response:
    """``GET /runs/{run_id}``: counts, transitions, rejections; the way to undo it."""
    console: Console = request.app.state.console
    record = _run(console, request.path_params["run_id"])
    summary, _ = run_counts(record)
    transitions = sorted(dict(summary.get("transitions") or {}).items(),
                         key=lambda item: (-int(item[1]), item[0]))
    rejections = rejection_rows(console.store(record.connection), record)
    _, counts = run_counts(record)
    rejected = max(len(rejections), int(counts.get("rejected", 0) or 0))
    undoable = record.mode != "plan" and record.status not in ("running", "skipped")
    return page(request, "run.html", f"Run {record.id}", run=run_row(record),
                transitions=transitions, rejections=rejections[:REJECTIONS_SHOWN],
                rejected=rejected, undoable=undoable,
                undone=request.query_params.get("undone"))


def undo_preview(request: Request) -> Response:
    """``GET /runs/{run_id}/undo``: what an undo would write (reads the CRM, writes nothing)."""
    from crmsync.undo import plan_undo
    from crmsync.wiring import load_parts

    console: Console = request.app.state.console
    record = _run(console, request.path_params["run_id"])
    parts = load_parts(console.settings_for(record.connection, require_crm=True))
    try:
        plan = plan_undo(parts.connector, parts.store, record.id)
    finally:
        parts.close()
    rows = [(r.entry.record_id, name, r.current.get(name), value)
            for r in plan.restores[:PREVIEW_SHOWN] for name, value in r.values.items()]
    closes = [c for group in plan.closes.values() for c in group]
    return page(request, "undo.html", f"Undo {record.id}", run=run_row(record), rows=rows,
                restores=len(plan.restores), skipped=plan.skipped, closes=len(closes),
                more=max(0, len(plan.restores) - PREVIEW_SHOWN),
                token=console.tokens.make("undo", record.id))


async def undo_confirm(request: Request) -> Response:
    """``POST /runs/{run_id}/undo``: the confirmed undo (form token required)."""
    from starlette.concurrency import run_in_threadpool

    console: Console = request.app.state.console
    run_id = request.path_params["run_id"]
    form = await request.form()
    if not console.tokens.check("undo", run_id, str(form.get("token") or "")) \
            or form.get("confirm") != "yes":
        return page(request, "error.html", "Undo not confirmed", status_code=403,
                    message="This undo form is stale or was not sent from the preview page.",
                    hint=f"open the preview again: /runs/{run_id}/undo")
    undo_id = await run_in_threadpool(_undo, console, run_id)
    return RedirectResponse(f"/runs/{undo_id}?undone={run_id}", status_code=303)


def _undo(console: Console, run_id: str) -> str:
    from crmsync.undo import undo_run
    from crmsync.wiring import load_parts

    record = _run(console, run_id)
    parts = load_parts(console.settings_for(record.connection, require_crm=True))
    try:
        return undo_run(parts.connector, parts.store, record.id).undo_run_id
    finally:
        parts.close()
