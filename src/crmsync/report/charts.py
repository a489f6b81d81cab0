"""The report's charts as Altair (Vega-Lite) specs; :mod:`crmsync.report.html` renders them.

Each function takes a section of the report dict and returns an Altair chart, or ``None`` when
the section has nothing to draw. Stage colours come from :data:`crmsync.charts.PALETTE`, so a
stage is one colour in every chart. Altair is imported inside the functions: the CLI's start-up
never pays for it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crmsync.charts import PALETTE
from crmsync.model import STATUSES

#: Chart width in pixels; the SVG scales down to the page (``max-width: 100%``).
WIDTH = 560
#: Bars a breakdown chart shows (the table under it lists every row).
MAX_BARS = 15
#: The colour of a threshold mark and of dead rules (the palette's "hard miss" red).
ALERT = PALETTE["hard"]


def _alt() -> Any:
    import altair as alt  # deferred: only the report draws charts

    return alt


def _names(**kw: Any) -> Any:
    """A nominal axis whose labels are never cut (Vega's default cuts them at 180 px)."""
    return _alt().Axis(labelLimit=0, **kw)


def _stage_scale(stages: Sequence[str] = STATUSES) -> Any:
    alt = _alt()
    return alt.Scale(domain=list(stages), range=[PALETTE[s] for s in stages])


def funnel(stages: Mapping[str, int], conversion: Sequence[Mapping[str, Any]]) -> Any:
    """Stages as centred bars, widest at the top (a funnel), each labelled with its count and
    the conversion from the stage above (share of contacts that left it and went there)."""
    alt = _alt()
    rates = {(c["from"], c["to"]): c["rate"] for c in conversion}
    rows = []
    previous = None
    for stage in STATUSES:
        n = int(stages.get(stage, 0))
        rate = rates.get(("lead", "disqualified") if stage == "disqualified"
                         else (previous or "", stage))
        step = "" if rate is None else (
            f"  ({rate:.0%} of leads that moved)" if stage == "disqualified"
            else f"  ({rate:.0%} of {previous}s that moved)")
        rows.append({"stage": stage, "contacts": n, "x0": -n / 2, "x1": n / 2,
                     "label": f"{n}{step}"})
        previous = stage
    base = alt.Chart(alt.Data(values=rows)).encode(
        y=alt.Y("stage:N", sort=list(STATUSES), title=None))
    bars = base.mark_bar().encode(
        x=alt.X("x0:Q", axis=None), x2="x1:Q",
        color=alt.Color("stage:N", scale=_stage_scale(), legend=None))
    top = max((r["contacts"] for r in rows), default=0) or 1
    # Mid grey: readable on the light and the dark theme alike.
    labels = base.mark_text(align="left", dx=6, color="#888").encode(
        x=alt.X("x1:Q", axis=None, scale=alt.Scale(domain=[-top / 2, top / 2 + top * 0.9])),
        text="label:N")
    return (bars + labels).properties(width=WIDTH, height=35 * len(rows)).configure_view(
        stroke=None)


def stages_over_time(points: Sequence[Mapping[str, Any]]) -> Any:
    """Contacts per stage after each run: one line per stage, one point per run."""
    if not points:
        return None
    alt = _alt()
    rows = [{"run": p["started_at"], "stage": s, "contacts": p[s]}
            for p in points for s in STATUSES]
    return alt.Chart(alt.Data(values=rows)).mark_line(point=True).encode(
        x=alt.X("run:T", title="run started (UTC)"),
        y=alt.Y("contacts:Q", title="contacts"),
        color=alt.Color("stage:N", scale=_stage_scale(), sort=list(STATUSES), title="stage"),
    ).properties(width=WIDTH, height=220)


def breakdown(rows: Sequence[Mapping[str, Any]], key: str, title: str) -> Any:
    """Contacts per stage stacked, one bar per owner (or lead source), the biggest first."""
    if not rows:
        return None
    alt = _alt()
    shown = list(rows[:MAX_BARS])
    data = [{key: r[key], "stage": s, "order": i, "contacts": r[s]}
            for r in shown for i, s in enumerate(STATUSES) if r[s]]
    return alt.Chart(alt.Data(values=data)).mark_bar().encode(
        y=alt.Y(f"{key}:N", sort=[r[key] for r in shown], title=title, axis=_names()),
        x=alt.X("contacts:Q", stack="zero", title="contacts"),
        color=alt.Color("stage:N", scale=_stage_scale(), sort=list(STATUSES), title="stage"),
        order=alt.Order("order:Q"),
    ).properties(width=WIDTH - 120, height=18 * len(shown) + 10)


def time_in_stage(rows: Sequence[Mapping[str, Any]]) -> Any:
    """Median days in stage per stage (bars), with the stage's stuck threshold (red ticks)."""
    data = [dict(r) for r in rows if r["contacts"]]
    if not data:
        return None
    alt = _alt()
    base = alt.Chart(alt.Data(values=data)).encode(
        y=alt.Y("stage:N", sort=list(STATUSES), title=None))
    bars = base.mark_bar().encode(
        x=alt.X("median_days:Q", title="median days in stage"),
        color=alt.Color("stage:N", scale=_stage_scale(), legend=None))
    p90 = base.mark_tick(thickness=2, color="#888").encode(x="p90_days:Q")
    limit = base.mark_tick(thickness=3, color=ALERT).encode(x="stuck_after_days:Q")
    return (bars + p90 + limit).properties(width=WIDTH, height=35 * len(data))


def counts(rows: Sequence[Mapping[str, Any]], label: str, value: str, *, title: str,
           color: str = PALETTE["prospect"]) -> Any:
    """A plain horizontal bar per row (SLA breaches by rep)."""
    if not rows:
        return None
    alt = _alt()
    shown = [dict(r) for r in rows[:MAX_BARS]]
    return alt.Chart(alt.Data(values=shown)).mark_bar(color=color).encode(
        y=alt.Y(f"{label}:N", sort=[r[label] for r in shown], title=title, axis=_names()),
        x=alt.X(f"{value}:Q", title=value.replace("_", " ")),
    ).properties(width=WIDTH - 120, height=18 * len(shown) + 10)


def scores(bins: Sequence[Mapping[str, Any]]) -> Any:
    """How many contacts hold each score band (bins of ten points)."""
    if not bins:
        return None
    alt = _alt()
    return alt.Chart(alt.Data(values=[dict(b) for b in bins])).mark_bar(
        color=PALETTE["prospect"]).encode(
        x=alt.X("label:N", sort=[b["label"] for b in bins], title="score"),
        y=alt.Y("contacts:Q", title="contacts"),
    ).properties(width=WIDTH, height=200)


def misses_over_time(rows: Sequence[Mapping[str, Any]]) -> Any:
    """Soft and hard misses each run decided, stacked per run."""
    if not rows:
        return None
    alt = _alt()
    return alt.Chart(alt.Data(values=[dict(r) for r in rows])).mark_bar().encode(
        x=alt.X("started_at:O", title="run started (UTC)",
                axis=alt.Axis(labelExpr="slice(datum.value, 0, 16)", labelAngle=-40)),
        y=alt.Y("sum(contacts):Q", title="contacts"),
        color=alt.Color("kind:N", title="miss", scale=alt.Scale(
            domain=["soft", "hard"], range=[PALETTE["soft"], PALETTE["hard"]])),
    ).properties(width=WIDTH, height=200)


def rule_hits(health: Mapping[str, Any]) -> Any:
    """Hits per rule over the window, in rule file order; dead rules (0 hits) in red."""
    rules = health.get("rules") or []
    if not rules:
        return None
    alt = _alt()
    data = [{"rule": r["rule"], "hits": r["hits"], "state": "fired" if r["hits"] else "dead"}
            for r in rules]
    base = alt.Chart(alt.Data(values=data)).encode(
        y=alt.Y("rule:N", sort=[r["rule"] for r in rules], title=None, axis=_names()))
    bars = base.mark_bar().encode(
        x=alt.X("hits:Q", title=f"contacts the rule fired for ({health['runs']} runs)"),
        color=alt.Color("state:N", title=None, scale=alt.Scale(
            domain=["fired", "dead"], range=[PALETTE["prospect"], ALERT])))
    # A dead rule's bar has no width: say so where the bar would be.
    dead = base.mark_text(align="left", dx=3, color=ALERT, text="never fired").encode(
        x=alt.datum(0)).transform_filter(alt.datum.state == "dead")
    return (bars + dead).properties(width=WIDTH - 160, height=14 * len(data) + 10)
