"""``as_completed``: a batch's handles in completion order, while it is still submitting."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Iterable, Mapping
from decimal import Decimal
from types import TracebackType

import anyio

from ._batch import BatchParts, BatchSubmitter, RequestLike
from ._batch_journal import JournalLike, opened
from ._exceptions import APIConnectionError, APIError
from ._generation import Generation

__all__ = ["AsCompleted"]


class AsCompleted:
    """Finished handles in completion order while the batch is still being submitted.

    The submitter runs in the client's own task group (``parts.start_soon``). Leave early with
    ``async with`` (or ``aclose()``) to stop further submissions; what was accepted stays
    tracked.
    """

    def __init__(
        self,
        parts: BatchParts,
        requests: Iterable[RequestLike],
        *,
        concurrency: int | None,
        journal: JournalLike | None = None,
        max_cost: Decimal | None = None,
        fetch_costs: bool = False,
    ) -> None:
        self._parts = parts
        self._journal = journal
        self._ready: collections.deque[Generation] = collections.deque()
        self._arrived = asyncio.Event()  # one per handle yielded: asyncio's is the cheap one
        self._closed = False
        self._submitter = BatchSubmitter(
            parts,
            requests,
            concurrency=concurrency,
            on_handle=self._watch,
            max_cost=max_cost,
            fetch_costs=fetch_costs,
        )
        self._started = False
        self._submitting_done = False
        self._resolved = 0
        self._cancel_scope: anyio.CancelScope | None = None
        self._stopped = anyio.Event()
        self._error: BaseException | None = None

    @property
    def stopped_by(self) -> APIError | APIConnectionError | None:
        """What stopped submissions, if anything did: a 402, a 403 for the key's daily
        spending cap (``code == "daily_limit_exceeded"``), or an ``APIConnectionError`` when
        the server could not be reached (see ``unreachable``)."""
        return self._submitter.stopped_by

    @property
    def stopped_models(self) -> Mapping[str, APIError]:
        """Models whose submissions stopped, by model: the 403 that refused each."""
        return dict(self._submitter.stopped_models)

    @property
    def accepted(self) -> list[Generation]:
        """Handles the server accepted so far."""
        return list(self._submitter.accepted)

    @property
    def spent(self) -> Decimal:
        """The cost of the videos of this batch so far (journaled ones included); with
        ``max_cost``, a video whose cost could not be learned counts its estimate."""
        return self._submitter.cost.spent

    def stop_submitting(self, reason: str = "interrupted") -> None:
        """Send nothing more; what is not sent yet resolves with ``NotSubmitted``.

        Generations already accepted are still tracked and yielded (a first Ctrl-C).
        """
        self._submitter.stop(reason)

    async def __aenter__(self) -> AsCompleted:
        await self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsCompleted:
        return self

    async def __anext__(self) -> Generation:
        await self._start()
        while not self._ready:
            if self._closed or self._all_delivered():
                if self._error is not None:
                    error, self._error = self._error, None
                    raise error
                raise StopAsyncIteration
            self._arrived = asyncio.Event()
            await self._arrived.wait()
        return self._ready.popleft()

    def _all_delivered(self) -> bool:
        submitter = self._submitter
        return (
            self._submitting_done
            and submitter.in_flight == 0
            and self._resolved >= submitter.emitted
        )

    async def _start(self) -> None:
        if not self._started:
            self._started = True
            await self._parts.ensure_open()
            self._parts.start_soon(self._run)

    async def _run(self) -> None:
        try:
            with anyio.CancelScope() as self._cancel_scope, opened(self._journal) as journal:
                self._submitter.journal = journal
                await self._submitter.run()
        except Exception as exc:  # the caller's iterable raised: hand it to the consumer
            self._error = exc
        finally:
            self._submitting_done = True
            self._stopped.set()
            self._arrived.set()

    def _watch(self, handle: Generation) -> None:
        handle.add_done_callback(self._deliver)

    def _deliver(self, handle: Generation) -> None:
        self._resolved += 1
        if not self._closed:
            self._ready.append(handle)
        self._arrived.set()

    async def aclose(self) -> None:
        """Stop submitting; handles already accepted stay tracked by the client."""
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()
        if self._started and not self._parts.submitter.closed:
            await self._stopped.wait()
        self._closed = True
        self._ready.clear()
        self._arrived.set()
