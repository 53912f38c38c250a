"""A rich progress display for streamed work: done/total, rate, ETA, errors, tokens, cost.

Updated once per flushed batch (not per request), so it costs nothing measurable on the hot
path. ``enabled=False`` gives the same interface with no output (tests, benchmarks, CI logs).
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class StreamProgress:
    def __init__(self, *, enabled: bool = True, console: Console | None = None) -> None:
        self.enabled = enabled
        self._progress: Progress | None = None
        if enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]:>7.1f}/s"), TimeElapsedColumn(), TextColumn("ETA"),
                TimeRemainingColumn(), TextColumn("[red]{task.fields[errors]} err"),
                TextColumn("{task.fields[tokens]:,} tok"), TextColumn("${task.fields[cost]:.4f}"),
                console=console, refresh_per_second=4, speed_estimate_period=10.0)

    def __enter__(self) -> StreamProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()

    def add(self, label: str, total: int) -> TaskID | None:
        if self._progress is None:
            return None
        return self._progress.add_task(label, total=total, rate=0.0, errors=0, tokens=0, cost=0.0)

    def update(self, task: TaskID | None, *, done: int, errors: int, tokens: int, cost: float) -> None:
        """Set absolute counters for a task (idempotent, so callers keep their own totals)."""
        if self._progress is None or task is None:
            return
        rate = next((t.speed or 0.0 for t in self._progress.tasks if t.id == task), 0.0)
        self._progress.update(task, completed=done, rate=rate, errors=errors, tokens=tokens, cost=cost)
