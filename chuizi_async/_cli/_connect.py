"""How the ``chuizi`` commands reach the API: the key check, the client (or the simulator)."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from .. import Client, InvalidRequest, PollPolicy
from .._retries import RetrySubmissions  # the type of Client(retry_submissions=...)
from ._output import UsageError
from ._progress import Tally

if TYPE_CHECKING:
    from ..testing import FakeChuizi

__all__ = ["check_key", "open_client", "poll_settings", "simulator_rows"]


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


def poll_settings(args: argparse.Namespace, simulate: bool) -> tuple[PollPolicy | None, float]:
    """The policy and the clock's ``time_scale``: ``--poll-interval`` in real seconds, else
    the default policy, on the simulator's clock with ``--simulate``."""
    interval = getattr(args, "poll_interval", None)
    if interval is not None:
        return PollPolicy.every(interval), 1.0
    return None, (args.speed if simulate else 1.0)


@contextlib.asynccontextmanager
async def open_client(
    args: argparse.Namespace, *, simulate: bool
) -> AsyncIterator[tuple[Client, FakeChuizi | None]]:
    """A client of the API, or of an in-process simulator with ``simulate``."""
    policy, time_scale = poll_settings(args, simulate)
    retry_submissions: RetrySubmissions = (
        "safe" if getattr(args, "retry_submissions", None) == "safe" else "idempotent"
    )
    if simulate:
        from ..testing import FakeChuizi

        async with FakeChuizi(speed=args.speed) as server:
            client = Client(
                server.api_key,
                base_url=server.base_url,
                poll=policy,
                time_scale=time_scale,
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
