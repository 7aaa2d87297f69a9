"""What the ``chuizi`` commands share: output, the key check, the client, logging, display."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING

from . import Client, InvalidRequest, PollPolicy
from ._cli_progress import Display, PlainDisplay, Tally
from ._retries import RetrySubmissions

if TYPE_CHECKING:
    from rich.console import Console

    from .testing import FakeChuizi

__all__ = [
    "UsageError",
    "check_key",
    "err",
    "library_logging",
    "make_display",
    "open_client",
    "out",
    "poll_policy",
    "rich_console",
    "simulator_rows",
]


class UsageError(Exception):
    """The command line cannot be right: exit status 2 with this message."""


def out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def err(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def check_key(args: argparse.Namespace) -> None:
    if getattr(args, "simulate", False):
        return
    key = args.api_key if args.api_key is not None else os.environ.get("CHUIZI_API_KEY", "")
    if not key.strip():
        hint = " (or try --simulate, the built-in simulator, which needs none)"
        raise UsageError(
            "no API key: set the CHUIZI_API_KEY environment variable"
            + (hint if hasattr(args, "simulate") else "")
        )


def poll_policy(args: argparse.Namespace, simulate: bool) -> PollPolicy | None:
    interval = getattr(args, "poll_interval", None)
    if interval is not None:
        return PollPolicy.every(interval)
    if simulate:
        return PollPolicy(time_scale=args.speed)
    return None


@contextlib.asynccontextmanager
async def open_client(
    args: argparse.Namespace, *, simulate: bool
) -> AsyncIterator[tuple[Client, FakeChuizi | None]]:
    """A client of the API, or of an in-process simulator with ``simulate``."""
    policy = poll_policy(args, simulate)
    retry_submissions: RetrySubmissions = (
        "safe" if getattr(args, "retry_submissions", None) == "safe" else "idempotent"
    )
    if simulate:
        from .testing import FakeChuizi

        async with FakeChuizi(speed=args.speed) as server:
            client = Client(
                server.api_key,
                base_url=server.base_url,
                poll=policy,
                retry_submissions=retry_submissions,
            )
            async with client:
                yield client, server
        return
    try:
        client = Client(
            args.api_key, base_url=args.base_url, poll=policy, retry_submissions=retry_submissions
        )
    except InvalidRequest as exc:
        raise UsageError(str(exc)) from None
    async with client:
        yield client, None


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


def make_display(console: Console | None) -> Display:
    if console is None:
        return PlainDisplay(sys.stderr)
    from ._cli_progress import LiveDisplay

    return LiveDisplay(console)


def simulator_rows(server: FakeChuizi | None) -> Callable[[Tally], dict[str, str]] | None:
    if server is None:
        return None

    def rows(tally: Tally) -> dict[str, str]:
        counters = server.counters
        clips = max(1, counters.generations_created)
        return {
            "submissions": str(counters.submissions),
            "checks per clip": f"{counters.status_checks / clips:.1f}",
            "simulated time": f"{tally.elapsed * server.speed / 60:.0f} min",
        }

    return rows
