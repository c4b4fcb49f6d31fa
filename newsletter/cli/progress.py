"""Progress for long operations: a rich bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


@contextmanager
def progress_reporter(label: str) -> Iterator[Callable[[int, int], None]]:
    if sys.stderr.isatty():
        with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TaskProgressColumn(), TextColumn("{task.fields[rate]}"),
                      TimeElapsedColumn(), TimeRemainingColumn(), transient=False) as bar:
            task = bar.add_task(label, total=None, rate="")
            started = time.monotonic()

            def update(done: int, total: int) -> None:
                elapsed = time.monotonic() - started
                rate = f"{done / elapsed:,.0f} msg/s" if elapsed > 0 and done else ""
                bar.update(task, completed=done, total=total, rate=rate)

            yield update
        return
    last = [0.0]

    def log(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= 5:
            last[0] = now
            click.echo(f"{label}: {done}/{total}", err=True)

    yield log
