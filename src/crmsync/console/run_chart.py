"""The Runs page's chart: API calls each run used next to the minimum the CRM allows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Runs drawn per connection (the latest ones; older runs stay in the table).
CHARTED = 20


def calls_chart(rows: Sequence[dict[str, Any]]) -> str | None:
    """A ``<figure>`` (inline SVG, light and dark) of API calls vs minimum per run, oldest
    first; ``None`` when no run says both."""
    points = [r for r in rows if r["minimum"] is not None and r["api_calls"] != ""][:CHARTED]
    if not points:
        return None
    import altair as alt  # deferred: only the Runs page draws it

    from crmsync.charts import figure

    data = [{"run": r["id"], "started": r["started"], "what": what, "calls": int(value)}
            for r in reversed(points)
            for what, value in (("used", r["api_calls"]), ("minimum", r["minimum"]))]
    chart = alt.Chart(alt.Data(values=data)).mark_bar().encode(
        x=alt.X("run:N", sort=None, title=None, axis=alt.Axis(labelAngle=-40)),
        xOffset=alt.XOffset("what:N", sort=["used", "minimum"]),
        y=alt.Y("calls:Q", title="API calls"),
        color=alt.Color("what:N", sort=["used", "minimum"], title=None,
                        scale=alt.Scale(range=["#4a7fc1", "#9a9a9a"])),
        tooltip=["run:N", "started:N", "what:N", "calls:Q"],
    ).properties(width=max(160, 36 * len(points)), height=160)
    return figure(chart, caption="API calls per run, next to the fewest the CRM's page and "
                                 "batch sizes allow (latest runs)",
                  label="API calls per run vs minimum")
