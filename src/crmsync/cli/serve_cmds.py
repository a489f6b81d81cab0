"""``crmsync serve``: the admin console in the browser (:mod:`crmsync.console`)."""

from __future__ import annotations

import socket
from pathlib import Path

import click

from crmsync.cli.common import connection_option, logging_options, stderr
from crmsync.errors import ConfigError

#: The console's default address: this machine only, no login needed.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8780  # not 8765: that is `crmsync sandbox serve`'s, and both run side by side


@click.command("serve")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Settings file (default: ./crmsync.toml).")
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Address to listen on; anything but loopback needs [console] token.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port to listen on (0: any free port).")
@connection_option(every_by_default=True)
@logging_options
def serve(config_path: Path | None, host: str, port: int, connection: str | None) -> None:
    """Admin console in the browser: runs, undo, schedules, funnel, contact lookup.

    Listens on 127.0.0.1 without a login by default. Bound to another address it requires
    [console] token (env CRMSYNC_CONSOLE__TOKEN or the secrets file), sent as a Bearer token or
    as the password of HTTP basic auth; it refuses to start without one.
    """
    run_console(config_path, connection, host, port)


def run_console(config_path: Path | None, connection: str | None, host: str, port: int) -> None:
    """Serve the console on ``host:port`` until Ctrl-C or SIGTERM (``crmsync serve``'s body)."""
    import uvicorn

    from crmsync.console import Console, check_bind, create_app

    console = Console(config_path, connection)
    token = console.settings.console.token
    check_bind(host, token)
    app = create_app(console, token=token)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                            access_log=False, server_header=False)
    server = uvicorn.Server(config)
    # Bound here, not by uvicorn, so the address printed is the one listening (--port 0).
    sock = _listen(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    login = "token required" if token else "no login: this machine only"
    stderr.print(f"crmsync console on http://{shown}:{bound}/ ({login}); Ctrl-C stops it",
                 markup=False)
    server.run(sockets=[sock])


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (a clear error when the port is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock
