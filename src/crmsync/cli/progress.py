"""The progress bar of long runs: contacts done, rate, ETA, and what the run waits for.

Shown only on an interactive stderr and never under ``--output json`` (schedulers and pipes get
the summary and the log lines only). The ETA needs a total: a full pass knows roughly how many
contacts there are (the store's count, or the demo's seed); an incremental run shows its rate
and elapsed time instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from crmsync.cli.common import stderr


@contextmanager
def sync_progress(output_format: str, total: int | None, *,
                  label: str = "syncing") -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; draws a bar on a terminal, does nothing elsewhere.

    ``label`` names the work (``reading`` for the read-only workbench commands).
    """
    if output_format == "json" or not stderr.is_terminal:
        yield lambda n: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        SpinnerColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    from crmsync.cli.logs import attach_progress_notes

    class RateColumn(ProgressColumn):
        """Contacts per second, smoothed by rich over the last samples."""

        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:,.0f} contacts/s")

    columns: list[ProgressColumn | str] = [
        SpinnerColumn(), TextColumn(label), BarColumn(), MofNCompleteColumn(), RateColumn(),
        TimeElapsedColumn(),
    ]
    if total:
        columns.append(TimeRemainingColumn())
    # The note column says when the run paces for a rate limit or waits to retry.
    columns.append(TextColumn("{task.fields[note]}", markup=False))
    with Progress(*columns, console=stderr.console, transient=True) as progress:
        task = progress.add_task("sync", total=total, note="")
        detach = attach_progress_notes(lambda text: progress.update(task, note=text))
        try:
            def advance(n: int) -> None:
                progress.update(task, advance=n, note="")

            yield advance
        finally:
            detach()


__all__ = ["sync_progress"]
