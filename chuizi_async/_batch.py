"""Many generations at once: ``generate_many`` (input order) and ``as_completed``.

Both stand on one submitter that sends requests in input order, keeps at most
``concurrency`` generations in flight, and stops submitting at the first 402: the requests
not yet sent then resolve with ``InsufficientBalanceError`` without a request, while every
generation already accepted is tracked to its end.
"""

from __future__ import annotations

import collections
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from ._exceptions import ChuiziError, InsufficientBalanceError, InvalidRequest
from ._generation import Generation
from ._models import GenerationRequest, Video
from ._validation import validate

if TYPE_CHECKING:
    from types import TracebackType

    from ._client import Client

__all__ = ["AsCompleted", "BatchSubmitter", "generate_many"]

logger = logging.getLogger("chuizi_async")

RequestLike = GenerationRequest | Mapping[str, Any]


def _unsent(index: int, request: GenerationRequest | None, error: BaseException) -> Generation:
    """A handle for a request the server never accepted, already resolved with the reason."""
    handle = Generation(None, request=request, index=index)
    handle._resolve(error)
    return handle


class BatchSubmitter:
    """Submits a batch in input order; ``on_handle`` gets each handle (accepted or not)."""

    def __init__(
        self,
        client: Client,
        requests: Iterable[RequestLike],
        *,
        concurrency: int | None,
        on_handle: Callable[[Generation], object],
    ) -> None:
        if concurrency is not None and (isinstance(concurrency, bool) or concurrency < 1):
            raise InvalidRequest(
                f"concurrency must be a positive integer or None, not {concurrency!r}"
            )
        self._client = client
        self._requests = requests
        self._limit = concurrency if concurrency is not None else math.inf
        self._on_handle = on_handle
        self._active = 0
        self._changed = anyio.Event()
        self._posts = anyio.Semaphore(client._max_connections)
        self.stopped_by: InsufficientBalanceError | None = None
        self.accepted: list[Generation] = []
        self.emitted = 0

    async def run(self) -> None:
        """Submit every request; returns once each has a handle."""
        async with anyio.create_task_group() as tg:
            for index, item in enumerate(self._requests):
                await self._wait_for_room()
                if self.stopped_by is not None:
                    self._emit(_unsent(index, _coerced(item), self._balance_error()))
                    continue
                self._active += 1
                await self._posts.acquire()
                tg.start_soon(self._submit_one, index, item)

    async def _wait_for_room(self) -> None:
        while self._active >= self._limit and self.stopped_by is None:
            self._changed = anyio.Event()
            await self._changed.wait()

    def _balance_error(self) -> InsufficientBalanceError:
        assert self.stopped_by is not None
        first = self.stopped_by
        return InsufficientBalanceError(
            402, f"not submitted: {first.message}", first.error_type, code=first.code
        )

    async def _submit_one(self, index: int, item: RequestLike) -> None:
        request = None
        try:
            request = GenerationRequest.coerce(item)
            handle = await self._client.submit_request(
                request, index=index, on_accepted=self.accepted.append
            )
        except InsufficientBalanceError as exc:
            if self.stopped_by is None:
                logger.warning("balance exhausted: no further submissions in this batch")
                self.stopped_by = exc
            handle = _unsent(index, request, exc)
        except ChuiziError as exc:
            handle = _unsent(index, request, exc)
        finally:
            self._posts.release()
        self._emit(handle, held_place=True)

    def _emit(self, handle: Generation, *, held_place: bool = False) -> None:
        self.emitted += 1
        if held_place:
            handle.add_done_callback(self._free_place)
        self._on_handle(handle)

    def _free_place(self, handle: Generation) -> None:
        self._active -= 1
        self._changed.set()


def _coerced(item: RequestLike) -> GenerationRequest | None:
    try:
        return GenerationRequest.coerce(item)
    except InvalidRequest:
        return None


def _prevalidate(items: list[RequestLike]) -> None:
    """Refuse the whole batch before any money is spent if one request cannot be right."""
    for index, item in enumerate(items):
        try:
            validate(GenerationRequest.coerce(item))
        except InvalidRequest as exc:
            raise InvalidRequest(f"request {index}: {exc}") from None


async def generate_many(
    client: Client,
    requests: Iterable[RequestLike],
    *,
    concurrency: int | None = None,
    return_exceptions: bool = False,
) -> list[Video | BaseException]:
    """Generate every request; results in input order.

    With ``return_exceptions=True`` each failure takes its place in the list. Without it,
    the whole batch is validated first (``InvalidRequest`` names the index, nothing sent),
    and the first error raises as soon as it happens: no further request is submitted, and
    the generations already accepted **stay tracked** by the client (``client.pending``);
    the error's notes list their ids.
    """
    items = list(requests)
    if not return_exceptions:
        _prevalidate(items)
    results: list[Video | BaseException | None] = [None] * len(items)
    remaining = len(items)
    first_error: BaseException | None = None
    finished = anyio.Event()

    def on_done(handle: Generation) -> None:
        nonlocal remaining, first_error
        assert handle.index is not None
        error = handle.exception()
        results[handle.index] = error if error is not None else handle.result()
        remaining -= 1
        if error is not None and not return_exceptions and first_error is None:
            first_error = error
            finished.set()
        if remaining == 0:
            finished.set()

    submitter = BatchSubmitter(
        client,
        items,
        concurrency=concurrency,
        on_handle=lambda handle: handle.add_done_callback(on_done),
    )
    if items:
        async with anyio.create_task_group() as tg:
            tg.start_soon(submitter.run)
            await finished.wait()
            tg.cancel_scope.cancel()
    if first_error is not None:
        still = [h.id for h in submitter.accepted if not h.done() and h.id is not None]
        if still:
            first_error.add_note(
                f"{len(still)} generation(s) of this batch were accepted and are still tracked "
                f"by the client (client.pending): {', '.join(still)}"
            )
        raise first_error
    return [r for r in results if r is not None]


class AsCompleted:
    """Finished handles in completion order while the batch is still being submitted.

    The submitter runs in the client's own task group. Leave early with ``async with``
    (or ``aclose()``) to stop further submissions; what was accepted stays tracked.
    """

    def __init__(
        self, client: Client, requests: Iterable[RequestLike], *, concurrency: int | None
    ) -> None:
        self._client = client
        self._ready: collections.deque[Generation] = collections.deque()
        self._arrived = anyio.Event()
        self._closed = False
        self._submitter = BatchSubmitter(
            client, requests, concurrency=concurrency, on_handle=self._watch
        )
        self._started = False
        self._submitting_done = False
        self._resolved = 0
        self._scope: anyio.CancelScope | None = None
        self._stopped = anyio.Event()
        self._error: BaseException | None = None

    @property
    def stopped_by(self) -> InsufficientBalanceError | None:
        """The 402 that stopped submissions, if one did."""
        return self._submitter.stopped_by

    @property
    def accepted(self) -> list[Generation]:
        """Handles the server accepted so far."""
        return list(self._submitter.accepted)

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
            self._arrived = anyio.Event()
            await self._arrived.wait()
        return self._ready.popleft()

    def _all_delivered(self) -> bool:
        return self._submitting_done and self._resolved >= self._submitter.emitted

    async def _start(self) -> None:
        if not self._started:
            self._started = True
            await self._client._ensure_open()
            self._client._spawn(self._run)

    async def _run(self) -> None:
        try:
            with anyio.CancelScope() as self._scope:
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
        if self._scope is not None:
            self._scope.cancel()
        if self._started and not self._client.closed:
            await self._stopped.wait()
        self._closed = True
        self._ready.clear()
        self._arrived.set()
