"""The chart helper renders offline to inline SVG, in both colour themes."""

from __future__ import annotations

import altair as alt

from crmsync.charts import figure


def test_figure_holds_a_light_and_a_dark_svg_with_the_data_drawn() -> None:
    data = [{"stage": "lead", "n": 5}, {"stage": "prospect", "n": 3}]
    chart = alt.Chart(alt.Data(values=data)).mark_bar().encode(x="n:Q", y="stage:N")

    html = figure(chart, caption="Stages <now>", label="stage counts")

    assert html.count("<svg") == 2
    assert "<?xml" not in html
    assert "aria-label='stage counts'" in html
    assert "Stages &lt;now&gt;" in html  # the caption is escaped
    # Both bars are drawn in each theme, and the axis labels carry the data.
    assert html.count("prospect") >= 2
    light, dark = html.split("<div class='dark'>")
    assert light.count('role="graphics-symbol"') >= 2
    assert dark.count('role="graphics-symbol"') >= 2
