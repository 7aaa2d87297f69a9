"""The handle of one generation: an awaitable that resolves exactly once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Generator
from typing import Any

import anyio

from ._checks import check_seconds
from ._exceptions import GenerationCancelled, GenerationTimeout
from ._models import GenerationRequest, GenerationStatus, Video
from ._parsing import status_of

__all__ = ["Generation", "outcome_of", "record_status", "resolve", "resolved"]

logger = logging.getLogger("chuizi_async")


class Generation:
    """A submitted (or tracked) generation. ``await handle`` gives its ``Video``.

    The handle resolves exactly once: to a ``Video``, or to an error such as
    ``GenerationFailed``. Cancelling a task that awaits it does not stop the tracking: the
    generation was paid for, the client keeps checking it and the handle still resolves.

    A handle whose ``id`` is None stands for a request the server never accepted (in
    ``as_completed``): it is already resolved with the reason.

    The client makes the handles (``submit``, ``track``, batches); ``on_resolved`` is for
    their maker, told once the handle resolves, before its done-callbacks.
    """

    __slots__ = (
        "__weakref__",
        "_callback",
        "_callbacks",
        "_on_resolved",
        "_outcome",
        "_status",
        "_waiters",
        "id",
        "index",
        "key",
        "model",
        "request",
    )

    def __init__(
        self,
        generation_id: str | None,
        model: str | None = None,
        request: GenerationRequest | None = None,
        index: int | None = None,
        on_resolved: Callable[[Generation], object] | None = None,
    ) -> None:
        self.id = generation_id
        self.request = request
        self.index = index
        if request is not None:
            self.model: str | None = model if model is not None else request.model
            self.key: str | None = request.key
        else:
            self.model = model
            self.key = None
        self._status: GenerationStatus | Video | None = None  # a done answer: its video
        self._outcome: Video | BaseException | None = None
        # one asyncio future per await (a cancelled awaiter cancels only its own): what an
        # Event does, without its coroutine per wait; the library runs on asyncio only
        self._waiters: list[asyncio.Future[None]] | None = None
        # the first done-callback in a slot of its own: a batch adds one to every handle
        self._callback: Callable[[Generation], object] | None = None
        self._callbacks: list[Callable[[Generation], object]] | None = None
        self._on_resolved = on_resolved  # its owner's (the tracker's): told once it resolves

    def __repr__(self) -> str:
        if self._outcome is None:
            state = "pending"
        elif isinstance(self._outcome, Video):
            state = "completed"
        else:
            state = f"error={type(self._outcome).__name__}"
        return f"<Generation id={self.id!r} model={self.model!r} {state}>"

    @property
    def status(self) -> GenerationStatus | None:
        """The last status answer read for it; None before its first check."""
        status = self._status
        if isinstance(status, Video):  # a done answer, kept as its video until asked
            status = self._status = status_of(status)
        return status

    # -- the awaitable ---------------------------------------------------------------------

    def __await__(self) -> Generator[Any, None, Video]:
        if self._outcome is None:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = [waiter]
            else:
                self._waiters.append(waiter)
            try:
                yield from waiter
            finally:
                if self._outcome is None and self._waiters is not None:  # it went away
                    self._waiters.remove(waiter)
        return self.result()

    async def wait(self, timeout: float | None = None) -> Video:
        """The video, once done. On ``timeout`` raise ``GenerationTimeout``; tracking goes on.

        ``timeout`` 0 only looks; a negative or NaN one is refused (``InvalidRequest``).
        """
        if timeout is not None:
            check_seconds("wait(timeout=...)", timeout, allow_zero=True, allow_inf=True)
        if self._outcome is None and timeout is not None:
            with anyio.move_on_after(timeout):
                return await self
            if self._outcome is None:
                raise GenerationTimeout(
                    self.id, f"not finished after {timeout:g} s; still tracked, await again"
                )
        return await self

    def done(self) -> bool:
        """Whether the handle has resolved (to a video or an error)."""
        return self._outcome is not None

    def cancelled(self) -> bool:
        """Whether ``cancel()`` stopped the tracking of this handle."""
        return isinstance(self._outcome, GenerationCancelled)

    def result(self) -> Video:
        """The video, or the error it ended in; ``InvalidStateError`` while pending."""
        outcome = self._outcome
        if outcome is None:
            raise asyncio.InvalidStateError(f"generation {self.id} is still pending")
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def exception(self) -> BaseException | None:
        """The error it ended in, or None for a video; ``InvalidStateError`` if pending."""
        outcome = self._outcome
        if outcome is None:
            raise asyncio.InvalidStateError(f"generation {self.id} is still pending")
        return outcome if isinstance(outcome, BaseException) else None

    def cancel(self) -> bool:
        """Stop tracking this generation; awaiting it then raises ``GenerationCancelled``.

        The API has **no cancel endpoint**: the server goes on generating, and may bill it.
        Keep ``id`` to ``track()`` it later. Returns False if the handle had already resolved.
        """
        return resolve(self, GenerationCancelled(self.id))

    def add_done_callback(self, callback: Callable[[Generation], object]) -> None:
        """Call ``callback(handle)`` once resolved (at once if it already is)."""
        if self._outcome is not None:
            callback(self)
            return
        if self._callback is None:
            self._callback = callback
        elif self._callbacks is None:
            self._callbacks = [callback]
        else:
            self._callbacks.append(callback)


# -- the owner's side ------------------------------------------------------------------------
# Functions, not methods: a user's handle offers no way to resolve it but cancel(). Its owner
# (the tracker, a batch) resolves it and reads its outcome with these, as asyncio's owner of a
# future calls set_result(); nothing else in the package reaches into a handle.


def resolve(handle: Generation, result: Video | BaseException) -> bool:
    """Set the handle's outcome if none is set yet (the first wins); False if one was."""
    if handle._outcome is not None:
        return False
    handle._outcome = result
    waiters = handle._waiters
    if waiters is not None:
        handle._waiters = None
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
    on_resolved = handle._on_resolved
    if on_resolved is not None:
        on_resolved(handle)
    first = handle._callback
    if first is not None:  # the others come only after a first (add_done_callback)
        more = handle._callbacks
        handle._callback = handle._callbacks = None
        _call(first, handle)
        for callback in more or ():
            _call(callback, handle)
    return True


def _call(callback: Callable[[Generation], object], handle: Generation) -> None:
    try:
        callback(handle)
    except Exception:
        logger.exception("a done-callback of generation %s raised", handle.id)


def record_status(handle: Generation, status: GenerationStatus | Video) -> None:
    """What its last status check read: a status, or the video of a done answer
    (``parse_check``)."""
    handle._status = status


def outcome_of(handle: Generation) -> Video | BaseException | None:
    """The handle's video or error; None while it is pending."""
    return handle._outcome


def resolved(
    generation_id: str | None,
    result: Video | BaseException,
    *,
    model: str | None = None,
    request: GenerationRequest | None = None,
    index: int | None = None,
) -> Generation:
    """A handle that is done from the start: a request the server never accepted (no id),
    one a journal already settled, one accepted as the client closed."""
    handle = Generation(generation_id, model=model, request=request, index=index)
    resolve(handle, result)
    return handle
