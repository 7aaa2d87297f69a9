"""A client's life across event loops: UNOPENED, OPENED (in one loop), CLOSED.

A client opens lazily, in the running event loop, at its first use (``track()`` is
synchronous, ``await client.submit()`` needs no ``async with``), and then belongs to that
loop. When the loop ends under it (``asyncio.run`` returns, a test's loop closes), what is
pending resolves with ``ClientClosed`` and the next use, in another loop, opens it again:
with a new tracker (a poller belongs to its loop) and fresh budget events, keeping what the
client learned. ``aclose()`` ends it for good. This module holds that state, the background
tasks (``BackgroundTasks``) and the current tracker, so that ``Client`` only asks it to open,
to register or track a handle, and to close.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable

from ._background import BackgroundTasks
from ._budget import RequestBudget
from ._exceptions import ChuiziError, ClientClosed, InvalidRequest
from ._generation import Generation, resolved
from ._models import GenerationRequest
from ._poller import PollerStats
from ._tracker import Tracker
from ._transport import Transport

__all__ = ["Lifecycle"]

logger = logging.getLogger("chuizi_async")


class _State(enum.Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


class Lifecycle:
    """Opens a client in the running event loop, reopens it in the next, closes it once.

    :param new_tracker: a tracker with a new poller, counting into the stats it is given.
    :param budget: the client's request budget (its events are renewed in each new loop).
    :param transport: the client's connections (closed with the loop they belong to).
    """

    def __init__(
        self,
        *,
        new_tracker: Callable[[PollerStats], Tracker],
        budget: RequestBudget,
        transport: Transport,
    ) -> None:
        self._state = _State.UNOPENED
        self._opened_once = False
        self._new_tracker = new_tracker
        self._budget = budget
        self._transport = transport
        self.tracker = new_tracker(PollerStats())  # this loop's (replaced in the next one)
        self.background = BackgroundTasks(
            on_loop_end=self._forget_loop,
            release=self._release_loop,
            on_crash=self._poller_crashed,
        )

    @property
    def closed(self) -> bool:
        return self._state is _State.CLOSED

    def describe(self) -> str:
        """The state, for the client's ``repr``."""
        state = self._state.name.lower()
        loop = self.background.loop
        if self._state is _State.OPENED and loop is not None and loop.is_closed():
            state += " in an event loop that is closed"
        elif self._state is _State.UNOPENED and self._opened_once:
            state += " (its event loop ended; the next use opens it again)"
        return state

    async def ensure_open(self) -> None:
        """Open in the running event loop (if not yet) and wait until the tasks run."""
        if self._state is _State.CLOSED:
            raise RuntimeError("this Client is closed; create a new one")
        loop = asyncio.get_running_loop()
        if self._state is _State.UNOPENED:
            self._open_in(loop)
        else:
            self.background.check_loop(loop)
        if not self.background.ready:
            await self.background.wait_ready()

    def open_soon(self, caller: str) -> None:
        """``ensure_open`` for synchronous code: the tasks start soon, in the running loop.

        ``caller`` names the method in the error raised outside an event loop.
        """
        if self._state is _State.CLOSED:
            raise RuntimeError("this Client is closed; create a new one")
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                f"{caller} needs a running event loop (call it from async code)"
            ) from None
        if self._state is _State.UNOPENED:
            self._open_in(loop)  # the poller starts with the background tasks, soon
        elif loop is not self.background.loop:
            self.background.check_loop(loop)

    def register(
        self,
        gen_id: str,
        model: str | None,
        request: GenerationRequest | None,
        index: int | None = None,
    ) -> Generation:
        """The handle of an accepted id (``Register``): tracked, or, once the client is
        closed (a submission ``aclose()`` waited for), resolved at once with ``ClientClosed``."""
        if self._state is _State.CLOSED and self.tracker.get(gen_id) is None:
            return resolved(gen_id, ClientClosed(gen_id), model=model, request=request, index=index)
        return self.tracker.register(gen_id, model, request, index)

    def track(self, generation_id: str, model: str | None) -> Generation:
        """``Client.track``: an id accepted elsewhere, registered from synchronous code."""
        gen_id = generation_id.strip() if isinstance(generation_id, str) else ""
        if not gen_id:
            raise InvalidRequest("track() needs a generation id such as 'gen-0123456789abcdef'")
        self.open_soon("track()")
        return self.register(gen_id, model, None)

    def want_cost(self, handle: Generation) -> None:
        """``Tracker.want_cost`` of the current loop's tracker (a batch asks it)."""
        self.tracker.want_cost(handle)

    async def aclose(self, drain: Callable[[], Awaitable[None]]) -> None:
        """Close for good: ``drain()`` (the submissions on the wire) first, then the tasks,
        the pending handles (``ClientClosed``) and the connections."""
        if self._state is _State.CLOSED:
            return
        if self._state is _State.OPENED:
            self.background.check_loop(asyncio.get_running_loop())
        self._state = _State.CLOSED
        await drain()
        await self.background.aclose()
        closed = self.tracker.close(lambda h: ClientClosed(h.id))
        if closed:
            logger.info(
                "client closed with %d generations pending; track() them elsewhere: %s",
                len(closed),
                " ".join(str(h.id) for h in closed),
            )
        await self._transport.aclose()

    def _open_in(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the background tasks in ``loop``; after an earlier loop ended, with a new
        poller and budget events (theirs belonged to that loop; what was learned is kept)."""
        if self._opened_once:
            self.tracker = self._new_tracker(self.tracker.stats)
            self._budget.new_event_loop()
        self._opened_once = True
        self._state = _State.OPENED
        self.background.open(loop, self.tracker.run, name="chuizi-async poller")

    def _forget_loop(self) -> None:
        """The event loop is ending under the open client (``asyncio.run`` returns, a test's
        loop closes): the next use, in another loop, reopens.

        What is still pending resolves with ``ClientClosed``, its id logged: ``track()``
        resumes it. A submission still on the wire was cancelled by the loop's end with every
        other task (no anyio shield holds against that); its ``Idempotency-Key`` was logged.
        """
        if self._state is not _State.OPENED:
            return  # aclose() is under way: it resolves what is pending itself
        closed = self.tracker.close(
            lambda h: ClientClosed(
                h.id, "the client's event loop ended while it was pending; track(id) resumes it"
            )
        )
        self._state = _State.UNOPENED
        if closed:
            logger.warning(
                "the event loop ended with %d generations pending; track() them: %s",
                len(closed),
                " ".join(str(h.id) for h in closed),
            )

    async def _release_loop(self) -> None:
        if self._state is _State.UNOPENED:  # forgotten, not closing: its connections go
            await self._transport.aclose()

    def _poller_crashed(self, exc: BaseException) -> None:
        logger.error("the chuizi_async poller stopped on an error", exc_info=exc)
        self.tracker.close(lambda h: ChuiziError(f"{h.id}: the poller stopped: {exc!r}"))
