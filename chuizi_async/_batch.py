"""Many generations at once: ``generate_many`` (input order) and ``as_completed``.

Both stand on one submitter that sends requests in input order and keeps at most
``concurrency`` generations in flight. It holds requests back when they would pass
``max_cost`` (``CostLimitExceeded``, see ``_cost``) or after ``stop()`` (``NotSubmitted``).
It stops submitting at the first 402 or 403 ``daily_limit_exceeded``: the requests not yet sent
then resolve with the same kind of error without a request; another 403 does the same for
the requests of its model only. It stops too when the server cannot be reached at all (see
``unreachable``): until one submission has been answered, one goes out at a time, so that an
unreachable server costs one request's retries, not every request's. Every generation already
accepted is tracked to its end. With a journal, each request is looked up before anything is
sent (see ``_journal``), and a submission refused for good is journaled as failed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import anyio

from ._cost import WAIT, CostGuard, Prices, model_key
from ._exceptions import (
    APIConnectError,
    APIConnectionError,
    APIError,
    APITimeoutError,
    ChuiziError,
    InvalidRequest,
    NotSubmitted,
    SubmissionUncertain,
    is_final_error,
    is_final_refusal,
    stops_batch,
    stops_model,
)
from ._generation import Generation, outcome_of, resolved
from ._journal import Journal, new_idempotency_key, request_fingerprint
from ._models import GenerationRequest, Video
from ._validation import validate

if TYPE_CHECKING:
    from types import TracebackType

    from anyio.abc import TaskGroup

    from ._client import Client

__all__ = [
    "UNREACHABLE_AFTER",
    "AsCompleted",
    "BatchSubmitter",
    "generate_many",
    "request_keys",
    "unreachable",
]

logger = logging.getLogger("chuizi_async")

RequestLike = GenerationRequest | Mapping[str, Any]
JournalLike = Journal | str | os.PathLike[str]


@contextlib.contextmanager
def _opened(journal: JournalLike | None) -> Iterator[Journal | None]:
    """The journal to use: the one given, or one opened (and closed) here from a path."""
    if journal is None or isinstance(journal, Journal):
        yield journal
        return
    with Journal(journal) as opened:
        yield opened


def _unsent(
    index: int, request: GenerationRequest | None, error: BaseException, key: str | None = None
) -> Generation:
    """A handle for a request the server never accepted, already resolved with the reason."""
    handle = resolved(None, error, request=request, index=index)
    handle.key = key
    return handle


UNREACHABLE_AFTER = 3
"""Submissions in a row that made no connection, once the server had answered one, that
stop a batch (a server that answered may be away for a moment: one failure is not enough)."""


def unreachable(error: BaseException, *, answered: bool, failures_in_a_row: int) -> bool:
    """Whether a submission's final error (after its retries) says no request of the batch
    can get through, so that the batch stops submitting.

    Before the server has answered any submission of the batch: no connection was made
    (refused, DNS, TLS, a connect timeout) or no answer came in time. A reset or an answer cut
    short is not: something answered, and the next request may get through. After an answer:
    only ``UNREACHABLE_AFTER`` submissions in a row (this one included) that made no
    connection at all; a slow answer then is the server's load, not its absence.
    """
    if not answered:
        return isinstance(error, (APIConnectError, APITimeoutError))
    return isinstance(error, APIConnectError) and failures_in_a_row >= UNREACHABLE_AFTER


def _not_sent(first: APIError | APIConnectionError) -> APIError | NotSubmitted:
    """The error of a request held back by ``first``: a refusal's kind, with no request; or,
    held back because the server cannot be reached, ``NotSubmitted`` (reason
    ``"unreachable"``)."""
    if isinstance(first, APIConnectionError):
        message = f"not submitted: the server could not be reached ({first})"
        return NotSubmitted(message, reason="unreachable")
    return type(first)(
        first.status_code, f"not submitted: {first.message}", first.error_type, code=first.code
    )


class _Keys:
    """The journal's key of each request, in input order: its ``key``, else a digest of what
    it asks for and which occurrence of that it is (``<digest>-1``, ``<digest>-2``)."""

    def __init__(self) -> None:
        self._occurrences: collections.Counter[str] = collections.Counter()

    def key(self, request: GenerationRequest) -> str:
        if request.key is not None:
            return request.key
        fingerprint = request_fingerprint(request)
        self._occurrences[fingerprint] += 1
        return f"{fingerprint}-{self._occurrences[fingerprint]}"


def request_keys(requests: Iterable[GenerationRequest]) -> list[str]:
    """The key a journaled batch of ``requests`` gives each (see ``_Keys``)."""
    keys = _Keys()
    return [keys.key(request) for request in requests]


class BatchSubmitter:
    """Submits a batch in input order; ``on_handle`` gets each handle (accepted or not).

    With a journal, each request is looked up first (finished: no request; accepted: tracked
    by id; interrupted while sending: sent again with its ``Idempotency-Key``), and a handle
    is passed on once its outcome is journaled.
    """

    def __init__(
        self,
        client: Client,
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
        self._client = client
        self._requests = requests
        self._limit = concurrency if concurrency is not None else math.inf
        self._on_handle = on_handle
        self.journal = journal
        self.cost = CostGuard(max_cost)
        self._wants_cost = fetch_costs or max_cost is not None
        self._prices_read = anyio.Lock()
        self._active = 0
        self._changed = anyio.Event()
        self._keys = _Keys()
        self.stopped_by: APIError | APIConnectionError | None = None
        self.stopped_models: dict[str, APIError] = {}
        self.stop_reason: NotSubmitted | None = None
        self.accepted: list[Generation] = []
        self.emitted = 0
        self._answered = False  # the server answered a submission of this batch
        self._probing = False  # a submission is out, and none has been answered yet
        self._connect_failures = 0  # submissions in a row that made no connection

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

        A pool of workers, as many as the client has connections, takes the requests in
        input order; each sends its POSTs from its own task (no task per request). Without
        a journal the generations may still be running when this returns (``in_flight``);
        with one, it returns once every outcome is journaled.
        """
        items = enumerate(self._requests)
        async with anyio.create_task_group() as tg:
            for _ in range(self._client._max_connections):
                tg.start_soon(self._work, items, tg)

    async def _work(self, items: Iterator[tuple[int, RequestLike]], tg: TaskGroup) -> None:
        while True:
            # Until the server has answered a submission, one goes out at a time: the
            # next request is not even taken while one is out (so input order holds).
            while self._probing and not self._answered:
                await self._changed.wait()
            item_of = next(items, None)
            if item_of is None:
                return
            index, item = item_of
            request, key, error = self._prepare(item)
            sent = self._sent_before(key)
            probe = error is None and not sent and not self._answered
            self._probing = self._probing or probe
            try:
                if error is None:
                    error = await self._wait_for_room(request, sent=sent)
                if error is not None:
                    self._emit(_unsent(index, request, error, key))
                    continue
                assert request is not None
                self._active += 1
                self.cost.start(index, request)
                await self._one(index, request, key, tg)
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
        key = request.key if self.journal is None else self._keys.key(request)
        return request, key, None

    def _sent_before(self, key: str | None) -> bool:
        """Whether an earlier run sent this request and it is not to be sent again.

        Accepted (a generation id, maybe paid), or uncertain (it may have created one) and
        not to be resent: the journal answers for it, no submission goes out.
        """
        journal = self.journal
        entry = journal.get(key) if journal is not None and key else None
        if entry is None or journal is None:
            return False
        if entry.generation_id is not None or journal.settled(entry):
            return True
        return (
            entry.state == "sent"
            and self._client.retry_submissions == "safe"
            and not journal.resend_uncertain
        )

    async def _wait_for_room(
        self, request: GenerationRequest | None, *, sent: bool = False
    ) -> ChuiziError | None:
        """Wait for a place under ``concurrency`` and ``max_cost``; or why not to send.

        A request an earlier run had accepted (``sent``) is followed up, not sent: no refusal
        nor ``max_cost`` holds it back, though it takes its place and counts its cost.
        """
        while True:
            if self.stopped_by is not None and not sent:
                return _not_sent(self.stopped_by)
            if self.stop_reason is not None:
                return NotSubmitted(str(self.stop_reason), reason=self.stop_reason.reason)
            if request is None or sent:
                refusal = None
            elif (refused := self.stopped_models.get(model_key(request.model))) is not None:
                return _not_sent(refused)
            elif self.cost.needs_prices(request):
                await self._read_prices()
                continue
            else:
                refusal = self.cost.refusal(request)
            if refusal is not None and refusal is not WAIT:
                return refusal
            if self._active < self._limit and refusal is None:
                return None
            await self._changed.wait()

    def _wake(self) -> None:
        """Every worker waiting for room looks again (each waits on the event of its time)."""
        self._changed.set()
        self._changed = anyio.Event()

    async def _read_prices(self) -> None:
        """The prices of ``/v1/models``, once per batch; none if the list cannot be read."""
        async with self._prices_read:
            if self.cost.prices is not None:
                return
            try:
                self.cost.prices = Prices(await self._client.list_models())
            except ChuiziError as exc:
                logger.info("no model prices for max_cost (%s): estimating from costs seen", exc)
                self.cost.prices = Prices()

    def _contact(self, error: BaseException | None) -> None:
        """Learn from a submission's end (``error`` None: accepted) whether the server can be
        reached at all; stop the batch if it cannot."""
        if isinstance(error, SubmissionUncertain):  # no answer to it: judge by why
            error = error.__cause__
        if error is None or isinstance(error, APIError):  # an answer came back
            self._answered, self._connect_failures = True, 0
            return
        if not isinstance(error, APIConnectionError):  # refused before sending
            return
        if isinstance(error, APIConnectError):
            self._connect_failures += 1
        answered, failures = self._answered, self._connect_failures
        if self.stopped_by is None and unreachable(
            error, answered=answered, failures_in_a_row=failures
        ):
            logger.warning("%s: no further submissions in this batch", error)
            self.stopped_by = error
            self._wake()

    def _stop_for(self, model: str, exc: APIError) -> None:
        """Learn from a refused submission what else not to send."""
        if stops_batch(exc):
            if self.stopped_by is None:
                logger.warning("%s: no further submissions in this batch", exc)
                self.stopped_by = exc
        elif stops_model(exc) and model_key(model) not in self.stopped_models:
            logger.warning("%s: no further submissions of %s in this batch", exc, model)
            self.stopped_models[model_key(model)] = exc

    async def _one(
        self, index: int, request: GenerationRequest, key: str | None, tg: TaskGroup
    ) -> None:
        """Obtain the request's handle, then free its place when its generation ends."""
        try:
            handle = await self._obtain(index, request, key)
        except BaseException:
            self._finish(index, None)
            raise
        handle.key = key
        if self.journal is None or key is None:
            handle.add_done_callback(self._on_done)  # nothing to write at the end
        else:
            tg.start_soon(self._settle_journaled, handle, index, key)

    def _on_done(self, handle: Generation) -> None:
        assert handle.index is not None
        self._settled(handle.index, handle)

    async def _settle_journaled(self, handle: Generation, index: int, key: str) -> None:
        try:
            await self._settle(handle, key)
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

    async def _obtain(self, index: int, request: GenerationRequest, key: str | None) -> Generation:
        """The handle of one request: from the journal, tracked by id, or submitted."""
        journal = self.journal if key is not None else None
        entry = journal.get(key) if journal is not None and key is not None else None
        if entry is not None and journal is not None and journal.settled(entry):
            settled = entry.outcome(request)
            return resolved(entry.generation_id, settled, request=request, index=index)
        if entry is not None and entry.generation_id is not None:
            handle = self._client.track(entry.generation_id, model=request.model)
            handle.request, handle.index = request, index
            if self._wants_cost:
                self._client._tracker.want_cost(handle)
            return handle
        safe = self._client.retry_submissions == "safe"
        if entry is not None and entry.state == "sent" and safe:
            assert journal is not None and key is not None
            if not journal.resend_uncertain:  # an earlier run died while it was on the wire
                reason = "an earlier run stopped while it was on the wire"
                error = SubmissionUncertain(entry.idempotency_key, request, reason=reason)
                await journal.record_uncertain(key, error)
                return _unsent(index, request, error, key)
        idempotency_key = entry.idempotency_key if entry is not None else None
        went_out = False

        async def before_wire() -> None:
            nonlocal went_out
            assert journal is not None and key is not None
            went_out = True
            await journal.record_sent(key)

        try:
            request, body = await self._client._prepare_submission(request)
            idempotency_key = idempotency_key or new_idempotency_key()
            if journal is not None and key is not None:
                await journal.record_sending(key, idempotency_key, request.model)
            # This task belongs to the batch's task group: the submission can be sent
            # from it, shielded once on the wire (see Client._submit_here).
            handle = await self._client._submit_here(
                request,
                body,
                idempotency_key,
                self._accepted,
                index,
                before_wire=before_wire if journal is not None and safe else None,
            )
        except SubmissionUncertain as exc:
            self._contact(exc)
            if journal is not None and key is not None:
                with anyio.CancelScope(shield=True):  # never sent again without being asked
                    await journal.record_uncertain(key, exc)
            return _unsent(index, request, exc, key)
        except ChuiziError as exc:
            self._contact(exc)
            if went_out and journal is not None and key is not None:
                with anyio.CancelScope(shield=True):  # answered: nothing was created
                    await journal.record_not_created(key)
            if isinstance(exc, APIError):
                self._stop_for(request.model, exc)
                final = is_final_refusal(exc, request.model)
                if final and journal is not None and key is not None:
                    with anyio.CancelScope(shield=True):  # a rerun would be refused too
                        await journal.record_refused(key, exc)
            return _unsent(index, request, exc, key)
        self._contact(None)
        if journal is not None and key is not None and handle.id is not None:
            with anyio.CancelScope(shield=True):  # one short write: a stopped batch keeps it
                await journal.record_accepted(key, handle.id)
        return handle

    def _accepted(self, handle: Generation) -> None:
        # before the first check: a cost the status answer lacks is then read once
        if self._wants_cost:
            self._client._tracker.want_cost(handle)
        self.accepted.append(handle)

    async def _settle(self, handle: Generation, key: str | None) -> None:
        """Wait for the outcome (the request holds its place until then) and journal it."""
        with contextlib.suppress(Exception):
            await handle.wait()
        outcome = outcome_of(handle)
        if self.journal is None or key is None or handle.id is None or outcome is None:
            return
        entry = self.journal.get(key)
        if entry is not None and entry.final:
            return
        if isinstance(outcome, Video) or is_final_error(outcome):
            with anyio.CancelScope(shield=True):
                await self.journal.record_outcome(key, outcome)

    def _emit(self, handle: Generation) -> None:
        self.emitted += 1
        self._on_handle(handle)


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
    journal: JournalLike | None = None,
    max_cost: Decimal | None = None,
    fetch_costs: bool = False,
) -> list[Video | BaseException]:
    """Generate every request; results in input order.

    With ``return_exceptions=True`` each failure takes its place in the list. Without it,
    the whole batch is validated first (``InvalidRequest`` names the index, nothing sent),
    and the first error raises as soon as it happens: no further request is submitted, and
    the generations already accepted **stay tracked** by the client (``client.pending``);
    the error's notes list their ids.
    """
    with _opened(journal) as opened:
        return await _generate_many(
            client, list(requests), concurrency, return_exceptions, opened, max_cost, fetch_costs
        )


async def _generate_many(
    client: Client,
    items: list[RequestLike],
    concurrency: int | None,
    return_exceptions: bool,
    journal: Journal | None,
    max_cost: Decimal | None,
    fetch_costs: bool,
) -> list[Video | BaseException]:
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
        journal=journal,
        max_cost=max_cost,
        fetch_costs=fetch_costs,
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
        self,
        client: Client,
        requests: Iterable[RequestLike],
        *,
        concurrency: int | None,
        journal: JournalLike | None = None,
        max_cost: Decimal | None = None,
        fetch_costs: bool = False,
    ) -> None:
        self._client = client
        self._journal = journal
        self._ready: collections.deque[Generation] = collections.deque()
        self._arrived = asyncio.Event()  # one per handle yielded: asyncio's is the cheap one
        self._closed = False
        self._submitter = BatchSubmitter(
            client,
            requests,
            concurrency=concurrency,
            on_handle=self._watch,
            max_cost=max_cost,
            fetch_costs=fetch_costs,
        )
        self._started = False
        self._submitting_done = False
        self._resolved = 0
        self._scope: anyio.CancelScope | None = None
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
            await self._client._ensure_open()
            self._client._spawn(self._run)

    async def _run(self) -> None:
        try:
            with anyio.CancelScope() as self._scope, _opened(self._journal) as journal:
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
        if self._scope is not None:
            self._scope.cancel()
        if self._started and not self._client.closed:
            await self._stopped.wait()
        self._closed = True
        self._ready.clear()
        self._arrived.set()
