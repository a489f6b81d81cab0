"""Salesforce-shaped responses: error lists and the request-level error exception."""

from __future__ import annotations

from typing import Any

from crmsync.sandbox.server import HttpError, Response


def error(status: int, code: str, message: str, fields: list[str] | None = None) -> Response:
    """A response whose body is the JSON list ``[{"message", "errorCode"[, "fields"]}]``."""
    item: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        item["fields"] = fields
    return Response(status, [item])


def fail(status: int, code: str, message: str, fields: list[str] | None = None) -> HttpError:
    """An :class:`HttpError` to raise with :func:`error`'s body."""
    return HttpError(error(status, code, message, fields))


def not_found() -> HttpError:
    """404 ``NOT_FOUND`` for unknown paths, versions, objects and records."""
    return fail(404, "NOT_FOUND", "The requested resource does not exist")
