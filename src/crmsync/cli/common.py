"""Shared CLI plumbing: error rendering, exit codes and the ``--output text|json`` option."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
import orjson
from rich.console import Console

from crmsync.errors import CrmsyncError, ExitCode, InvalidFileError

F = TypeVar("F", bound=Callable[..., Any])

#: Human output goes to stdout; diagnostics and progress to stderr, so pipes stay clean.
stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def _remember_format(ctx: click.Context, _param: click.Parameter, value: str) -> str:
    # The root group renders errors; it needs to know a machine is reading.
    ctx.find_root().ensure_object(dict)["output_format"] = value
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


def emit_json(payload: Any) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.buffer.write(orjson.dumps(payload, option=orjson.OPT_INDENT_2, default=str) + b"\n")
    sys.stdout.flush()


def render_error(error: CrmsyncError) -> None:
    """Print a crmsync error the way a person wants to read it (no traceback)."""
    if isinstance(error, InvalidFileError):
        for diagnostic in error.diagnostics:
            stderr.print(diagnostic.render(), markup=False)
        stderr.print(f"crmsync: {error}", markup=False)
    else:
        stderr.print(f"crmsync: error: {error}", markup=False)


def error_json(error: CrmsyncError) -> dict[str, object]:
    """Return the ``--output json`` form of an error (what a scheduler parses)."""
    payload: dict[str, object] = {
        "error": type(error).__name__,
        "message": str(error),
        "exit_code": int(error.exit_code),
    }
    if isinstance(error, InvalidFileError):
        payload["diagnostics"] = [
            {"file": d.file, "line": d.line, "col": d.col, "pointer": d.pointer,
             "message": d.message, "suggestion": d.suggestion}
            for d in error.diagnostics
        ]
    return payload


class CrmsyncGroup(click.Group):
    """Root group that turns :class:`CrmsyncError` into a message and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CrmsyncError as error:
            if (ctx.obj or {}).get("debug"):
                raise
            if (ctx.obj or {}).get("output_format") == "json":
                emit_json(error_json(error))
            render_error(error)
            ctx.exit(int(error.exit_code))
        except KeyboardInterrupt:
            stderr.print("crmsync: interrupted")
            ctx.exit(130)


__all__ = ["CrmsyncGroup", "ExitCode", "connection_option", "emit_json", "output_option",
           "render_error", "stderr", "stdout"]
