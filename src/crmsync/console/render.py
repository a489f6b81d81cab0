"""Server-rendered pages: Jinja2 templates (autoescaped) around one shared layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from crmsync import __version__

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

#: The navigation bar, in order: (path, label).
NAV = (("/runs", "Runs"), ("/schedules", "Schedules"), ("/funnel", "Funnel"),
       ("/contacts", "Contact lookup"))


def page(request: Request, template: str, title: str, *, status_code: int = 200,
         **context: Any) -> Response:
    """Render ``template`` with the layout's navigation; ``context`` is the page's data."""
    response = TEMPLATES.TemplateResponse(
        request, template, {"title": title, "nav": NAV, "version": __version__,
                            "here": request.url.path, **context},
        status_code=status_code)
    # Pages may show CRM ids and rule traces: never kept by a shared cache or the history.
    response.headers["Cache-Control"] = "no-store"
    return response


def nav_bar(here: str) -> str:
    """The navigation bar as HTML with its own inline style (for pages the console does not
    template, like the funnel report: it must not depend on that page's CSS)."""
    template = TEMPLATES.get_template("nav.html")
    return template.render(nav=NAV, here=here)
