"""How the ``chuizi`` commands speak: stdout and stderr, money and durations, rich, logging."""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from .._report import format_money

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "UsageError",
    "err",
    "format_duration",
    "format_money",
    "library_logging",
    "out",
    "rich_console",
]


class UsageError(Exception):
    """The command line cannot be right: exit status 2 with this message."""


def out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def format_duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def rich_console(*, stderr: bool = False) -> Console | None:
    """A rich console when the output is a terminal and rich is installed, else None."""
    if not sys.stdout.isatty():
        return None
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console(stderr=stderr)


@contextlib.contextmanager
def library_logging(verbose: bool, console: Console | None) -> Iterator[None]:
    """Show the library's warnings (and with -v its debug log) above the display."""
    logger = logging.getLogger("chuizi_async")
    handler: logging.Handler
    if console is not None:
        from rich.logging import RichHandler

        handler = RichHandler(console=console, show_time=False, show_path=False)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("chuizi: %(levelname)s: %(message)s"))
    handler.setLevel(logging.DEBUG if verbose else logging.WARNING)
    level = logger.level
    if verbose:
        logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
