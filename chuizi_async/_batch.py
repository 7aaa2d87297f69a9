"""Many generations at once: the submitter under ``generate_many`` and ``as_completed``.

It sends requests in input order and keeps at most ``concurrency`` generations in flight. It
holds requests back when they would pass ``max_cost`` (``CostLimitExceeded``, see ``_cost``)
or after ``stop()`` (``NotSubmitted``). It stops submitting at the first 402 or 403
``daily_limit_exceeded``: the requests not yet sent then resolve with the same kind of error
without a request; another 403 does the same for the requests of its model only. It stops too
when the server cannot be reached at all (see ``_batch_stops``): until one submission has been
answered, one goes out at a time, so that an unreachable server costs one request's retries,
not every request's. Every generation already accepted is tracked to its end. With a journal,
each request is looked up before anything is sent (see ``_batch_journal``), and a submission
refused for good is journaled as failed.

A batch works with its client's parts (``BatchParts``), given as httpx gives a client its
transport: it never sees the ``Client``.
"""

from __future__ import annotations

import asyncio
import enum
import functools
import math
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

import anyio
import anyio.abc
import anyio.lowlevel
import attrs

from ._batch_journal import JournaledRequest, RequestKeys, sent_before, settle
from ._batch_stops import Stops, not_sent
from ._cost import WAIT, CostGuard
from ._exceptions import APIConnectionError, APIError, ChuiziError, InvalidRequest, NotSubmitted
from ._generation import Generation, outcome_of, resolved
from ._ids import new_idempotency_key
from ._journal import Journal
from ._models import GenerationRequest, RemoteModel
from ._submitter import SubmitHere, Submitter

__all__ = ["BatchParts", "BatchSubmitter", "RequestLike", "Track"]

RequestLike = GenerationRequest | Mapping[str, Any]


class _Wait(enum.Enum):
    WAIT = "wait"  # no place yet (or the prices to read first): wait, then look again


def _unsent(
    index: int,
    request: GenerationRequest | None,
    error: BaseException,
    request_key: str | None = None,
) -> Generation:
    """A handle for a request the server never accepted, already resolved with the reason."""
    handle = resolved(None, error, request=request, index=index)
    handle.key = request_key
    return handle


class Track(Protocol):
    """Follow a generation id accepted earlier: its handle (``Client.track``)."""

    def __call__(self, generation_id: str, *, model: str | None = None) -> Generation: ...


@attrs.frozen(kw_only=True)
class BatchParts:
    """What a batch needs of its client.

    :param submitter: sends the submissions (its ``start_workers`` runs the batch's workers).
    :param workers: submissions on the wire at once: the transport's pool size.
    :param track: follows an id a journal says was accepted (``Client.track``).
    :param want_cost: asks the tracker to look up a handle's cost that its status answer
        lacks (``fetch_costs``), before its first check.
    :param list_models: the catalogue, for ``max_cost``'s prices (``Client.list_models``).
    :param ensure_open: opens the client in the running event loop.
    :param start_soon: runs a coroutine function in the client's own task group
        (``as_completed`` submits from there).
    """

    submitter: Submitter
    workers: int
    track: Track
    want_cost: Callable[[Generation], object]
    list_models: Callable[[], Awaitable[Sequence[RemoteModel]]]
    ensure_open: Callable[[], Awaitable[None]]
    start_soon: Callable[[Callable[[], Coroutine[Any, Any, object]]], object]


class BatchSubmitter:
    """Submits a batch in input order; ``on_handle`` gets each handle (accepted or not).

    With a journal, each request is looked up first (see ``JournaledRequest``), and a handle
    is passed on once its outcome is journaled.
    """

    def __init__(
        self,
        parts: BatchParts,
        requests: Iterable[RequestLike],
        *,
        concurrency: int | None,
        on_handle: Callable[[Generation], object],
        journal: Journal | None = None,
        max_cost: Decimal | None = None,
        fetch_costs: bool = False,
    ) -> None:
        if concurrency is not None and (
            not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1
        ):
            raise InvalidRequest(
                f"concurrency must be a positive integer or None, not {concurrency!r}"
            )
        self._parts = parts
        self._safe = parts.submitter.retry_submissions == "safe"
        self._requests = requests
        self._limit = concurrency if concurrency is not None else math.inf
        self._on_handle = on_handle
        self.journal = journal
        self.cost = CostGuard(max_cost)
        self._wants_cost = fetch_costs or max_cost is not None
        self._active = 0
        self._changed = anyio.Event()
        self._waiting = 0  # workers in _changed_wait
        self._request_keys = RequestKeys()
        self._stops = Stops()
        self.stop_reason: NotSubmitted | None = None
        self.accepted: list[Generation] = []
        self.emitted = 0
        self._probing = False  # a submission is out, and none has been answered yet
        # bound once: a method bound per submission would be one more object each
        self._on_done_of = self._on_done
        self._on_accepted = self._accepted

    @property
    def stopped_by(self) -> APIError | APIConnectionError | None:
        """What stopped every submission, if anything did (see ``AsCompleted.stopped_by``)."""
        return self._stops.by

    @property
    def stopped_models(self) -> Mapping[str, APIError]:
        """The 403 that stopped the submissions of a model, by model."""
        return self._stops.models

    @property
    def in_flight(self) -> int:
        """Requests sent or being sent whose generation has not ended yet."""
        return self._active

    def stop(self, reason: str = "interrupted") -> None:
        """No new submission: the requests not yet sent resolve with ``NotSubmitted``."""
        if self.stop_reason is None:
            self.stop_reason = NotSubmitted(f"not submitted: {reason}", reason=reason)
        self._wake()

    async def run(self) -> None:
        """Submit every request; returns once each was sent or held back.

        A pool of workers, as many as the transport has connections, takes the requests in
        input order; each sends its POSTs from its own task (no task per request). Without
        a journal the generations may still be running when this returns (``in_flight``);
        with one, it returns once every outcome is journaled.
        """
        items = enumerate(self._requests)
        async with anyio.create_task_group() as tg:
            work = functools.partial(self._work, items, tg)
            self._parts.submitter.start_workers(tg, self._parts.workers, work)

    async def _work(
        self,
        items: Iterator[tuple[int, RequestLike]],
        tg: anyio.abc.TaskGroup,
        submit_here: SubmitHere,
    ) -> None:
        group = tg.cancel_scope
        while True:
            # Cancelled (the caller went away, another worker failed)? Then here, before the
            # next request: a worker whose requests are answered at once never waits anywhere
            # unshielded. One attribute (checkpoint_if_cancelled() walks every scope up).
            if group.cancel_called:
                await anyio.lowlevel.checkpoint()
            if submit_here.gave_up:  # aclose() gave up on this worker's last submission
                return
            # Until the server has answered a submission, one goes out at a time: the
            # next request is not even taken while one is out (so input order holds).
            while self._probing and not self._stops.answered:
                await self._changed_wait()
            item_of = next(items, None)
            if item_of is None:
                return
            index, item = item_of
            request, request_key, error = self._prepare(item)
            sent = self.journal is not None and sent_before(
                self.journal, request_key, safe=self._safe
            )
            probe = error is None and not sent and not self._stops.answered
            self._probing = self._probing or probe
            try:
                if error is None:
                    room = self._room(request, sent)  # the common case, without a frame
                    if room is _Wait.WAIT:
                        room = await self._wait_for_room(request, sent=sent)
                    error = room
                if error is not None:
                    self._emit(_unsent(index, request, error, request_key))
                    await asyncio.sleep(0)  # nothing sent: let the others run
                    continue
                assert request is not None
                self._active += 1
                if self.cost.max_cost is not None:  # else nothing reads what is in flight
                    self.cost.start(index, request)
                try:
                    handle = await self._obtain(index, request, request_key, submit_here)
                except BaseException:
                    self._finish(index, None)
                    raise
                self._follow(handle, index, request_key, tg)
                # No yield here: a submission suspended at its I/O. Going straight on to the
                # next one interleaves the objects one answer frees with those the next
                # request makes, which keeps the garbage collector's count low (a yield
                # here put every answer of a loop turn before every send: measured 4x the
                # collections in submit-5000, and 10% of its wall time).
            finally:
                if probe:  # it ended: the next one may go (or be held back)
                    self._probing = False
                    self._wake()

    def _prepare(
        self, item: RequestLike
    ) -> tuple[GenerationRequest | None, str | None, ChuiziError | None]:
        try:
            request = GenerationRequest.coerce(item)
        except InvalidRequest as exc:
            return None, None, exc
        # a digest names a request only for a journal
        request_key = (
            request.key if self.journal is None else self._request_keys.request_key(request)
        )
        return request, request_key, None

    async def _wait_for_room(
        self, request: GenerationRequest | None, *, sent: bool = False
    ) -> ChuiziError | None:
        """Wait for a place under ``concurrency`` and ``max_cost``; or why not to send.

        A request an earlier run had accepted (``sent``) is followed up, not sent: no refusal
        nor ``max_cost`` holds it back, though it takes its place and counts its cost.
        """
        while True:
            room = self._room(request, sent)
            if room is not _Wait.WAIT:
                return room
            if request is not None and not sent and self.cost.needs_prices(request):
                await self.cost.read_prices(self._parts.list_models)
            else:
                await self._changed_wait()

    def _room(self, request: GenerationRequest | None, sent: bool) -> ChuiziError | _Wait | None:
        """``_wait_for_room`` without waiting: None to send now, why not to send, or ``WAIT``."""
        if (closed := self._parts.submitter.closed_error()) is not None:
            return closed
        if self._stops.by is not None and not sent:
            return not_sent(self._stops.by)
        if self.stop_reason is not None:
            return NotSubmitted(str(self.stop_reason), reason=self.stop_reason.reason)
        if request is None or sent:
            refusal = None
        elif (refused := self._stops.held_back(request.model)) is not None:
            return not_sent(refused)
        elif self.cost.max_cost is None:  # no limit to keep: nothing to price
            refusal = None
        elif self.cost.needs_prices(request):
            return _Wait.WAIT
        else:
            refusal = self.cost.refusal(request)
        if refusal is not None and refusal is not WAIT:
            return refusal
        if self._active < self._limit and refusal is None:
            return None
        return _Wait.WAIT

    async def _changed_wait(self) -> None:
        """Until ``_wake``: something a waiting worker looks at changed."""
        self._waiting += 1
        try:
            await self._changed.wait()
        finally:
            self._waiting -= 1

    def _wake(self) -> None:
        """Every worker waiting for room looks again (each waits on the event of its time);
        no new event when none waits (a generation's end calls this, thousands a batch)."""
        if self._waiting:
            self._changed.set()
            self._changed = anyio.Event()

    def _contact(self, error: BaseException | None) -> None:
        """Learn from a submission's end whether the server can be reached (see ``Stops``)."""
        if self._stops.contact(error):
            self._wake()

    def _follow(
        self, handle: Generation, index: int, request_key: str | None, tg: anyio.abc.TaskGroup
    ) -> None:
        """Free the request's place when its generation ends (once journaled, if keyed)."""
        handle.key = request_key
        if self.journal is None or request_key is None:
            handle.add_done_callback(self._on_done_of)  # nothing to write at the end
        else:
            tg.start_soon(self._settle_journaled, handle, index, request_key)

    def _on_done(self, handle: Generation) -> None:
        assert handle.index is not None
        self._settled(handle.index, handle)

    async def _settle_journaled(self, handle: Generation, index: int, request_key: str) -> None:
        try:
            await settle(self.journal, handle, request_key)
        except BaseException:
            self._finish(index, handle)
            raise
        self._settled(index, handle)

    def _settled(self, index: int, handle: Generation | None) -> None:
        """A request's place is free: its generation ended (or it never went out)."""
        self._finish(index, handle)
        if handle is not None:
            self._emit(handle)

    def _finish(self, index: int, handle: Generation | None) -> None:
        self._active -= 1
        self.cost.finish(index, outcome_of(handle) if handle is not None else None)
        self._wake()

    async def _obtain(
        self,
        index: int,
        request: GenerationRequest,
        request_key: str | None,
        submit_here: SubmitHere,
    ) -> Generation:
        """The handle of one request: what the journal has of it, else submitted (journaled)."""
        journaled = None
        if self.journal is not None and request_key is not None:
            journaled = JournaledRequest(self.journal, request_key, safe=self._safe)
            earlier = await journaled.earlier(request, index, self._track_earlier)
            if earlier is not None:
                return earlier
        try:
            submitter = self._parts.submitter
            checked = submitter.check_now(request) or await submitter.check(request)
            request = checked.request
            if journaled is None:
                idempotency_key, before_wire = new_idempotency_key(), None
            else:
                idempotency_key = await journaled.record_sending(request.model)
                before_wire = journaled.before_wire
            handle = await submit_here(
                checked,
                idempotency_key,
                on_accepted=self._on_accepted,
                index=index,
                before_wire=before_wire,
            )
        except anyio.get_cancelled_exc_class() as exc:
            # cancelled only where not shielded: before its first attempt, or off the wire
            # after a 429; either way what went out made nothing (a rerun may send it)
            if journaled is not None:
                await journaled.record_unsent(exc)
            raise
        except ChuiziError as exc:
            self._contact(exc)
            if journaled is not None:
                await journaled.record_unsent(exc)
            if isinstance(exc, APIError):
                self._stops.refused(request.model, exc)
                if journaled is not None:
                    await journaled.record_refused(exc, request.model)
            return _unsent(index, request, exc, request_key)
        self._contact(None)
        if journaled is not None and handle.id is not None:
            await journaled.record_accepted(handle.id)
        return handle

    def _track_earlier(
        self, generation_id: str, request: GenerationRequest, index: int
    ) -> Generation:
        """Follow the generation an earlier run had accepted for ``request``."""
        handle = self._parts.track(generation_id, model=request.model)
        handle.request, handle.index = request, index
        if self._wants_cost:
            self._parts.want_cost(handle)
        return handle

    def _accepted(self, handle: Generation) -> None:
        # before the first check: a cost the status answer lacks is then read once
        if self._wants_cost:
            self._parts.want_cost(handle)
        self.accepted.append(handle)

    def _emit(self, handle: Generation) -> None:
        self.emitted += 1
        self._on_handle(handle)
