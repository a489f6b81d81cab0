"""Charts for crmsync's HTML pages: Vega-Lite specs, rendered offline to inline SVG.

Specs are built with Altair (any Vega-Lite dict works too) and rendered by ``vl-convert``, which
carries its own copy of Vega: no CDN, no JavaScript in the page, so a report opens the same
offline, in a mail attachment and on paper. Each chart is rendered twice, in the default and
the ``dark`` Vega theme; :data:`CHART_CSS` shows the one that matches the reader's colour scheme
and always the light one in print.

Both libraries are imported on first use: commands that draw nothing never pay for them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from typing import Any

#: CSS for pages that embed :func:`figure` output (light/dark switch, print, sizing).
CHART_CSS = """figure.chart{margin:1rem 0;max-width:100%}
figure.chart svg{max-width:100%;height:auto}
figure.chart .dark{display:none}
figure.chart figcaption{color:#666;font-size:.9em}
@media (prefers-color-scheme: dark){figure.chart .light{display:none}
figure.chart .dark{display:block}figure.chart figcaption{color:#aaa}}
@media print{figure.chart .light{display:block!important}
figure.chart .dark{display:none!important}}"""

#: Stage and miss colours shared by every chart, so "prospect" is one colour everywhere.
PALETTE = {"lead": "#7fa7d9", "prospect": "#4a7fc1", "opportunity": "#1f5aa6",
           "disqualified": "#9a9a9a", "none": "#5b9e5b", "soft": "#e0a000", "hard": "#c0392b"}


def spec_of(chart: Any) -> dict[str, Any]:
    """Return the Vega-Lite spec of an Altair chart, or ``chart`` itself if it is a dict."""
    if isinstance(chart, Mapping):
        return dict(chart)
    return json.loads(chart.to_json())


def svg(chart: Any, *, theme: str | None = None) -> str:
    """Render one chart (Altair object or Vega-Lite dict) to an SVG document string."""
    import vl_convert  # deferred: ~0.5 s to start its embedded Vega runtime

    spec = spec_of(chart)
    return vl_convert.vegalite_to_svg(spec, theme=theme) if theme else \
        vl_convert.vegalite_to_svg(spec)


def figure(chart: Any, *, caption: str, label: str | None = None) -> str:
    """Return a ``<figure>`` holding the chart as inline SVG in light and dark themes.

    ``caption`` is shown under the chart; ``label`` (default: the caption) is its accessible
    name, so a screen reader and a test can find it.
    """
    name = escape(label or caption, quote=True)
    light, dark = svg(chart), svg(chart, theme="dark")
    return (f"<figure class='chart' role='img' aria-label='{name}'>"
            f"<div class='light'>{_strip_prolog(light)}</div>"
            f"<div class='dark'>{_strip_prolog(dark)}</div>"
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def _strip_prolog(document: str) -> str:
    # An inline <svg> must not carry an XML declaration; vl-convert emits none today, but a
    # future version adding one would otherwise break the page.
    start = document.find("<svg")
    return document[start:] if start > 0 else document
