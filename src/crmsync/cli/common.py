"""Shared CLI plumbing: consoles, the ``--output text|json`` option and the logging options.

Error rendering lives in :mod:`crmsync.cli.failures`; this module stays light because every
command imports it, including the ones that must start fast (``evaluate``, ``rules ...``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click
import orjson

from crmsync.errors import ExitCode

if TYPE_CHECKING:
    from rich.console import Console

F = TypeVar("F", bound=Callable[..., Any])


class LazyConsole:
    """A rich Console built on first use, so ``--help`` and the rules commands need not import
    rich before they print.

    Emoji codes are always off: a path like ``rules.json:100:10`` must never become
    ``rules.json💯10``. Markup stays on for crmsync's own styled strings; user text and paths
    are printed with ``markup=False`` (or as :class:`rich.text.Text`).
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        """The real console (for rich objects that need one, e.g. a progress bar)."""
        if self._console is None:
            from rich.console import Console

            self._console = Console(highlight=False, soft_wrap=True, emoji=False, **self._options)
        return self._console

    def reset(self) -> None:
        """Forget the console, so the next use sees the current terminal (one per command)."""
        self._console = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)


#: Human output goes to stdout; diagnostics and progress to stderr, so pipes stay clean.
stdout = LazyConsole()
stderr = LazyConsole(stderr=True)


def root_obj(ctx: click.Context | None = None) -> dict[str, Any]:
    """The root context's settings dict (``debug``, ``output_format``, logging options)."""
    ctx = ctx or click.get_current_context(silent=True)
    if ctx is None:
        return {}
    obj: dict[str, Any] = ctx.find_root().ensure_object(dict)
    return obj


def _remember_format(ctx: click.Context, _param: click.Parameter, value: str) -> str:
    # The root group renders errors; it needs to know a machine is reading.
    root_obj(ctx)["output_format"] = value
    return value


def output_option(func: F) -> F:
    """Add ``--output text|json`` (machine-readable results for schedulers and scripts)."""
    return click.option(
        "--output",
        "output_format",
        type=click.Choice(["text", "json"]),
        default="text",
        show_default=True,
        callback=_remember_format,
        help="Result format: human text, or one JSON document for machines (errors too).",
    )(func)


def connection_option(func: F | None = None, *, every_by_default: bool = False) -> Any:
    """Add ``--connection NAME``: which ``[connections.NAME]`` a command works on.

    The default is ``default`` (the single ``[crm]`` form); with ``every_by_default`` (history
    commands) an omitted option means every connection. An unknown name is a configuration
    error with a "did you mean", raised when the settings are loaded.
    """

    def decorate(f: F) -> F:
        return click.option(
            "--connection", "connection", metavar="NAME",
            default=None if every_by_default else "default",
            show_default=not every_by_default,
            help=("Only this connection's runs (default: every connection)." if every_by_default
                  else "The [connections.NAME] to use; `default` is the [crm] section."),
        )(f)

    return decorate(func) if func is not None else decorate


def _set_verbose(ctx: click.Context, _param: click.Parameter, value: int) -> int:
    if value:
        obj = root_obj(ctx)
        obj["verbose"] = max(int(obj.get("verbose") or 0), value)
        _configure_logging(obj)
    return value


def _set_log_format(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value:
        obj = root_obj(ctx)
        obj["log_format"] = value
        _configure_logging(obj)
    return value


def _configure_logging(obj: dict[str, Any]) -> None:
    from crmsync.cli.logs import configure_logging

    configure_logging(int(obj.get("verbose") or 0), obj.get("log_format") or "text")


def logging_options(func: F) -> F:
    """Add ``-v/--verbose`` and ``--log-format`` (also accepted before the command name)."""
    func = click.option(
        "--log-format", type=click.Choice(["text", "json"]), default=None, expose_value=False,
        callback=_set_log_format, is_eager=True,
        help="Log lines on stderr as text (default) or one JSON object per line.",
    )(func)
    return click.option(
        "-v", "--verbose", count=True, expose_value=False, callback=_set_verbose, is_eager=True,
        help="More log output on stderr: -v shows each step, -vv debug detail (never data).",
    )(func)


def emit_json(payload: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.buffer.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2, default=str) + b"\n")
    sys.stdout.flush()


def wants_json() -> bool:
    """Whether the command being run was asked for ``--output json``."""
    return root_obj().get("output_format") == "json"


__all__ = [
    "ExitCode",
    "connection_option",
    "LazyConsole",
    "emit_json",
    "logging_options",
    "output_option",
    "root_obj",
    "stderr",
    "stdout",
    "wants_json",
]
