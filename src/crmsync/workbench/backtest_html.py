"""The ``crmsync backtest --html`` page: lift tables and a calibration chart, self-contained.

The chart plots, per score band, the observed win rate against the band's mean score, with the
base rate as a reference line: a rule set whose score means something climbs from left to
right; a flat line at the base rate means the score tells nothing about winning. Scores are
points, not probabilities, so "calibrated" here means *ordered*, not *equal to the diagonal*.
"""

from __future__ import annotations

from html import escape
from typing import Any

from crmsync.workbench.backtest import Backtest, LiftRow, band_of

_CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem}table{border-collapse:collapse}
td,th{padding:.25rem .75rem;border-bottom:1px solid #ddd;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}.note{color:#666}
@media (prefers-color-scheme: dark){body{background:#111;color:#ddd}.note{color:#aaa}
td,th{border-color:#333}}"""


def pct(value: float | None) -> str:
    """``0.413`` -> ``41.3%``; None -> ``-``."""
    return "-" if value is None else f"{value * 100:.1f}%"


def times(value: float | None) -> str:
    """``1.52`` -> ``1.52x``; None -> ``-``."""
    return "-" if value is None else f"{value:.2f}x"


def _lift_table(title: str, rows: list[LiftRow]) -> str:
    head = "".join(f"<th>{h}</th>" for h in (title, "contacts", "won", "lost", "win rate",
                                              "lift"))
    body = "".join(
        f"<tr><td>{escape(r.label)}</td><td class='n'>{r.contacts}</td><td class='n'>{r.won}</td>"
        f"<td class='n'>{r.lost}</td><td class='n'>{pct(r.win_rate)}</td>"
        f"<td class='n'>{times(r.lift)}</td></tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def calibration_points(result: Backtest) -> list[dict[str, Any]]:
    """Return one point per non-empty score band: mean score, win rate, contacts."""
    points = []
    for row in result.by_band:
        members = [j for j in result.judged if band_of(j.score) == row.label]
        if not members:
            continue
        points.append({"band": row.label, "mean_score": sum(j.score for j in members)
                       / len(members), "win_rate": row.win_rate, "contacts": row.contacts})
    return points


def calibration_chart(result: Backtest) -> Any:
    """Return the Altair chart: win rate per score band against the base rate."""
    import altair as alt  # deferred: only --html draws

    points = alt.Data(values=calibration_points(result))
    x = alt.X("mean_score:Q", title="mean score in band", scale=alt.Scale(domain=[0, 100]))
    y = alt.Y("win_rate:Q", title="share won", axis=alt.Axis(format="%"),
              scale=alt.Scale(domain=[0, 1]))
    line = alt.Chart(points).mark_line(point=alt.OverlayMarkDef(filled=True, size=60)).encode(
        x=x, y=y, tooltip=["band:N", "contacts:Q", alt.Tooltip("win_rate:Q", format=".1%")])
    labels = alt.Chart(points).mark_text(dy=-12).encode(x=x, y=y, text="contacts:Q")
    base = alt.Chart(alt.Data(values=[{"base": result.base_rate or 0}])).mark_rule(
        strokeDash=[4, 4], color="#888").encode(y="base:Q")
    return alt.layer(base, line, labels).properties(width=520, height=300)


def render_html(result: Backtest, *, chart: str | None = None) -> str:
    """Return the page; ``chart`` is the calibration ``<figure>`` (drawn here when None)."""
    from crmsync.charts import CHART_CSS, figure

    if chart is None and result.contacts:
        chart = figure(calibration_chart(result),
                       caption="Calibration: share of contacts that won per score band "
                               "(numbers: contacts in the band), against the base rate "
                               "(dashed). A useful score climbs left to right.",
                       label="calibration chart")
    opp = result.opportunity
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>crmsync backtest</title>", f"<style>{_CSS}\n{CHART_CSS}</style></head><body>",
        f"<h1>Backtest of rules {escape(result.ruleset)}</h1>",
        f"<p class='note'>Deals closed from {escape(result.since.date().isoformat())} to "
        f"{escape(result.until.date().isoformat())} (excluded): {result.contacts} contacts, "
        f"{result.won} won, {result.lost} lost, base rate {pct(result.base_rate)}. Each contact "
        "was evaluated on its facts as they stood just before its latest deal closed.</p>",
    ]
    if not result.contacts:
        return "".join(parts + ["<p>No deal closed in this window.</p></body></html>"])
    parts += [
        "<h2>Win rate per status</h2>", _lift_table("status", result.by_status),
        "<h2>Win rate per score band</h2>", _lift_table("score", result.by_band),
        chart or "",
        "<h2>&ldquo;Opportunity&rdquo; as a prediction of a win</h2>",
        f"<p>Precision {pct(opp.precision)} ({opp.true_positives} of {opp.predicted} "
        f"opportunities won); recall {pct(opp.recall)} ({opp.true_positives} of {result.won} "
        "won deals were opportunities).</p>",
        "<h2>How much history there was</h2>",
        f"<p>{pct(result.current_share)} of the facts with a value came from current values "
        f"(the CRM kept no history for their field); {result.without_history} contacts had no "
        "history at all. Facts read from current values:</p>",
        "<table><tr><th>fact</th><th>contacts</th></tr>" + "".join(
            f"<tr><td>{escape(f)}</td><td class='n'>{n}</td></tr>"
            for f, n in sorted(result.current_facts.items(), key=lambda kv: (-kv[1], kv[0])))
        + "</table>",
    ]
    return "".join(parts + ["</body></html>"])
