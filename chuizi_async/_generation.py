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

__all__ = ["Generation"]

logger = logging.getLogger("chuizi_async")


class Generation:
    """A submitted (or tracked) generation. ``await handle`` gives its ``Video``.

    The handle resolves exactly once: to a ``Video``, or to an error such as
    ``GenerationFailed``. Cancelling a task that awaits it does not stop the tracking: the
    generation was paid for, the client keeps checking it and the handle still resolves.

    A handle whose ``id`` is None stands for a request the server never accepted (in
    ``as_completed``): it is already resolved with the reason.
    """

    __slots__ = (
        "__weakref__",
        "_callbacks",
        "_checks",
        "_due",
        "_event",
        "_failures",
        "_on_resolved",
        "_outcome",
        "_scout",
        "_submitted_at",
        "_wants_cost",
        "id",
        "index",
        "key",
        "model",
        "request",
        "status",
    )

    def __init__(
        self,
        generation_id: str | None,
        *,
        model: str | None = None,
        request: GenerationRequest | None = None,
        submitted_at: float = 0.0,
        index: int | None = None,
    ) -> None:
        self.id = generation_id
        self.model = model if model is not None else (request.model if request else None)
        self.request = request
        self.index = index
        self.key: str | None = request.key if request is not None else None
        self.status: GenerationStatus | None = None
        self._outcome: Video | BaseException | None = None
        # asyncio's, not anyio's: made for each awaited handle, and anyio.Event() looks up
        # the running async library each time (8x the cost); the library runs on asyncio only
        self._event: asyncio.Event | None = None
        self._callbacks: list[Callable[[Generation], object]] | None = None
        self._on_resolved: Callable[[Generation], object] | None = None  # the poller's
        self._submitted_at = submitted_at
        self._checks = 0
        self._due = 0.0
        self._scout = False
        self._failures = 0
        self._wants_cost = False  # look up a cost the status answer lacks (see Poller)

    def __repr__(self) -> str:
        if self._outcome is None:
            state = "pending"
        elif isinstance(self._outcome, Video):
            state = "completed"
        else:
            state = f"error={type(self._outcome).__name__}"
        return f"<Generation id={self.id!r} model={self.model!r} {state}>"

    # -- the awaitable ---------------------------------------------------------------------

    def __await__(self) -> Generator[Any, None, Video]:
        return self.wait().__await__()

    async def wait(self, timeout: float | None = None) -> Video:
        """The video, once done. On ``timeout`` raise ``GenerationTimeout``; tracking goes on.

        ``timeout`` 0 only looks; a negative or NaN one is refused (``InvalidRequest``).
        """
        if timeout is not None:
            check_seconds("wait(timeout=...)", timeout, allow_zero=True, allow_inf=True)
        if self._outcome is None:
            if self._event is None:
                self._event = asyncio.Event()
            if timeout is None:
                await self._event.wait()
            else:
                with anyio.move_on_after(timeout):
                    await self._event.wait()
                if self._outcome is None:
                    raise GenerationTimeout(
                        self.id, f"not finished after {timeout:g} s; still tracked, await again"
                    )
        return self.result()

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
        return self._resolve(GenerationCancelled(self.id))

    def add_done_callback(self, callback: Callable[[Generation], object]) -> None:
        """Call ``callback(handle)`` once resolved (at once if it already is)."""
        if self._outcome is not None:
            callback(self)
            return
        if self._callbacks is None:
            self._callbacks = []
        self._callbacks.append(callback)

    # -- for the client and poller ---------------------------------------------------------

    def _resolve(self, outcome: Video | BaseException) -> bool:
        """Set the outcome if none is set yet; the first outcome wins."""
        if self._outcome is not None:
            return False
        self._outcome = outcome
        if self._event is not None:
            self._event.set()
        if self._on_resolved is not None:
            self._on_resolved(self)
        callbacks, self._callbacks = self._callbacks, None
        for callback in callbacks or ():
            try:
                callback(self)
            except Exception:
                logger.exception("a done-callback of generation %s raised", self.id)
        return True
