"""What ``chuizi batch`` shows while it runs: a live ``rich`` display on a terminal, else log lines.

Both displays read one :class:`Tally`, which the batch updates from the event loop's thread;
the live display is refreshed from that thread too (``auto_refresh=False``), never from
rich's own refresh thread, so it never reads the client's state while the loop changes it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any, Protocol

import attrs

from ._output import format_duration, format_money

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.live import Live

__all__ = ["Display", "LiveDisplay", "PlainDisplay", "Tally", "make_display"]


@attrs.define(kw_only=True)
class Tally:
    """The counts of one batch run."""

    total: int
    last_line: int = 0  # the highest input line number: the width of the line column
    completed: int = 0
    failed: int = 0
    invalid: int = 0
    not_submitted: int = 0
    uncertain: int = 0  # sent, no answer back: may or may not have created a generation
    processing: int = 0
    accepted_done: int = 0  # finished generations that the server had accepted (any run)
    waited: int = 0  # clips finished in this run after waiting for them (for the rate)
    cost: Decimal = attrs.field(factory=Decimal)
    download_errors: int = 0
    started: float = attrs.field(factory=time.monotonic)

    @property
    def finished(self) -> int:
        return self.completed + self.failed + self.invalid + self.not_submitted + self.uncertain

    @property
    def submitted(self) -> int:
        """Accepted by the server (in this run or an earlier one)."""
        return self.accepted_done + self.processing

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float | None:
        """Clips finished per second in this run, once there is something to measure."""
        elapsed = self.elapsed
        if self.waited == 0 or elapsed <= 0:
            return None
        return self.waited / elapsed

    @property
    def eta(self) -> float | None:
        rate = self.rate
        left = self.total - self.finished
        if left <= 0:
            return 0.0
        return None if rate is None else left / rate

    def counts(self) -> str:
        parts = [
            f"{self.completed} completed",
            f"{self.failed} failed",
            f"{self.invalid} invalid",
            f"{self.not_submitted} not submitted",
        ]
        if self.uncertain:
            parts.append(f"{self.uncertain} uncertain")
        return ", ".join(parts)


class Display(Protocol):
    """How a batch reports its progress."""

    def start(self, tally: Tally) -> None: ...

    def refresh(self, tally: Tally) -> None: ...

    def clip(self, tally: Tally, record: Mapping[str, Any]) -> None: ...

    def note(self, text: str) -> None: ...

    def stop(self) -> None: ...

    def summary(self, tally: Tally, rows: Mapping[str, str]) -> None: ...


_STATUS_WIDTH = len("not_submitted")
_ID_WIDTH = len("gen-") + 24  # the longest documented id; a longer one pushes the rest
_COST_WIDTH = len("$0.15") + 3


def _detail(record: Mapping[str, Any]) -> str:
    error = record.get("error")
    if record["status"] == "completed":
        text = str(record.get("file") or record.get("video_url") or "")
        if error:
            text += f"  ({error['message']})"
        return text
    return str(error["message"]) if error else ""


def _money(raw: object) -> str:
    try:
        return format_money(Decimal(str(raw))) if raw is not None else "-"
    except ArithmeticError:
        return str(raw)


def clip_line(tally: Tally, record: Mapping[str, Any]) -> str:
    """``[ 3/30] line 4   completed     gen-...  $0.15  videos/gen-....mp4``: fixed columns."""
    width = len(str(tally.total))
    line_width = len(str(max(tally.last_line, tally.total)))
    return (
        f"[{tally.finished:>{width}}/{tally.total}] line {record['line']:<{line_width}} "
        f"{record['status']:<{_STATUS_WIDTH}} {record.get('id') or '-':<{_ID_WIDTH}} "
        f"{_money(record.get('cost')):>{_COST_WIDTH}}  {_detail(record)}"
    ).rstrip()


def summary_line(tally: Tally, rows: Mapping[str, str]) -> str:
    extra = "; ".join(f"{name} {value}" for name, value in rows.items())
    return f"{tally.total} clips: {tally.counts()}" + (f"; {extra}" if extra else "")


@attrs.define
class PlainDisplay:
    """Without a terminal: one line per finished clip and a summary line, on ``stream``."""

    stream: IO[str]

    def _write(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def start(self, tally: Tally) -> None:
        pass

    def refresh(self, tally: Tally) -> None:
        pass

    def clip(self, tally: Tally, record: Mapping[str, Any]) -> None:
        self._write(clip_line(tally, record))

    def note(self, text: str) -> None:
        self._write(f"chuizi: {text}")

    def stop(self) -> None:
        pass

    def summary(self, tally: Tally, rows: Mapping[str, str]) -> None:
        self._write(summary_line(tally, rows))


@attrs.define
class LiveDisplay:
    """On a terminal: a progress bar with the counts, cost, rate and ETA, redrawn in place.

    Completed clips are only counted; failed and invalid ones are also printed above it.
    """

    console: Console
    _live: Live | None = None

    def _render(self, tally: Tally) -> RenderableType:
        from rich.console import Group
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        bar = Table.grid(padding=(0, 1))
        bar.add_column()
        bar.add_column(no_wrap=True)
        bar.add_row(
            ProgressBar(total=max(tally.total, 1), completed=tally.finished, width=50),
            Text(f"{tally.finished}/{tally.total}", style="bold"),
        )
        counts = Text.assemble(
            ("submitted ", "dim"),
            (str(tally.submitted), "bold"),
            ("  processing ", "dim"),
            (str(tally.processing), "bold yellow"),
            ("  completed ", "dim"),
            (str(tally.completed), "bold green"),
            ("  failed ", "dim"),
            (str(tally.failed), "bold red"),
        )
        if tally.invalid or tally.not_submitted:
            counts.append_text(
                Text.assemble(
                    ("  invalid ", "dim"),
                    (str(tally.invalid), "bold magenta"),
                    ("  not submitted ", "dim"),
                    (str(tally.not_submitted), "bold"),
                )
            )
        if tally.uncertain:
            counts.append_text(
                Text.assemble(("  uncertain ", "dim"), (str(tally.uncertain), "bold yellow"))
            )
        rate = tally.rate
        eta = tally.eta
        money = Text.assemble(
            ("cost ", "dim"),
            (format_money(tally.cost), "bold"),
            ("  rate ", "dim"),
            (f"{rate * 60:.1f} clips/min" if rate is not None else "-", "bold"),
            ("  ETA ", "dim"),
            (format_duration(eta) if eta is not None else "-", "bold"),
            ("  elapsed ", "dim"),
            (format_duration(tally.elapsed), ""),
        )
        return Group(bar, counts, money)

    def start(self, tally: Tally) -> None:
        from rich.live import Live

        self._live = Live(
            self._render(tally), console=self.console, auto_refresh=False, transient=False
        )
        self._live.start()

    def refresh(self, tally: Tally) -> None:
        if self._live is not None:
            self._live.update(self._render(tally), refresh=True)

    def clip(self, tally: Tally, record: Mapping[str, Any]) -> None:
        if record["status"] != "completed" or record.get("error"):
            from rich.text import Text

            style = {"failed": "red", "invalid": "magenta"}.get(record["status"], "yellow")
            self.console.print(Text(clip_line(tally, record), style=style))
        self.refresh(tally)

    def note(self, text: str) -> None:
        from rich.text import Text

        self.console.print(Text(text, style="bold"))

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def summary(self, tally: Tally, rows: Mapping[str, str]) -> None:
        from rich.table import Table

        table = Table(title="chuizi batch", show_header=False, title_style="bold")
        table.add_column(style="dim")
        table.add_column(style="bold")
        table.add_row("clips", str(tally.total))
        table.add_row("completed", str(tally.completed))
        table.add_row("failed", str(tally.failed))
        table.add_row("invalid", str(tally.invalid))
        table.add_row("not submitted", str(tally.not_submitted))
        if tally.uncertain:
            table.add_row("uncertain", str(tally.uncertain))
        for name, value in rows.items():
            table.add_row(name, value)
        self.console.print(table)


def make_display(console: Console | None) -> Display:
    if console is None:
        return PlainDisplay(sys.stderr)
    return LiveDisplay(console)
