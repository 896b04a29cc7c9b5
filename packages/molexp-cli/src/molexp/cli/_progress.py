"""Progress of ``molexp run``: a live display on a terminal, plain lines otherwise.

On a terminal (stdout is a TTY) a rich progress bar shows how many runs are done, failed and
running, with one line per finished run printed above it. Elsewhere (a pipe, a log file, CI)
every start and finish is one plain line, so logs stay readable and greppable.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from molexp.cli._format import duration

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


@dataclass
class Outcome:
    """How one executed run ended."""

    status: str
    """``succeeded``, ``failed``, ``cancelled`` (or ``running``/``created`` if a child died
    without settling it)."""
    seconds: float
    error: str | None = None
    """``Type: message`` of the failure, when it failed."""
    output: str = ""
    """What a child process printed (kept to show when the run failed)."""

    @property
    def ok(self) -> bool:
        """Whether the run succeeded."""
        return self.status == "succeeded"


class Display(Protocol):
    """What ``molexp run`` reports progress to."""

    def __enter__(self) -> Display: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def note(self, line: str) -> None:
        """Print a line (above the live display, if there is one)."""

    def started(self, name: str, detail: str) -> None:
        """A run started executing."""

    def finished(self, name: str, outcome: Outcome) -> None:
        """A run finished executing."""


class _Counts:
    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.running = 0


def _finish_line(name: str, outcome: Outcome) -> str:
    line = f"{outcome.status:<9}  {name}  {duration(outcome.seconds)}"
    if outcome.error:
        line += f"  {outcome.error}"
    return line


class PlainDisplay:
    """One line per event, for logs and pipes."""

    def __init__(self, total: int) -> None:
        self._counts = _Counts(total)
        self._lock = threading.Lock()

    def __enter__(self) -> PlainDisplay:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        sys.stdout.flush()

    def note(self, line: str) -> None:
        """Print ``line``."""
        with self._lock:
            sys.stdout.write(f"{line}\n")
            sys.stdout.flush()

    def started(self, name: str, detail: str) -> None:
        """Print ``started <name> (<detail>)``."""
        with self._lock:
            self._counts.running += 1
        self.note(f"started    {name}  ({detail})")

    def finished(self, name: str, outcome: Outcome) -> None:
        """Print ``[done/total] <status> <name> <time> [error]``."""
        with self._lock:
            counts = self._counts
            counts.running -= 1
            counts.done += 1
            counts.failed += 0 if outcome.ok else 1
            prefix = f"[{counts.done}/{counts.total}]"
        self.note(f"{prefix} {_finish_line(name, outcome)}")


class RichDisplay:
    """A live progress bar with done/failed/running counts, for terminals."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._counts = _Counts(total)
        self._lock = threading.Lock()
        self._console = Console(highlight=False)
        self._progress: Progress = Progress(
            SpinnerColumn(),
            TextColumn("runs"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=self._console,
            transient=False,
        )
        self._task: TaskID = self._progress.add_task("runs", total=total, counts=self._text())

    def _text(self) -> str:
        c = self._counts
        failed = f"[red]{c.failed} failed[/]" if c.failed else "0 failed"
        return f"{c.done - c.failed} ok · {failed} · {c.running} running"

    def __enter__(self) -> RichDisplay:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def note(self, line: str) -> None:
        """Print ``line`` above the bar."""
        self._progress.console.print(line, markup=False)

    def started(self, name: str, detail: str) -> None:
        """Count a running run."""
        with self._lock:
            self._counts.running += 1
            self._progress.update(self._task, counts=self._text())

    def finished(self, name: str, outcome: Outcome) -> None:
        """Count a finished run and print its line."""
        with self._lock:
            counts = self._counts
            counts.running -= 1
            counts.done += 1
            counts.failed += 0 if outcome.ok else 1
            self._progress.update(self._task, advance=1, counts=self._text())
        from rich.text import Text

        style = "green" if outcome.ok else "red"
        rest = f"  {name}  {duration(outcome.seconds)}"
        if outcome.error:
            rest += f"  {outcome.error}"
        self._progress.console.print(Text.assemble((f"{outcome.status:<9}", style), rest))


def make_display(total: int, *, live: bool | None = None) -> Display:
    """A :class:`RichDisplay` when stdout is a terminal (or when ``live``), else a
    :class:`PlainDisplay`."""
    if live is None:
        live = sys.stdout.isatty()
    return RichDisplay(total) if live else PlainDisplay(total)
