"""The console's ASGI application: routes, login and how failures become pages."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from crmsync.config import Secret
from crmsync.console.auth import TokenAuth
from crmsync.console.contact_page import contact_lookup
from crmsync.console.context import Console
from crmsync.console.failures import ContainFailures
from crmsync.console.funnel_page import funnel
from crmsync.console.render import page
from crmsync.console.runs_pages import run_detail, runs_list, undo_confirm, undo_preview
from crmsync.console.schedule_pages import schedule_action, schedules_list
from crmsync.errors import CrmsyncError, ExitCode
from crmsync.redact import redact_text

#: HTTP status of a failed page, by the exit code the CLI would use for the same failure.
_STATUS_BY_EXIT = {
    ExitCode.BAD_CONFIG: 400,
    ExitCode.AUTH_OR_QUOTA: 502,
    ExitCode.TRANSIENT: 503,
    ExitCode.BUSY: 409,
}


def _home(request: Request) -> Response:
    return RedirectResponse("/runs", status_code=302)


def _favicon(request: Request) -> Response:
    # Browsers ask for it on every page; answering spares a 404 in their console.
    return Response(status_code=204)


async def _failed(request: Request, error: Exception) -> Response:
    assert isinstance(error, CrmsyncError)
    status = _STATUS_BY_EXIT.get(error.exit_code, 500)
    return page(request, "error.html", "Not done", status_code=status,
                message=redact_text(str(error)), hint=getattr(error, "hint", None))


def _closing(console: Console) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        console.close()

    return lifespan


def create_app(console: Console, *, token: Secret | None = None) -> Starlette:
    """Build the console app over ``console``; with ``token`` every request must present it.

    Sync page functions run in Starlette's thread pool (the store and the SDKs block).
    """
    routes = [
        Route("/", _home),
        Route("/favicon.ico", _favicon),
        Route("/runs", runs_list),
        Route("/runs/{run_id}", run_detail),
        Route("/runs/{run_id}/undo", undo_preview, methods=["GET"]),
        Route("/runs/{run_id}/undo", undo_confirm, methods=["POST"]),
        Route("/schedules", schedules_list),
        Route("/schedules/{name}/{action}", schedule_action, methods=["POST"]),
        Route("/funnel", funnel),
        Route("/contacts", contact_lookup),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(TokenAuth, token=token),
                                Middleware(ContainFailures)],
                    exception_handlers={CrmsyncError: _failed}, lifespan=_closing(console))
    app.state.console = console
    return app
