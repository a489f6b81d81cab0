"""CLI commands of the rules family (filled in by the issue that builds them)."""

from __future__ import annotations

import click


def register(group: click.Group) -> None:
    """Attach this family's commands to the root group."""
