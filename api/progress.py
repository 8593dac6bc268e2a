"""A progress bar for a use case that reports ``progress(label, done, total)``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


@contextmanager
def progress_bar(console: Console) -> Iterator[Callable[[str, int, int], None]]:
    """A transient bar that appears only once the use case reports progress."""
    bar: list[tuple[Progress, Any]] = []

    def advance(label: str, done: int, total: int) -> None:
        if not bar:
            progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            progress.start()
            bar.append((progress, progress.add_task(label, total=None)))
        progress, task = bar[0]
        progress.update(task, description=label, completed=done, total=total)

    try:
        yield advance
    finally:
        if bar:
            bar[0][0].stop()
