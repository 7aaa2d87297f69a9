"""One timer for every status check in flight: abandon those unanswered after a timeout.

A cancel scope with a deadline around each check would cost a timer and a cancel scope's
bookkeeping on every check, the hot path. Instead each poller worker runs in a cancel scope of
its own, which only the watchdog cancels, and says what it waits for and since when: the watchdog
sleeps until the oldest of those is due, and not at all while no check is in flight.
"""

from __future__ import annotations

import math
from typing import Generic, TypeVar

import anyio
import attrs

from ._clock import now

__all__ = ["Watchdog", "Watched"]

T = TypeVar("T")


@attrs.define(eq=False, weakref_slot=False)
class Watched(Generic[T]):
    """A worker as the watchdog sees it: what it waits for, since when, in which cancel scope."""

    cancel_scope: anyio.CancelScope = attrs.field(factory=anyio.CancelScope)
    waiting_for: T | None = None
    since: float = 0.0
    abandoned: T | None = None  # what the watchdog gave up on (its cancel scope cancelled)


@attrs.define(eq=False)
class Watchdog(Generic[T]):
    """Cancels the cancel scope of each worker that has waited ``timeout`` seconds or more."""

    timeout: float
    idle: anyio.Event | None = None
    """Waited on while nothing is in flight: a worker that starts waiting calls ``wake``."""
    _workers: list[Watched[T]] = attrs.field(factory=list, init=False)

    def watch(self) -> Watched[T]:
        """A new worker to watch (it enters ``cancel_scope``, and a new one after each cancel)."""
        worker: Watched[T] = Watched()
        self._workers.append(worker)
        return worker

    def wake(self) -> None:
        if self.idle is not None:
            self.idle.set()
            self.idle = None

    async def run(self) -> None:
        while True:
            current, oldest = now(), math.inf
            for worker in self._workers:
                if worker.waiting_for is None:
                    continue
                if current - worker.since >= self.timeout:
                    worker.abandoned, worker.waiting_for = worker.waiting_for, None
                    worker.cancel_scope.cancel()
                else:
                    oldest = min(oldest, worker.since)
            if oldest < math.inf:
                await anyio.sleep(oldest + self.timeout - current)
            else:
                self.idle = idle = anyio.Event()
                await idle.wait()
