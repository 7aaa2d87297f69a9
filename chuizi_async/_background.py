"""The client's background tasks: one owner (a nursery, in trio's sense) per event loop.

The rule, trio's: a task runs in the narrowest task group that outlives it. Work a call
finishes before it returns runs in a group of the caller's (``generate_many``'s submitter,
a batch's workers, the poller's checks). Work that outlives the call that starts it runs
here, and the caller waits for what concerns it:

- the poller (``Poller.run``), from the moment the client opens until ``aclose()``;
- each submission of ``submit()``: the caller waits for the answer; once the request is on
  the wire it goes on after the caller is cancelled (an accepted generation must be
  tracked; a native ``task.cancel()`` of the caller cannot reach it here);
- ``as_completed``'s submitter, which runs between the caller's ``__anext__`` calls: the
  caller stops it and waits for it when it leaves the block (or on ``aclose()``).

``aclose()`` cancels them all and waits for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVarTuple, Unpack

import anyio
import anyio.abc
import anyio.lowlevel

__all__ = ["BackgroundTasks"]

PosArgsT = TypeVarTuple("PosArgsT")


class BackgroundTasks:
    """One anyio task group, hosted by one task in the event loop the client is open in.

    The host task is the one task made with ``asyncio`` itself: a client opens lazily
    (``track()`` is synchronous, ``await client.submit()`` needs no ``async with``), so no
    caller's cancel scope can hold the group. It is owned all the same: ``aclose()`` cancels and
    awaits it. When the event loop ends under it (``asyncio.run`` returns, a test's loop
    closes), ``on_loop_end`` is called and ``release`` closes what belonged to that loop;
    the next ``open`` starts again in another loop.

    :param on_loop_end: the loop is ending, the client open in it (pending handles resolve).
    :param release: closes what belongs to the ended loop (the connections).
    :param on_crash: the host task raised (a bug): told the error.
    """

    def __init__(
        self,
        *,
        on_loop_end: Callable[[], None],
        release: Callable[[], Awaitable[None]],
        on_crash: Callable[[BaseException], None],
    ) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None  # the one it is open in
        self._on_loop_end = on_loop_end
        self._release = release
        self._on_crash = on_crash
        self._host: asyncio.Task[None] | None = None
        self._group: anyio.abc.TaskGroup | None = None
        self._ready = anyio.Event()
        self._closing = False

    def open(
        self,
        loop: asyncio.AbstractEventLoop,
        first: Callable[[], Coroutine[Any, Any, object]],
        *,
        name: str,
    ) -> None:
        """Start the host task in ``loop`` (the running one); ``first`` (the poller, a task
        called ``name``) is started before ``ready``, so before anything else."""
        if self._host is not None or self._closing:
            raise RuntimeError("the client's background tasks are already open, or closed")
        if self._ready.is_set():  # an earlier loop's: a fresh event for this one
            self._ready = anyio.Event()
        self.loop = loop
        host = self._run(first, name)
        self._host = loop.create_task(host, name="chuizi-async background tasks")
        self._host.add_done_callback(self._host_done)

    def check_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """``RuntimeError`` if the tasks are open in an event loop other than ``loop``."""
        if self.loop is None or loop is self.loop:
            return
        where = (
            "another event loop, which is still running (in another thread)"
            if self.loop.is_running()
            else "another event loop, which stopped without cancelling the client's task"
        )
        raise RuntimeError(
            f"this Client is open in {where}: its connections and poller belong to that loop. "
            "Use one Client per event loop, or close it (leave `async with Client()`, or "
            "`await client.aclose()`) in the loop that opened it. A client whose loop ended "
            "the usual way (asyncio.run returned) opens again in the next one."
        )

    @property
    def ready(self) -> bool:
        """The task group is open and ``first`` is started."""
        return self._group is not None and self._ready.is_set()

    async def wait_ready(self) -> None:
        await self._ready.wait()

    def start_soon(
        self,
        func: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, object]],
        *args: *PosArgsT,
        name: object = None,
    ) -> None:
        """Run ``func(*args)`` in the task group: cancelled and awaited by ``aclose()``.

        ``func`` must not raise but for cancellation (its error would end every task of
        the client): hand an error to whoever waits for it instead.
        """
        group = self._group
        if group is None:
            raise RuntimeError(
                "the client's background tasks are not running: the client is closed, or "
                "not open in this event loop"
            )
        group.start_soon(func, *args, name=name)

    async def aclose(self) -> None:
        """Cancel every task and wait for them (a shielded part finishes first)."""
        self._closing = True
        host, self._group = self._host, None
        if host is not None:
            host.cancel()
            await asyncio.wait([host])

    async def _run(self, first: Callable[[], Coroutine[Any, Any, object]], name: str) -> None:
        try:
            # A loop that ends at once (track() and return) then finds no child unstarted;
            # and ``first`` runs before anyone is told the tasks are ready.
            await anyio.lowlevel.checkpoint()
            async with anyio.create_task_group() as group:
                self._group = group
                group.start_soon(first, name=name)
                await anyio.lowlevel.checkpoint()
                self._ready.set()
        except asyncio.CancelledError:
            if not self._closing:  # cancelled by its event loop's end, not aclose()
                with anyio.CancelScope(shield=True):
                    self._forget()
                    await self._release()
            raise

    def _forget(self) -> None:
        self.loop = self._host = self._group = None
        self._on_loop_end()

    def _host_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            if self._host is task and not self._closing:
                self._forget()  # cancelled before it ran: nothing of the loop to close
            return
        exc = task.exception()
        if exc is not None:
            self._on_crash(exc)
