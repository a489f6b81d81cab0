"""Run summaries and the funnel health report (HTML and JSON).

The report is built from the run ledger alone: every finished sync run stores its
``RunSummary.to_json()``, which holds counts and loss-reason texts but no contact data. Only sync
runs (modes ``run``, ``full``, ``demo``) count; dry runs and undos are left out.

Two sources, because an incremental run sees only the contacts that changed:

* the funnel's *shape* (stage counts, stuck contacts, SLA breaches, misses and their reasons) comes
  from one *snapshot* run: the latest finished full or demo run in the window, or, when there is
  none, the latest sync run, flagged as a partial view;
* stage-to-stage *conversion* sums the transitions of every sync run in the window. The rate of
  ``X → Y`` is the share of the contacts that left stage X in the window that went to Y.

Diagnosis (DOMAIN.md's shapes), judged on the snapshot once it has at least
:data:`MIN_CONTACTS` active contacts (lead + prospect + opportunity):

* **thin middle**: prospects fewer than :data:`THIN_MIDDLE` x leads;
* **bloated middle**: stuck leads + prospects at least :data:`BLOATED_MIDDLE` x leads + prospects;
* **small bottom**: opportunities fewer than :data:`SMALL_BOTTOM` x prospects (judged only with at
  least 10 prospects, so a thin middle does not also read as a small bottom by accident).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from crmsync.state import RunRecord, StateStore
from crmsync.sync import STUCK_AFTER

#: Run modes that synced contacts; ``plan`` and ``undo`` runs are not funnel evidence.
SYNC_MODES = ("run", "full", "demo")
#: Modes that read the whole org, so their status counts are the funnel's shape.
FULL_MODES = ("full", "demo")
STAGES = ("lead", "prospect", "opportunity", "disqualified")
#: The conversions the report shows, in funnel order.
CONVERSIONS = (("lead", "prospect"), ("prospect", "opportunity"), ("lead", "disqualified"),
               ("prospect", "disqualified"), ("opportunity", "disqualified"))
THIN_MIDDLE = 0.15
BLOATED_MIDDLE = 0.30
SMALL_BOTTOM = 0.15
MIN_CONTACTS = 20
TOP_REASONS = 5


def load_runs(store: StateStore, count: int) -> list[RunRecord]:
    """Return the latest ``count`` finished sync runs, newest first (plan/undo runs skipped)."""
    limit = count
    while True:
        records = store.runs(limit=limit)
        sync = [r for r in records if _counts(r)]
        if len(sync) >= count or len(records) < limit:
            return sync[:count]
        limit *= 4  # the window was diluted by dry runs and undos: look further back


def _counts(run: RunRecord) -> bool:
    # A run still "running" has empty counts; a plan/undo run is no evidence of the funnel.
    return run.mode in SYNC_MODES and run.status != "running" and bool(run.counts)


def current_funnel(store: StateStore, runs: Sequence[RunRecord], now: datetime) -> dict[str, Any]:
    """Return the funnel as it stands: every contact's current decision, from the state store.

    Stage counts, miss types and stuck contacts (a contact is stuck when it has held its stage
    longer than :data:`~crmsync.sync.STUCK_AFTER` allows, measured from its ``status_since``);
    ``new_contacts`` counts contacts first decided by one of ``runs``, each once whatever
    happened to it since (an undo does not make it new again).
    """
    stuck: Counter[str] = Counter()
    for status, since in store.status_since_by_status():
        limit = STUCK_AFTER.get(status)
        if limit is not None and since is not None and now - since > limit:
            stuck[status] += 1
    return {
        "stages": dict(store.status_counts()),
        "miss_types": dict(store.miss_type_counts()),
        "stuck": dict(stuck),
        "new_contacts": store.contacts_first_seen([r.id for r in runs if _counts(r)]),
    }


def build_report(
    runs: Sequence[RunRecord], current: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Compute the funnel health report from ledger runs (any order; non-sync runs ignored).

    Args:
        runs: Ledger runs; transitions (conversion) are summed over the sync runs among them.
        current: :func:`current_funnel`; when given (and not empty), stage counts, miss types,
            stuck contacts and new contacts come from every contact's current decision instead
            of from one snapshot run.

    Returns a JSON-ready dict; ``snapshot`` is ``None`` when there is no sync run to report on.
    """
    window = sorted((r for r in runs if _counts(r)), key=lambda r: (r.started_at, r.id),
                    reverse=True)
    snapshot = _snapshot(window)
    summary: Mapping[str, Any] = snapshot.counts if snapshot else {}
    funnel = summary.get("funnel", {})
    transitions: Counter[str] = Counter()
    reclassified: dict[str, Counter[str]] = {}
    for run in window:
        transitions.update({k: int(v) for k, v in run.counts.get("transitions", {}).items()})
        moved = run.counts.get("reclassified") or {}
        if moved:
            version = run.counts.get("ruleset_version") or run.ruleset_version or "?"
            reclassified.setdefault(version, Counter()).update(
                {k: int(v) for k, v in moved.items()})
    stages = {s: int(summary.get("statuses", {}).get(s, 0)) for s in STAGES}
    stuck = {s: int(n) for s, n in funnel.get("stuck", {}).items()}
    miss_counts = summary.get("miss_types", {})
    new_contacts = sum(n for k, n in transitions.items() if k.startswith("new → "))
    live = bool(current and current.get("stages"))
    if live:
        assert current is not None
        stages = {s: int(current["stages"].get(s, 0)) for s in STAGES}
        stuck = {s: int(n) for s, n in current.get("stuck", {}).items()}
        miss_counts = current.get("miss_types", {})
        new_contacts = int(current.get("new_contacts", new_contacts))
    report: dict[str, Any] = {
        "report_version": 1,
        "window": {
            "runs": len(window),
            "from": window[-1].started_at.isoformat() if window else None,
            "to": window[0].started_at.isoformat() if window else None,
            "crms": sorted({r.crm for r in window}),
        },
        "snapshot": None if snapshot is None else {
            "run_id": snapshot.id, "mode": snapshot.mode,
            "started_at": snapshot.started_at.isoformat(),
            "scope": "current" if live else ("full" if _is_full(snapshot) else "partial"),
        },
        "stages": stages,
        # Only moves the CRM's data caused; moves a rule change caused are shown apart.
        "conversion": _conversion(transitions),
        "reclassified": {v: dict(c.most_common()) for v, c in sorted(reclassified.items())},
        "new_contacts": new_contacts,
        "stuck": stuck,
        "sla_breaches": int(funnel.get("sla_breaches", 0)),
        "misses": {
            kind: {
                "contacts": int(miss_counts.get(kind, 0)),
                "top_reasons": Counter({
                    str(k): int(v)
                    for k, v in funnel.get("miss_reasons", {}).get(kind, {}).items()
                }).most_common(TOP_REASONS),
            }
            for kind in ("soft", "hard")
        },
        "runs": [_history_row(r) for r in window],
    }
    report["diagnosis"] = diagnose(stages, stuck) if snapshot else []
    return report


def _is_full(run: RunRecord) -> bool:
    return run.mode in FULL_MODES and run.status in ("ok", "partial")


def _snapshot(window: Sequence[RunRecord]) -> RunRecord | None:
    # A failed full run stopped part-way: its counts cover only the pages it got through.
    for wanted in (_is_full, lambda r: bool(r.counts.get("statuses")), lambda r: True):
        for run in window:
            if wanted(run):
                return run
    return None


def _conversion(transitions: Mapping[str, int]) -> list[dict[str, Any]]:
    left: Counter[str] = Counter()
    for key, n in transitions.items():
        source, arrow, _ = key.partition(" → ")
        if arrow and source in STAGES:  # "new → …" and "… miss → … miss" are not stage exits
            left[source] += n
    rows = []
    for source, target in CONVERSIONS:
        moved = transitions.get(f"{source} → {target}", 0)
        rows.append({"from": source, "to": target, "contacts": moved, "left_from": left[source],
                     "rate": round(moved / left[source], 4) if left[source] else None})
    return rows


def diagnose(stages: Mapping[str, int], stuck: Mapping[str, int]) -> list[dict[str, str]]:
    """Name the funnel's shape problems (thresholds in the module docstring); never empty."""
    lead, prospect, opp = (stages.get(s, 0) for s in ("lead", "prospect", "opportunity"))
    if lead + prospect + opp < MIN_CONTACTS:
        return [{"shape": "too_few", "text": f"Too few active contacts ({lead + prospect + opp}) "
                 f"to judge the funnel's shape; at least {MIN_CONTACTS} are needed."}]
    found = []
    if prospect < THIN_MIDDLE * lead:
        found.append({"shape": "thin_middle", "text": f"Thin middle: {prospect} prospects for "
                      f"{lead} leads. Leads are not becoming prospects: check targeting (ICP) "
                      "and lead sources."})
    stuck_middle = stuck.get("lead", 0) + stuck.get("prospect", 0)
    if lead + prospect and stuck_middle >= BLOATED_MIDDLE * (lead + prospect):
        found.append({"shape": "bloated_middle", "text": f"Bloated middle: {stuck_middle} of "
                      f"{lead + prospect} leads and prospects are stuck. Qualification is slow "
                      "or nurturing is weak."})
    if prospect >= 10 and opp < SMALL_BOTTOM * prospect:
        found.append({"shape": "small_bottom", "text": f"Small bottom: {opp} opportunities for "
                      f"{prospect} prospects. Contacts may be qualified too early, or the sales "
                      "process is weak."})
    return found or [{"shape": "healthy", "text": "No shape problem found: prospects, stuck "
                      "contacts and opportunities are within the thresholds."}]


def _history_row(run: RunRecord) -> dict[str, Any]:
    counts = run.counts.get("counts", {})
    return {"run_id": run.id, "crm": run.crm, "mode": run.mode, "status": run.status,
            "started_at": run.started_at.isoformat(), "read": counts.get("read", 0),
            "updated": counts.get("updated", 0), "tasks": counts.get("tasks_created", 0),
            "rejected": counts.get("rejected", 0), "api_calls": run.counts.get("api_calls", 0)}


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """A few plain-text lines for the terminal: stages, conversion, misses, diagnosis."""
    snap = report["snapshot"]
    if snap is None:
        return ["no sync runs recorded yet"]
    stages = ", ".join(f"{s} {n}" for s, n in report["stages"].items())
    rates = ", ".join(f"{c['from']}→{c['to']} {_pct(c['rate'])}" for c in report["conversion"][:2])
    misses = report["misses"]
    view = ("every contact's current decision" if snap["scope"] == "current"
            else f"{snap['scope']} view, run {snap['run_id']}")
    lines = [f"funnel ({view}): {stages}",
             f"conversion over {report['window']['runs']} runs: {rates}",
             f"stuck: {sum(report['stuck'].values())}, SLA breaches: {report['sla_breaches']}, "
             f"misses: {misses['soft']['contacts']} soft / {misses['hard']['contacts']} hard"]
    for version, moves in report.get("reclassified", {}).items():
        shown = ", ".join(f"{k} {n}" for k, n in moves.items())  # at most 12 pairs: all shown
        lines.append(f"re-classified by rules {version} (not counted as conversion): {shown}")
    return lines + [d["text"] for d in report["diagnosis"]]


def _when(iso: str) -> str:
    # "2026-11-23T15:17:34.556+00:00" -> "2026-11-23 15:17 UTC": the ledger stores UTC only.
    return f"{iso[:10]} {iso[11:16]} UTC"


def _pct(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.0%}"


# -- HTML ---------------------------------------------------------------------------------------

_CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}table{border-collapse:collapse}
td,th{padding:.25rem .75rem;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}.note{color:#666}
.diag{background:#fff6e0;border-left:4px solid #e0a000;padding:.5rem 1rem}
table.bars th{font-weight:normal;text-align:right;border:0;overflow-wrap:anywhere}
table.bars td{border:0;white-space:nowrap}
.bar{display:inline-block;height:1.1rem;vertical-align:middle;margin-right:.4rem}"""
_COLORS = {"lead": "#7fa7d9", "prospect": "#4a7fc1", "opportunity": "#1f5aa6",
           "disqualified": "#b0b0b0", "soft": "#e0a000", "hard": "#c0392b"}


def _bars(items: Sequence[tuple[str, float, str]], *, maximum: float | None = None) -> str:
    """A horizontal bar chart: (label, value, value text) per bar.

    Drawn with HTML and CSS rather than SVG: labels sit in table cells, which grow and wrap
    with their text, so a long stage or reason label is never cut (an SVG text is clipped at
    its box's edge).
    """
    top = maximum if maximum is not None else max((v for _, v, _ in items), default=0) or 1
    rows = []
    for label, value, text in items:
        share = max(0.0, min(1.0, value / top)) if top else 0.0
        color = _COLORS.get(label.split(" ")[0], "#4a7fc1")
        rows.append(
            f"<tr><th>{escape(label)}</th><td><span class='bar' "
            f"style='width:{share * 24:.2f}rem;background:{color}'></span>"
            f"<span class='v'>{escape(text)}</span></td></tr>"
        )
    return f"<table class='bars' role='img'>{''.join(rows)}</table>"


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f'<td class="n">{v}</td>' if isinstance(v, int | float)
                         else f"<td>{escape(str(v))}</td>" for v in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{cells}</tr>{body}</table>"


def render_html(report: Mapping[str, Any]) -> str:
    """Render the report as one self-contained HTML page (inline SVG charts, no scripts)."""
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
             "<title>crmsync funnel health</title>", f"<style>{_CSS}</style></head><body>",
             "<h1>crmsync funnel health</h1>"]
    snap, window = report["snapshot"], report["window"]
    if snap is None:
        parts.append("<p>No sync runs recorded yet: run <code>crmsync run</code> first.</p>")
        return "".join(parts + ["</body></html>"])
    runs = f"{window['runs']} sync run" + ("s" if window["runs"] != 1 else "")
    parts.append(f"<p class='note'>{runs} from {escape(_when(window['from']))} to "
                 f"{escape(_when(window['to']))} ({escape(', '.join(window['crms']))}). Funnel "
                 f"shape from run {escape(snap['run_id'])} ({escape(snap['mode'])}).</p>")
    if snap["scope"] == "current":
        parts[-1] = parts[-1].replace(
            f"Funnel shape from run {escape(snap['run_id'])} ({escape(snap['mode'])}).",
            "Stage counts are every contact's current decision.")
    elif snap["scope"] != "full":
        parts.append("<p class='diag'>No finished full run in this window: stage counts cover "
                     "only the contacts the latest run read. Run <code>crmsync run --full</code> "
                     "for the whole funnel.</p>")
    parts += ["<h2>Diagnosis</h2>",
              *(f"<p class='diag'>{escape(d['text'])}</p>" for d in report["diagnosis"])]
    parts += ["<h2>Contacts per stage</h2>",
              _bars([(s, n, str(n)) for s, n in report["stages"].items()])]
    conv = report["conversion"]
    parts += ["<h2>Stage-to-stage conversion</h2>",
              "<p class='note'>Of the contacts that left a stage in this window, the share that "
              f"went to each stage. New contacts this window: {report['new_contacts']}."
              + ("" if any(c["left_from"] for c in conv) else " No contact has changed stage "
                 "yet: conversion shows once later runs move contacts.") + "</p>",
              _bars([(f"{c['from']} → {c['to']}", c["rate"] or 0,
                      f"{_pct(c['rate'])} ({c['contacts']} of {c['left_from']})") for c in conv],
                    maximum=1.0)]
    for version, moves in report.get("reclassified", {}).items():
        parts += [f"<h3>Re-classified by rules {escape(version)}</h3>",
                  "<p class='note'>Moves a rule change made on contacts whose CRM data did not "
                  "change; not counted as conversion.</p>",
                  _table(["from → to", "contacts"], list(moves.items()))]
    stuck = report["stuck"]
    parts += ["<h2>Stuck contacts and follow-up</h2>",
              _table(["", "contacts"], [*((f"stuck as {s}", stuck.get(s, 0))
                                          for s in ("lead", "prospect", "opportunity")),
                                        ("opportunities past the follow-up SLA",
                                         report["sla_breaches"])])]
    misses = report["misses"]
    parts += ["<h2>Misses</h2>",
              _bars([(k, m["contacts"], str(m["contacts"])) for k, m in misses.items()])]
    for kind, miss in misses.items():
        if miss["top_reasons"]:
            parts += [f"<h3>Top {kind} miss reasons</h3>",
                      _table(["reason", "contacts"], miss["top_reasons"])]
    parts += ["<h2>Run history</h2>", _table(
        ["run", "mode", "status", "started", "read", "updated", "tasks", "rejected", "api calls"],
        [(r["run_id"], r["mode"], r["status"], _when(r["started_at"]), r["read"], r["updated"],
          r["tasks"], r["rejected"], r["api_calls"]) for r in report["runs"]])]
    return "".join(parts + ["</body></html>"])


def write_report(report: Mapping[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.json`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out_dir / "report.html", out_dir / "report.json"
    html_path.write_text(render_html(report), encoding="utf-8")
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return html_path, json_path
