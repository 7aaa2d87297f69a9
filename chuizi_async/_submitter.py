"""Submissions: the one way a request that creates (and bills) a generation goes out."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, NamedTuple, Protocol

import anyio
import anyio.abc

from ._budget import Priority
from ._error_rules import submission_uncertain
from ._exceptions import ChuiziError, ClientClosed, SubmissionUncertain
from ._generation import Generation
from ._ids import new_idempotency_key
from ._models import GenerationRequest
from ._parsing import parse_submission
from ._retries import RetrySubmissions, should_retry_submission
from ._sender import OnWire
from ._validation import build_body, build_body_now
from ._wire import CallWire, OnTheWire, Wire, WorkerWire

__all__ = ["Checked", "Register", "Send", "SubmissionStats", "Submitter", "SubmitHere"]

logger = logging.getLogger("chuizi_async")

_PATH = "/videos/generations"


class Send(Protocol):
    """One API call through the client's send path (budget, retries, redirects, transport):
    the decoded JSON of a 2xx answer, or a typed error; ``on_wire`` hears of the wire
    (``_sender.OnWire``)."""

    def __call__(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = ...,
        priority: Priority = ...,
        model_scope: str | None = ...,
        idempotency_key: str | None = ...,
        on_wire: OnWire | None = ...,
        retry_if: Callable[[ChuiziError], bool] | None = ...,
    ) -> Awaitable[object]: ...


class Register(Protocol):
    """Track an accepted generation: its handle (the one already tracked, if any)."""

    def __call__(
        self,
        gen_id: str,
        model: str | None,
        request: GenerationRequest | None,
        index: int | None = None,
    ) -> Generation: ...


class SubmissionStats(Protocol):
    """Where submissions are counted (``ClientStats``)."""

    submissions: int


class SubmitHere(Protocol):
    """Send a checked submission from the calling task (see ``Submitter.start_workers``).

    ``before_wire`` is awaited once, just before the request first goes out (a journal
    records durably that it may have been received). ``gave_up``: ``aclose()`` gave up on
    a submission of this worker, whose outcome was raised; the worker returns before its
    next request (``start_workers`` starts it again, in a scope of its own).
    """

    gave_up: bool

    def __call__(
        self,
        checked: Checked,
        idempotency_key: str,
        *,
        on_accepted: Callable[[Generation], object] | None = None,
        index: int | None = None,
        before_wire: Callable[[], Awaitable[None]] | None = None,
    ) -> Awaitable[Generation]: ...


class Checked(NamedTuple):
    """A request checked against ``MODELS`` and its JSON body: all a submission sends."""

    request: GenerationRequest
    body: dict[str, Any]


class Submitter:
    """Sends submissions (``POST /videos/generations``) and registers what the server accepted.

    What it guarantees:

    - **Checked before any money is spent.** ``check()`` validates the request and builds its
      body; only a ``Checked`` is sent. A bad request raises ``InvalidRequest``, nothing sent.
    - **One ``Idempotency-Key``** for every attempt of a submission (a journal may pin it).
    - **Retried by the mode** (``retry_submissions``): ``"idempotent"`` after any transient
      failure; ``"safe"`` only when nothing can have been created, and a request that went
      out without an answer raises ``SubmissionUncertain``: never paid twice.
    - **Never lost.** A submission is cancellable until its request is on the wire (then
      nothing was sent); from then on it is shielded: the answer is read whatever becomes
      of the caller, and an accepted generation is registered (``client.pending``).
    - **Closing** (``aclose``): nothing new goes out; submissions on the wire are awaited up
      to a grace period, then given up (``ClientClosed``; ``SubmissionUncertain`` in safe
      mode when the request went out).

    Two ways to send, by where the caller runs. ``submit()`` from any task: the request goes
    out from the client's own task group (``start_soon``), because a native ``task.cancel()``
    of the caller goes through every anyio shield. A batch's workers, which anyio cancels
    only through their task group, send from their own task (no task per request): they get
    a ``SubmitHere`` as the argument ``start_workers`` starts them with, and from nowhere else.

    :param send: the client's send path (``Send``).
    :param register: tracks an accepted generation (``Register``).
    :param start_soon: runs a coroutine function in the client's own task group.
    :param ensure_open: opens the client in the running event loop if needed.
    :param retry_submissions: ``"idempotent"`` or ``"safe"``.
    :param on_answer: sees each accepted submission's answer (the status routes learn from it).
    :param stats: counts the submissions.
    """

    def __init__(
        self,
        *,
        send: Send,
        register: Register,
        start_soon: Callable[[Callable[[], Coroutine[Any, Any, object]]], object],
        ensure_open: Callable[[], Awaitable[None]],
        retry_submissions: RetrySubmissions,
        on_answer: Callable[[Mapping[str, Any]], object],
        stats: SubmissionStats,
    ) -> None:
        self._send = send
        self._register = register
        self._start_soon = start_soon
        self._ensure_open = ensure_open
        self.retry_submissions: RetrySubmissions = retry_submissions
        self._safe = retry_submissions == "safe"
        self._retry_if = functools.partial(should_retry_submission, mode=retry_submissions)
        self._on_answer = on_answer
        self._stats = stats
        self._closed = False
        self._submitting = 0
        self._all_done: anyio.Event | None = None  # made by aclose() when it must wait
        self._on_the_wire: set[Wire] = set()

    @property
    def closed(self) -> bool:
        """Whether ``aclose()`` was called: nothing more is sent."""
        return self._closed

    def closed_error(self) -> ClientClosed | None:
        """Why a batch's next request is not sent, if the client closed."""
        if not self._closed:
            return None
        return ClientClosed(None, "the client closed before this request was sent")

    async def check(self, request: GenerationRequest | Mapping[str, Any]) -> Checked:
        """The request checked and its body built (nothing sent). A batch calls it on a
        client it opened; ``submit()`` opens the client after it."""
        request = GenerationRequest.coerce(request)
        body = build_body_now(request)
        if body is None:  # an image to read in first
            body = await build_body(request)
        return self._checked(request, body)

    def check_now(self, request: GenerationRequest) -> Checked | None:
        """``check`` without awaiting, for a request with no image to read; None if it has
        one (then ``check``)."""
        body = build_body_now(request)
        return None if body is None else self._checked(request, body)

    def _checked(self, request: GenerationRequest, body: dict[str, Any]) -> Checked:
        if self._closed:
            raise RuntimeError("this Client is closed; create a new one")
        return Checked(request, body)

    async def submit(
        self,
        request: GenerationRequest | Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        on_accepted: Callable[[Generation], object] | None = None,
        index: int | None = None,
    ) -> Generation:
        """Check and send one submission from any task; its handle once accepted.

        The request goes out from the client's task group. If the caller goes away before
        it is on the wire, it is dropped; once it is, it goes on there, so that an accepted
        generation is tracked (and found in ``client.pending``), never lost.
        """
        checked = await self.check(request)
        await self._ensure_open()
        if self._closed:  # while it opened
            raise RuntimeError("this Client is closed; create a new one")
        idempotency_key = idempotency_key or new_idempotency_key()
        # Two cancel scopes: ``dropped`` by the caller, the wire's shielded inside it once on
        # the wire (a scope's own cancel goes through its shield: one could not tell them apart).
        dropped, wire = anyio.CancelScope(), CallWire()
        done = asyncio.Event()  # asyncio's: one per submission, and the cheap one
        outcome: list[Generation | Exception] = []

        async def send() -> None:
            try:
                with dropped, wire.scope:
                    handle = await self.sent_by(wire, checked, idempotency_key, on_accepted, index)
                    outcome.append(handle)
            except Exception as exc:  # the caller raises it; the client's task group must not
                outcome.append(exc)
            finally:
                done.set()

        self._start_soon(send)
        try:
            await done.wait()
        except BaseException:
            if not wire.scope.shield:  # not on the wire yet: nothing is sent
                dropped.cancel()
            raise
        if not outcome:  # the client's task group was cancelled: its event loop ended
            raise _unanswered()
        result = outcome[0]
        if isinstance(result, Exception):
            raise result
        return result

    def start_workers(
        self,
        task_group: anyio.abc.TaskGroup,
        count: int,
        work: Callable[[SubmitHere], Coroutine[Any, Any, object]],
    ) -> None:
        """Start ``count`` tasks ``work(submit_here)`` in ``task_group``.

        ``submit_here`` sends from the calling task, shielded once on the wire: sound only in
        a task that anyio cancels through its task group, never natively, which a task
        started here is (the group's host task may be cancelled natively; its children not).
        """
        for _ in range(count):
            task_group.start_soon(self._worker, work)

    async def _worker(self, work: Callable[[SubmitHere], Coroutine[Any, Any, object]]) -> None:
        """``work`` within the worker's scope; again in a new one when ``aclose()`` gave up on
        one of its submissions (the submission raised its outcome, the worker returned)."""
        while True:
            wire = WorkerWire(self.sent_by)
            with wire.scope:
                await work(wire)
            if not wire.gave_up:
                return

    async def sent_by(
        self,
        wire: Wire,
        checked: Checked,
        idempotency_key: str,
        on_accepted: Callable[[Generation], object] | None,
        index: int | None,
        before_wire: Callable[[], Awaitable[None]] | None = None,
    ) -> Generation:
        """Send through ``wire`` (cancellable, shielded once on the wire); register the answer.

        The caller runs it inside ``wire.scope`` (a worker's scope is around the worker,
        ``submit()``'s around this call): ``aclose()``'s ``give_up()`` cancels that scope, and
        the cancellation is turned here into the submission's outcome."""
        request = checked.request
        self._submitting += 1
        self._on_the_wire.add(wire)
        on_the_wire = OnTheWire(wire.scope, before_wire)
        try:
            raw = await self._send(
                "POST",
                _PATH,
                body=checked.body,
                priority=Priority.SUBMIT,
                model_scope=request.model,
                idempotency_key=idempotency_key,
                on_wire=on_the_wire,
                retry_if=self._retry_if,
            )
            gen_id, answer = parse_submission(raw)
        except ChuiziError as exc:
            if self._safe and submission_uncertain(exc):
                raise SubmissionUncertain(idempotency_key, request, reason=str(exc)) from exc
            raise
        except anyio.get_cancelled_exc_class():
            if not wire.gave_up:
                if wire.scope.shield:  # only a native task.cancel() reaches a shielded scope
                    _lost_on_the_wire(idempotency_key, request.model)
                raise
            raise self._given_up(wire, checked, idempotency_key) from None
        else:
            handle = self._register(gen_id, request.model, request, index)
            self._on_answer(answer)
            logger.debug("accepted %s (%s)", gen_id, request.model)
            if on_accepted is not None:
                on_accepted(handle)
            return handle
        finally:
            wire.off()
            self._on_the_wire.discard(wire)
            self._stats.submissions += 1
            self._submitting -= 1
            if not self._submitting and self._all_done is not None:
                self._all_done.set()

    def _given_up(self, wire: Wire, checked: Checked, idempotency_key: str) -> ChuiziError:
        """``aclose()`` gave up on a submission after its grace: uncertain if it was on the
        wire and only safe retries are allowed, else the client closed before its answer."""
        if wire.scope.shield and self._safe:
            reason = "the client closed before the answer came"
            return SubmissionUncertain(idempotency_key, checked.request, reason=reason)
        return _unanswered()

    async def aclose(self, grace: float) -> None:
        """Send nothing new; wait up to ``grace`` seconds for submissions on the wire (so
        that none the server accepted goes unrecorded), then give up on the rest."""
        self._closed = True
        if self._submitting:
            self._all_done = done = anyio.Event()
            with anyio.move_on_after(grace):
                await done.wait()
        for wire in list(self._on_the_wire):
            wire.give_up()  # still unanswered after the grace period


def _lost_on_the_wire(idempotency_key: str, model: str) -> None:
    """Say so when a submission's answer is lost to a native cancellation: anyio's shield does
    not hold against ``task.cancel()``, which ``asyncio.run`` calls on every task when its
    main coroutine returns. The server may have created (and billed) the generation."""
    logger.warning(
        "a submission (%s) was cancelled natively while on the wire, its answer unread (did the "
        "event loop end?): the server may have accepted it; find it by its Idempotency-Key %s",
        model,
        idempotency_key,
    )


def _unanswered() -> ClientClosed:
    """A submission the client closed on before its answer came (none was registered)."""
    return ClientClosed(None, "the client closed before the submission was answered")
