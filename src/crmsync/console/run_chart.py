"""The Runs page's chart: API calls each run used next to the minimum the CRM allows."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

#: Runs drawn per connection (the latest ones; older runs stay in the table).
CHARTED = 20


def calls_chart(rows: Sequence[dict[str, Any]]) -> str | None:
    """A ``<figure>`` (inline SVG, light and dark) of API calls vs minimum per run, oldest
    first; ``None`` when no run says both."""
    points = tuple((r["id"], r["started"], int(r["api_calls"]), int(r["minimum"]))
                   for r in rows if r["minimum"] is not None and r["api_calls"] != "")[:CHARTED]
    return _render(points) if points else None


@lru_cache(maxsize=16)
def _render(points: tuple[tuple[str, str, int, int], ...]) -> str:
    # Rendering costs ~0.3 s (two themes); the Runs page is reloaded far more often than runs
    # finish, so the same runs are drawn once.
    import altair as alt  # deferred: only the Runs page draws it

    from crmsync.charts import figure

    data = [{"run": run, "started": started, "what": what, "calls": value}
            for run, started, used, minimum in reversed(points)
            for what, value in (("used", used), ("minimum", minimum))]
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
