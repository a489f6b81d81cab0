"""What past runs did, read from the state store only: the rows behind ``crmsync runs``,
``crmsync rejections`` and the console's Runs pages.

Nothing here contacts a CRM or shows a field value: ids, counts, error codes and messages only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: How each run mode is shown: a dry run must never be mistaken for one that wrote.
MODE_LABELS = {"plan": "dry run", "run": "run", "full": "full", "undo": "undo", "demo": "demo"}


def run_counts(record: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ledger row's summary and its counts (undo runs store the counts flat)."""
    summary: dict[str, Any] = dict(record.counts or {})
    counts: dict[str, Any] = summary.get("counts", summary)  # undo runs store them flat
    return summary, counts


def duration_s(record: Any) -> float | None:
    """Seconds a run took; ``None`` while it has not finished."""
    if record.finished_at is None:
        return None
    return max(0.0, (record.finished_at - record.started_at).total_seconds())


def duration_text(seconds: float | None) -> str:
    """``0.4s``, ``12s``, ``4m05s``, ``2h03m``; empty while a run has not finished."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = int(round(seconds))
    if whole < 3600:
        return f"{whole}s" if whole < 60 else f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def undone_run(record: Any) -> str | None:
    """The run an undo run undid (``None`` for other runs)."""
    if record.mode != "undo":
        return None
    target = (record.counts or {}).get("run_id")
    return str(target) if target else None


def run_json(record: Any) -> dict[str, Any]:
    """One ledger row as ``runs --output json`` gives it."""
    summary, _ = run_counts(record)
    return {
        "run_id": record.id, "mode": record.mode, "dry_run": record.mode == "plan",
        "crm": record.crm, "connection": record.connection, "trigger": record.trigger,
        "workers": dict(summary.get("workers") or {}),
        "status": record.status, "exit_code": record.exit_code,
        "started_at": record.started_at.isoformat(),
        "finished_at": record.finished_at.isoformat() if record.finished_at else None,
        "duration_s": duration_s(record), "error": record.error,
        "undo_of": undone_run(record),
        "rejections": list(summary.get("rejections") or []),
        "summary": record.counts,
    }




def latest_writing_run(store: Any) -> Any:
    """The latest run that could have had records rejected (not a dry run, not skipped)."""
    for record in store.runs(limit=200):
        if record.mode != "plan" and record.status not in ("skipped", "running"):
            return record
    return None


def rejection_rows(store: Any, record: Any) -> list[dict[str, Any]]:
    """A run's rejected records: id, stream, fields, the CRM's code and message (no values).

    Field writes and task closes come from the journal (every one of them); failed task
    creates, which are not journaled as writes, from the run's summary.
    """
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for entry in store.rejected_entries(record.id):
        fields = (entry.name or "").split(",") if entry.kind == "fields" else ["task"]
        rows.append({"record_id": entry.record_id, "stream": entry.stream,
                     "fields": [f for f in fields if f], "code": entry.error_code,
                     "message": (entry.error_message or "")[:300]})
        seen.add((entry.record_id, "task" if entry.kind != "fields" else "fields"))
    summary, _ = run_counts(record)
    for item in summary.get("rejections") or []:
        if not isinstance(item, Mapping) or list(item.get("fields") or []) != ["task"]:
            continue
        if (str(item.get("record_id")), "task") in seen:
            continue
        rows.append({"record_id": item.get("record_id"), "stream": item.get("stream"),
                     "fields": ["task"], "code": item.get("code"),
                     "message": item.get("message") or ""})
    return rows


def minimum_calls(record: Any) -> int | None:
    """The fewest API calls the CRM's page and batch sizes allow for what ``record`` read and
    wrote (reads of related records such as deals not included); ``None`` for a run whose
    summary does not say what it read (undo runs, runs that failed before reading)."""
    summary, counts = run_counts(record)
    read_by_stream = summary.get("read_by_stream")
    if not isinstance(read_by_stream, Mapping) or record.mode == "undo":
        return None
    # Imported here: the connectors pull in the SDKs, which `crmsync runs` never needs.
    from crmsync.sync import minimum_api_calls

    limits = _crm_limits(record.crm)
    if limits is None:
        return None
    recorded = _Recorded(record.mode, dict(read_by_stream), dict(counts))
    return minimum_api_calls(recorded, limits)  # type: ignore[arg-type]  # reads these 3 only


@dataclass(frozen=True, slots=True)
class _Recorded:
    """The parts of a :class:`~crmsync.sync.RunSummary` ``minimum_api_calls`` reads, as the
    ledger keeps them."""

    mode: str
    read_by_stream: dict[str, int]
    counts: dict[str, int]


def _crm_limits(crm: str) -> Any:
    if crm == "hubspot":
        from crmsync.connectors.hubspot import HubSpotConnector

        return HubSpotConnector.limits
    if crm == "salesforce":
        from crmsync.connectors.salesforce import SalesforceConnector

        return SalesforceConnector.limits
    return None
