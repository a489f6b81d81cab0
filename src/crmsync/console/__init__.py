"""The admin console (``crmsync serve``): run history, undo, schedules, the live funnel report
and contact lookup, as server-rendered pages over the state store.

A client of the library like the CLI (it never imports :mod:`crmsync.cli`): Starlette routes in
``app``, one module per page family, login in ``auth``, form tokens in ``forms``.
"""

from crmsync.console.app import create_app
from crmsync.console.auth import check_bind, is_loopback
from crmsync.console.context import Console

__all__ = ["Console", "check_bind", "create_app", "is_loopback"]
