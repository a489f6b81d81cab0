"""The last resort: a bug or an SDK surprise becomes a short page, never a logged traceback.

SDK exceptions quote response bodies (personal data) in their messages, and Starlette re-raises
an unhandled error so the server logs it with its traceback. This middleware sits inside that:
it answers 500 with the error's class name only and logs the same, nothing more.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("crmsync.console")


class ContainFailures:
    """ASGI middleware: an exception escaping a page becomes a 500 naming only its class."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as error:
            name = type(error).__name__
            log.error("console: %s %s failed: %s", scope.get("method"), scope.get("path"), name)
            if started:
                return  # the page was half sent: nothing more to say to the browser
            body = (f"crmsync console: unexpected error ({name}); the server log names it. "
                    "Nothing else about it is shown, as it may quote CRM data.\n").encode()
            await send({"type": "http.response.start", "status": 500, "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
