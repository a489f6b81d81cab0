"""The report as one self-contained HTML page: charts as inline SVG, a table under every chart.

No script, no CDN: the page opens offline, in a mail attachment and on paper. Each chart is a
:func:`crmsync.charts.figure` (light and dark SVG; CSS picks one by ``prefers-color-scheme`` and
prints the light one), and each has a table with the same numbers (screen readers, copying into
a spreadsheet, and the drill-down: record ids behind stuck contacts and SLA breaches, inside
``<details>`` so the page stays short on screen; printed open where the browser allows).
Everything that comes from the CRM or the ledger is
escaped.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from crmsync.model import STATUSES
from crmsync.report import charts
from crmsync.report.text import pct, when

_CSS = """:root{color-scheme:light dark}
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:62rem;padding:0 1rem;
color:#222;background:#fff}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2.2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}
td,th{padding:.25rem .75rem;border-bottom:1px solid #ddd;text-align:left}
td{overflow-wrap:anywhere}
td.n{text-align:right;font-variant-numeric:tabular-nums}.note{color:#666}
.diag{background:#fff6e0;border-left:4px solid #e0a000;padding:.5rem 1rem}
.dead{color:#c0392b}code{font-size:.95em}
details{margin:.5rem 0}summary{cursor:pointer;color:#1f5aa6}
nav a{margin-right:.8rem}
@media (prefers-color-scheme: dark){body{color:#ddd;background:#161616}
td,th,h2{border-color:#444}.note{color:#aaa}.diag{background:#3a2f10;border-color:#e0a000}
summary,nav a{color:#8fb4e6}.dead{color:#ff7b6b}}
@media print{body{color:#000;background:#fff;max-width:none;margin:0}nav{display:none}
figure.chart,table,.diag{break-inside:avoid}h2{break-after:avoid}}
@media print{details::details-content{content-visibility:visible;display:block}}"""

#: The page's sections, in order: (anchor, title).
SECTIONS = (("diagnosis", "Diagnosis"), ("funnel", "Funnel and conversion"),
            ("trend", "Stages over time"), ("owners", "By owner"),
            ("sources", "By lead source"), ("stuck", "Time in stage and stuck contacts"),
            ("sla", "Follow-up SLA and open tasks"), ("scores", "Score distribution"),
            ("misses", "Misses"), ("rules", "Rule health"), ("runs", "Run history"))


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], *, caption: str = "") -> str:
    cells = "".join(f"<th scope='col'>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f'<td class="n">{v}</td>' if isinstance(v, int | float)
                         and not isinstance(v, bool) else f"<td>{escape(str(v))}</td>"
                         for v in row) + "</tr>"
        for row in rows
    )
    cap = f"<caption class='note'>{escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<tr>{cells}</tr>{body}</table>"


def _figure(chart: Any, caption: str) -> str:
    if chart is None:
        return ""
    from crmsync.charts import figure  # deferred: vl-convert starts its Vega runtime on use

    return figure(chart, caption=caption)


def _days(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def render_html(report: Mapping[str, Any]) -> str:
    """Render the report as one self-contained HTML page (inline SVG charts, no scripts)."""
    from crmsync.charts import CHART_CSS

    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width,initial-scale=1'>",
             "<title>crmsync funnel health</title>",
             f"<style>{_CSS}\n{CHART_CSS}</style></head><body>",
             "<h1>crmsync funnel health</h1>"]
    snap = report["snapshot"]
    if snap is None:
        parts.append("<p>No sync runs recorded yet: run <code>crmsync run</code> first.</p>")
        return "".join(parts + ["</body></html>"])
    parts.append(_intro(report))
    parts.append("<nav>" + "".join(f"<a href='#{a}'>{escape(t)}</a>" for a, t in SECTIONS)
                 + "</nav>")
    for anchor, title in SECTIONS:
        parts.append(f"<section id='{anchor}'><h2>{escape(title)}</h2>")
        parts.append(_SECTION[anchor](report))
        parts.append("</section>")
    return "".join(parts + ["</body></html>"])


def _intro(report: Mapping[str, Any]) -> str:
    snap, window = report["snapshot"], report["window"]
    runs = f"{window['runs']} sync run" + ("s" if window["runs"] != 1 else "")
    shape = ("Stage counts are every contact's current decision." if snap["scope"] == "current"
             else f"Funnel shape from run {escape(snap['run_id'])} ({escape(snap['mode'])}).")
    text = (f"<p class='note'>{runs} from {escape(when(window['from']))} to "
            f"{escape(when(window['to']))} ({escape(', '.join(window['crms']))}). {shape}")
    asked = [f"since {window['since'][:10]}" if window.get("since") else "",
             f"until {window['until'][:10]}" if window.get("until") else ""]
    if any(asked):
        text += f" Runs filtered: {escape(' '.join(a for a in asked if a))}."
    text += "</p>"
    if snap["scope"] not in ("current", "full"):
        text += ("<p class='diag'>No finished full run in this window: stage counts cover "
                 "only the contacts the latest run read. Run <code>crmsync run --full</code> "
                 "for the whole funnel.</p>")
    if snap["scope"] != "current":
        text += ("<p class='note'>Breakdowns by owner and lead source, time in stage, stuck "
                 "contacts and scores describe contacts as they are now, so they are shown "
                 "only for a report that ends now (no <code>--until</code>).</p>")
    return text


def _diagnosis(report: Mapping[str, Any]) -> str:
    return "".join(f"<p class='diag'>{escape(d['text'])}</p>" for d in report["diagnosis"])


def _funnel(report: Mapping[str, Any]) -> str:
    stages, conv = report["stages"], report["conversion"]
    steps = ", ".join(f"{c['from']} → {c['to']} {pct(c['rate'])}" for c in conv[:2])
    out = [_figure(charts.funnel(stages, conv),
                   f"Contacts per stage now; conversion over the window: {steps}."),
           _table(["stage", "contacts"], [(s, stages.get(s, 0)) for s in STATUSES]),
           "<p class='note'>Conversion: of the contacts that left a stage in this window, the "
           f"share that went to each stage. New contacts this window: {report['new_contacts']}."
           + ("" if any(c["left_from"] for c in conv) else " No contact has changed stage "
              "yet: conversion shows once later runs move contacts.") + "</p>",
           _table(["from → to", "contacts", "left the stage", "rate"],
                  [(f"{c['from']} → {c['to']}", c["contacts"], c["left_from"], pct(c["rate"]))
                   for c in conv])]
    for version, moves in report.get("reclassified", {}).items():
        out += [f"<h3>Re-classified by rules {escape(version)}</h3>",
                "<p class='note'>Moves a rule change made on contacts whose CRM data did not "
                "change; not counted as conversion.</p>",
                _table(["from → to", "contacts"], list(moves.items()))]
    return "".join(out)


def _trend(report: Mapping[str, Any]) -> str:
    points = report.get("stages_over_time") or []
    if not points:
        return ("<p class='note'>No run in this window recorded its stage totals (runs by "
                "crmsync before the dashboard report, and incremental runs, give no point).</p>")
    return (_figure(charts.stages_over_time(points),
                    "Every contact's stage after each run (one point per run).")
            + _table(["run", "started", *STATUSES, "soft misses", "hard misses"],
                     [(p["run_id"], when(p["started_at"]), *(p[s] for s in STATUSES),
                       p.get("soft_miss", 0), p.get("hard_miss", 0)) for p in points]))


def _breakdown(report: Mapping[str, Any], key: str, title: str) -> str:
    rows = report.get("by_owner" if key == "owner_id" else "by_source") or []
    if not rows:
        return "<p class='note'>No contacts recorded with this breakdown.</p>"
    extra = ["stuck"] if key == "owner_id" else []
    what = ("CRM user ids (look a rep up in the CRM's user list)" if key == "owner_id" else
            "the CRM's lead source values")
    return (_figure(charts.breakdown(rows, key, title),
                    f"Contacts per stage by {title} ({what}); the biggest "
                    f"{min(len(rows), charts.MAX_BARS)} of {len(rows)}.")
            + _table([title, *STATUSES, "total", "reached opportunity", *extra],
                     [(r[key], *(r[s] for s in STATUSES), r["total"],
                       pct(r["opportunity_share"]), *(r[e] for e in extra)) for r in rows],
                     caption="reached opportunity: opportunities over the row's active "
                             "(lead, prospect, opportunity) contacts"))


def _stuck(report: Mapping[str, Any]) -> str:
    stuck = report.get("stuck_contacts") or {}
    limits = stuck.get("threshold_days") or {}
    rules = "; ".join(f"a {s} after {d} days" for s, d in limits.items())
    out = [_figure(charts.time_in_stage(report.get("time_in_stage") or []),
                   "Median days in stage (bar), 90th percentile (grey tick) and the stage's "
                   "stuck limit (red tick)."),
           _table(["stage", "contacts", "median days", "90th pct days", "longest days",
                   "stuck after days", "stuck now"],
                  [(r["stage"], r["contacts"], _days(r["median_days"]), _days(r["p90_days"]),
                    _days(r["max_days"]), r["stuck_after_days"] or "–",
                    report["stuck"].get(r["stage"], 0) if r["stuck_after_days"] else "–")
                   for r in report.get("time_in_stage") or []])]
    if limits:
        out.append("<p class='note'>Why a contact counts as stuck: it has held its stage longer "
                   f"than that stage allows ({escape(rules)}), counted from the moment crmsync "
                   "moved it into the stage (its <em>status since</em>). Disqualified contacts "
                   "are never stuck.</p>")
    else:
        out.append(_table(["stage", "stuck contacts"],
                          [(s, report["stuck"].get(s, 0)) for s in STATUSES[:3]]))
    listed = stuck.get("listed") or []
    if listed:
        shown = (f"all {len(listed)}" if len(listed) == stuck["total"]
                 else f"the {len(listed)} longest overdue of {stuck['total']}")
        out.append(f"<details><summary>Stuck contacts by CRM record id ({shown})</summary>"
                   + _table(["record id", "object", "stage", "days in stage", "limit (days)",
                             "owner id", "in stage since"],
                            [(s["record_id"], s["stream"], s["status"], s["days_in_stage"],
                              s["threshold_days"], s["owner_id"], when(s["since"]))
                             for s in listed]) + "</details>")
    return "".join(out)


def _sla(report: Mapping[str, Any]) -> str:
    sla = report.get("sla") or {}
    days = sla.get("first_touch_days", 2)
    judge = ("the latest full run" if report["snapshot"]["mode"] in ("full", "demo")
             else "the latest run, for the contacts it read")
    out = [f"<p>Opportunities past the follow-up SLA: <strong>{report['sla_breaches']}"
           f"</strong>. An opportunity breaches it when its rep has not contacted it within "
           f"{days} days of it becoming one (judged by {judge}).</p>"]
    if sla.get("by_owner"):
        out += [_figure(charts.counts(sla["by_owner"], "owner_id", "breaches", title="owner id",
                                      color=charts.ALERT), "SLA breaches by rep (CRM user id)."),
                _table(["owner id", "breaches"],
                       [(o["owner_id"], o["breaches"]) for o in sla["by_owner"]])]
    tasks = report.get("open_tasks") or []
    if tasks:
        purposes = sorted({p for t in tasks for p in t["by_purpose"]})
        overdue = sum(t.get("overdue", 0) for t in tasks)
        out += [f"<h3>Open follow-up tasks by rep ({sum(t['open'] for t in tasks)}, "
                f"{overdue} overdue)</h3>",
                _figure(charts.counts(tasks, "owner_id", "open", title="owner id"),
                        "crmsync's follow-up tasks still open, per rep (CRM user id)."),
                "<p class='note'>Overdue: still open past the due date crmsync gave the task "
                "when it created it (a rep who moved the date in the CRM is not seen).</p>",
                _table(["owner id", "open", "overdue", *purposes],
                       [(t["owner_id"], t["open"], t.get("overdue", 0),
                         *(t["by_purpose"].get(p, 0) for p in purposes)) for t in tasks])]
    if sla.get("listed"):
        listed = sla["listed"]
        out.append(f"<details><summary>Breaching opportunities by CRM record id "
                   f"({len(listed)} listed)</summary>"
                   + _table(["record id", "object", "owner id"],
                            [(b.get("record_id", ""), b.get("object_type", ""),
                              b.get("owner_id") or "(none)") for b in listed]) + "</details>")
    return "".join(out)


def _scores(report: Mapping[str, Any]) -> str:
    bins = report.get("score_distribution") or []
    if not bins:
        return "<p class='note'>No scores recorded.</p>"
    return (_figure(charts.scores(bins), "Contacts per score band (every contact's current "
                                         "score).")
            + _table(["score", "contacts"], [(b["label"], b["contacts"]) for b in bins]))


def _misses(report: Mapping[str, Any]) -> str:
    misses = report["misses"]
    rows = report.get("misses_over_time") or []
    out = [_table(["miss type", "contacts now"],
                  [(k, m["contacts"]) for k, m in misses.items()]),
           "<p class='note'>Soft miss: not now (timing, budget); worth nurturing. Hard miss: "
           "lost for good (competitor, not a fit). Reasons are the rules that decided the "
           "miss.</p>"]
    if rows:
        out += [_figure(charts.misses_over_time(rows),
                        "Soft and hard misses each run decided (contacts it evaluated)."),
                "<details><summary>Misses per run by reason</summary>"
                + _table(["run", "started", "miss", "reason", "contacts"],
                         [(r["run_id"], when(r["started_at"]), r["kind"], r["reason"],
                           r["contacts"]) for r in rows]) + "</details>"]
    for kind, miss in misses.items():
        if miss["top_reasons"]:
            out += [f"<h3>Top {kind} miss reasons</h3>",
                    _table(["reason", "contacts"], miss["top_reasons"])]
    return "".join(out)


def _rules(report: Mapping[str, Any]) -> str:
    health = report.get("rule_health") or {}
    if not health.get("rules"):
        return "<p class='note'>No run in this window recorded rule hits.</p>"
    dead = health["dead"]
    out = [f"<p>Over {health['runs']} runs and {health['evaluated']} evaluations, "
           f"{len(health['rules']) - len(dead)} of {len(health['rules'])} rules of rule set "
           f"{escape(str(health.get('ruleset_version') or '?'))} fired.</p>"]
    if dead:
        out.append("<p class='diag'>Dead rules (never fired in this window): "
                   + ", ".join(f"<code class='dead'>{escape(r)}</code>" for r in dead)
                   + ". A rule that never fires is shadowed by an earlier rule, tests a fact "
                   "the CRM never fills, or describes contacts you do not have.</p>")
    out += [_figure(charts.rule_hits(health), "Contacts each rule fired for; dead rules in red."),
            "<details><summary>Hit rate per rule</summary>"
            + _table(["rule", "hits", "hit rate"],
                     [(r["rule"], r["hits"], pct(r["rate"]) if r["hits"] else "0% (dead)")
                      for r in health["rules"]]) + "</details>"]
    return "".join(out)


def _runs(report: Mapping[str, Any]) -> str:
    return _table(
        ["run", "mode", "status", "started", "read", "updated", "tasks", "rejected", "api calls"],
        [(r["run_id"], r["mode"], r["status"], when(r["started_at"]), r["read"], r["updated"],
          r["tasks"], r["rejected"], r["api_calls"]) for r in report["runs"]])


_SECTION: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "diagnosis": _diagnosis, "funnel": _funnel, "trend": _trend,
    "owners": lambda r: _breakdown(r, "owner_id", "owner"),
    "sources": lambda r: _breakdown(r, "lead_source", "lead source"),
    "stuck": _stuck, "sla": _sla, "scores": _scores, "misses": _misses, "rules": _rules,
    "runs": _runs,
}


def write_report(report: Mapping[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.json`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out_dir / "report.html", out_dir / "report.json"
    html_path.write_text(render_html(report), encoding="utf-8")
    json_path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return html_path, json_path
