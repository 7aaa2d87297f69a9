"""The registry of a client's handles: one per pending generation id, checked by the poller.

The tracker makes the handles the user holds and the poller's entries beside them (an
``asyncio.Future`` split: the ``Generation`` is the read side, the tracker and its poller hold
the write side). A handle that resolves, however (a check, ``cancel()``, the client closing),
leaves the registry at once. The client registers what the server accepted and what
``track()`` asks for; a batch asks it for costs.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from ._clock import now
from ._due import Tracked
from ._generation import Generation, resolve
from ._models import GenerationRequest
from ._poller import Poller, PollerStats

__all__ = ["Tracker"]


@attrs.define(eq=False)
class Tracker:
    """The pending handles of one client (in one event loop) and the poller that checks them."""

    poller: Poller
    # one bound method for every handle (a handle's own would cost memory per generation)
    _forget: Callable[[Generation], None] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._forget = self.poller.forget

    @property
    def stats(self) -> PollerStats:
        return self.poller.stats

    @property
    def pending(self) -> list[Generation]:
        """The handles still pending, oldest first."""
        return [entry.handle for entry in self.poller.entries()]

    def get(self, generation_id: str) -> Generation | None:
        """The pending handle of ``generation_id``, if there is one."""
        entry = self.poller.find(generation_id)
        return entry.handle if entry is not None else None

    def register(
        self,
        generation_id: str,
        model: str | None,
        request: GenerationRequest | None,
        index: int | None = None,
    ) -> Generation:
        """The handle of an accepted (or tracked) id, scheduled like a fresh submission; the
        pending one if the id is tracked already."""
        entry = self.poller.find(generation_id)
        if entry is not None:
            return entry.handle
        handle = Generation(generation_id, model, request, index, self._forget)
        self.poller.add(Tracked(handle, now()), generation_id)
        return handle

    def want_cost(self, handle: Generation) -> None:
        """Resolve ``handle`` with its cost: read from its billing record where its status
        answer has none (a batch with ``max_cost``, the CLI's results). Ask before it is done;
        a handle not pending here is left alone."""
        entry = self.poller.find(handle.id) if handle.id is not None else None
        if entry is not None and entry.handle is handle:
            entry.wants_cost = True

    async def run(self) -> None:
        """Check the pending handles until cancelled (the client's background task)."""
        await self.poller.run()

    def close(self, make_error: Callable[[Generation], BaseException]) -> list[Generation]:
        """Resolve every pending handle with ``make_error(handle)``; returns them."""
        self.poller.stop()
        pending = self.pending
        for handle in pending:
            resolve(handle, make_error(handle))
        return pending
