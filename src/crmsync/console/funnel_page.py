"""Funnel: the funnel report (``crmsync report``), live from the state store.

The report renders a whole HTML document; the console serves it as is with its navigation bar
inserted right after ``<body>``, so the page keeps working whatever the report's HTML becomes.
"""

from __future__ import annotations

import re
from html import escape
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from crmsync.console.context import Console
from crmsync.console.render import nav_bar

#: Sync runs the report sums transitions over (``crmsync report --runs``' default).
REPORT_RUNS = 20
_BODY = re.compile(r"<body\b[^>]*>", re.IGNORECASE)


def with_nav(document: str, nav: str) -> str:
    """``document`` with ``nav`` inserted right after its ``<body>`` tag (prepended when it has
    none)."""
    match = _BODY.search(document)
    if match is None:
        return nav + document
    return document[:match.end()] + nav + document[match.end():]


def funnel(request: Request) -> Response:
    """``GET /funnel[?connection=NAME]``: the report of one connection, as of now."""
    from crmsync.funnel_source import live_report
    from crmsync.report import render_html

    console: Console = request.app.state.console
    connection = request.query_params.get("connection") or console.connections[0]
    if connection not in console.connections:
        connection = console.connections[0]
    _, report = live_report(console.store(connection), REPORT_RUNS, console.now())
    nav = nav_bar("/funnel")
    if len(console.connections) > 1:
        links = " · ".join(
            f'<a href="/funnel?connection={quote(name)}" style="color:inherit">{escape(name)}</a>'
            for name in console.connections)
        nav += (f'<p style="margin:0 0 8px;font:14px system-ui,sans-serif">Connection '
                f"<b>{escape(connection)}</b>: {links}</p>")
    response = HTMLResponse(with_nav(render_html(report), nav))
    response.headers["Cache-Control"] = "no-store"
    return response
