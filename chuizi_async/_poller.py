"""One task per client that checks every pending generation: a schedule, not a loop per job.

Pending generations sit in one heap of next-check times. The poller sleeps until the earliest
is due (no request at all while nothing is pending), runs due checks with at most
``max_in_flight`` status requests at once, and reschedules or resolves each handle from the
answer. The request budget (shared with submissions) paces and pauses it on 429.

A 404 for a generation younger than ``not_found_grace`` means "not visible yet" (a gateway's
read-after-write lag) and is checked again like a transient failure. A handle that wants its
cost (a batch with ``max_cost``, the CLI's results) and finishes with none in its status
answer is resolved once its billing record was read, by a lookup of its own, off the workers.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import math
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal

import anyio
import anyio.abc
import attrs

from ._clock import now
from ._error_rules import is_transient
from ._exceptions import (
    APITimeoutError,
    ChuiziError,
    GenerationFailed,
    GenerationTimeout,
    NotFoundError,
    RateLimitError,
    UnusableVideo,
)
from ._generation import Generation
from ._models import GenerationStatus, Video
from ._policy import Schedule
from ._responses import request_id_note

__all__ = ["Poller", "PollerStats"]

logger = logging.getLogger("chuizi_async")

_IN_FLIGHT = -math.inf  # the due time of a handle whose check is under way
REREADS = 2
"""How often a done answer without a usable video is read again (it may have been torn, or
read from a replica that lags) before the handle fails with it."""

StatusFetcher = Callable[[Generation], Awaitable[GenerationStatus]]
CostFetcher = Callable[[str], Awaitable[Decimal | None]]


@attrs.define
class PollerStats:
    """What the poller did, for tests, benchmarks and ``Client.poller_stats``."""

    checks: int = 0
    transient_failures: int = 0
    resolved: int = 0
    max_in_flight_seen: int = 0


@attrs.define(eq=False)
class Poller:
    """The schedule of pending generations and the loop that works through it."""

    fetch: StatusFetcher
    schedule: Schedule
    give_up_after: float
    max_in_flight: int
    not_found_grace: float = 0.0
    billed_cost: CostFetcher | None = None
    check_timeout: float = math.inf
    """Seconds after which a status check is abandoned and tried again later."""
    stats: PollerStats = attrs.field(factory=PollerStats)
    _heap: list[tuple[float, int, Generation]] = attrs.field(factory=list, init=False)
    _tracked: dict[str, Generation] = attrs.field(factory=dict, init=False)
    _counter: itertools.count[int] = attrs.field(factory=itertools.count, init=False)
    _wakeup: anyio.Event = attrs.field(factory=anyio.Event, init=False)
    _in_flight: int = attrs.field(default=0, init=False)
    _closing: bool = attrs.field(default=False, init=False)
    _per_model: collections.Counter[str | None] = attrs.field(
        factory=collections.Counter, init=False
    )
    _lead: anyio.Lock = attrs.field(factory=lambda: anyio.Lock(fast_acquire=True), init=False)
    _rereads: dict[str, int] = attrs.field(factory=dict, init=False)  # by id, while unusable
    # one bound method for every handle (a handle's own would cost memory per generation)
    _forget_resolved: Callable[[Generation], None] = attrs.field(init=False)
    _tasks: anyio.abc.TaskGroup | None = attrs.field(default=None, init=False)
    _billing: dict[Generation, Video] = attrs.field(factory=dict, init=False)
    _billing_limiter: anyio.CapacityLimiter = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._forget_resolved = self._forget
        self._billing_limiter = anyio.CapacityLimiter(self.max_in_flight)

    # -- the schedule ----------------------------------------------------------------------

    @property
    def pending(self) -> list[Generation]:
        """The handles being tracked, oldest first."""
        return [g for g in self._tracked.values() if not g.done()]

    def get(self, generation_id: str) -> Generation | None:
        handle = self._tracked.get(generation_id)
        return handle if handle is not None and not handle.done() else None

    def add(self, handle: Generation) -> None:
        """Track a new handle, its first check planned by the schedule."""
        assert handle.id is not None
        delay, handle._scout = self.schedule.plan_first(handle.model)
        self._tracked[handle.id] = handle
        self._per_model[handle.model] += 1
        handle._on_resolved = self._forget_resolved
        self._push(handle, now() + delay)

    def _forget(self, handle: Generation) -> None:
        if handle.id is not None and self._tracked.get(handle.id) is handle:
            del self._tracked[handle.id]
            self._per_model[handle.model] -= 1
            if self._rereads:
                self._rereads.pop(handle.id, None)
        if handle._scout and not self._closing and self.schedule.scout_ended(handle.model):
            self._promote_scout(handle.model)

    def _waiting(self, model: str | None) -> Iterator[Generation]:
        """Pending handles of ``model`` that are in the heap (not being checked)."""
        for handle in self._tracked.values():
            if handle.model == model and not handle.done() and handle._due != _IN_FLIGHT:
                yield handle

    def _promote_scout(self, model: str | None) -> None:
        """A scout ended before anything was learned: another takes its place, soon."""
        for handle in self._waiting(model):
            if not handle._scout:
                handle._scout = True
                self._push(handle, now() + self.schedule.next_delay(0, model))
                return
        self.schedule.scout_ended(model)  # nobody left to scout: give the place back

    def _pull_in(self, model: str | None, start: float) -> None:
        """Completions now begin at ``start``: bring the waiting checks of this model forward."""
        current = now()
        for handle in list(self._waiting(model)):
            due = max(current, handle._submitted_at + start) + self.schedule.stagger(model)
            if handle._due > due:
                self._push(handle, due)

    def _push(self, handle: Generation, due: float) -> None:
        earliest = self._heap[0][0] if self._heap else math.inf
        handle._due = due
        heapq.heappush(self._heap, (due, next(self._counter), handle))
        if due < earliest:
            self._wakeup.set()

    def _take_due(self) -> Generation | None:
        """The earliest pending generation if it is due now, taken off the heap."""
        heap = self._heap
        # drop what was resolved, or rescheduled since (its live entry is another one)
        while heap and (heap[0][2].done() or heap[0][0] != heap[0][2]._due):
            heapq.heappop(heap)
        if not heap or heap[0][0] > now():
            return None
        handle = heapq.heappop(heap)[2]
        handle._due = _IN_FLIGHT
        return handle

    async def _next_due(self) -> Generation:
        """Sleep until the earliest pending generation is due and take it off the heap."""
        while True:
            handle = self._take_due()
            if handle is not None:
                return handle
            heap = self._heap
            self._wakeup = anyio.Event()
            with anyio.move_on_after(heap[0][0] - now() if heap else math.inf):
                await self._wakeup.wait()

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """Check due generations forever; cancelled (and awaited) by the client's ``aclose``.

        ``max_in_flight`` workers take due handles off the heap. While something is due a
        worker goes from one check to the next without waiting; otherwise one of them (the
        one holding ``_lead``) sleeps until the earliest due time and the others queue for
        the lead: one timer per client, however many workers.
        """
        async with anyio.create_task_group() as tg:
            self._tasks = tg
            for _ in range(self.max_in_flight):
                tg.start_soon(self._work)

    async def _work(self) -> None:
        while True:
            handle = self._take_due()
            if handle is None:
                async with self._lead:
                    handle = await self._next_due()
            self._in_flight += 1
            self.stats.max_in_flight_seen = max(self.stats.max_in_flight_seen, self._in_flight)
            try:
                await self._check(handle)
            finally:
                self._in_flight -= 1

    async def _check(self, handle: Generation) -> None:
        """One status check, then resolve or reschedule; never raises but for cancellation."""
        self.stats.checks += 1
        with anyio.move_on_after(self.check_timeout) as stuck:
            try:
                status = await self.fetch(handle)
            except ChuiziError as exc:
                self._on_error(handle, exc)
                return
            except Exception as exc:  # a bug must not kill the poller nor hang the handle
                logger.exception("unexpected error checking %s", handle.id)
                self._resolve(handle, ChuiziError(f"{handle.id}: unexpected error: {exc!r}"))
                return
        if stuck.cancelled_caught:
            # a GET is cheap to send again: a stuck answer must not hold one of the
            # max_in_flight places (and every check queued behind it) for a whole timeout
            message = f"{handle.id}: no status after {self.check_timeout:.3g} s"
            self._on_error(handle, APITimeoutError(message))
            return
        handle.status = status
        handle._failures = 0
        handle._checks += 1
        if status.state == "completed" and status.video is not None:
            video = status.video
            if video.latency_ms is not None:
                start = self.schedule.learn(handle.model, video.latency_ms / 1000.0)
                if start is not None:
                    self._pull_in(handle.model, start)
            if video.cost is None and handle._wants_cost and self._look_up_cost(handle, video):
                return
            self._resolve(handle, video)
        elif status.state == "failed":
            error = status.error
            self._resolve(
                handle,
                GenerationFailed(
                    handle.id,
                    error.message if error else "generation failed",
                    error.type if error else None,
                ),
            )
        elif not self._gave_up(handle):
            age = now() - handle._submitted_at
            waiting = self._per_model[handle.model] if handle._scout else 0
            delay = self.schedule.next_delay(
                handle._checks, handle.model, age, scouting_for=waiting
            )
            self._reschedule(handle, delay)

    def _look_up_cost(self, handle: Generation, video: Video) -> bool:
        """Resolve ``handle`` once its billing record is read; False if there is no way to."""
        if self.billed_cost is None or self._tasks is None or handle.id is None:
            return False
        self._billing[handle] = video
        self._tasks.start_soon(self._fill_cost, handle, video, self.billed_cost)
        return True

    async def _fill_cost(self, handle: Generation, video: Video, billed_cost: CostFetcher) -> None:
        assert handle.id is not None
        cost = None
        try:
            async with self._billing_limiter:
                cost = await billed_cost(handle.id)
        except Exception:  # the video is there either way: never lose it to a bug
            logger.exception("unexpected error reading the cost of %s", handle.id)
        self._billing.pop(handle, None)
        self._resolve(handle, video if cost is None else attrs.evolve(video, cost=cost))

    def _not_visible_yet(self, handle: Generation, exc: ChuiziError) -> bool:
        """A 404 just after acceptance: the gateway may not show the id it gave out yet."""
        return (
            isinstance(exc, NotFoundError) and now() - handle._submitted_at < self.not_found_grace
        )

    def _on_error(self, handle: Generation, exc: ChuiziError) -> None:
        if isinstance(exc, UnusableVideo) and self._reread(handle, exc):
            return
        if not is_transient(exc) and not self._not_visible_yet(handle, exc):
            logger.info("status check of %s failed: %s%s", handle.id, exc, request_id_note(exc))
            self._resolve(handle, exc)
            return
        self.stats.transient_failures += 1
        handle._failures += 1
        logger.debug(
            "status check of %s failed, checking again later: %s%s",
            handle.id,
            exc,
            request_id_note(exc),
        )
        if not self._gave_up(handle):
            # a 429 delays the check it refused, by its Retry-After; the budget decides
            # whether the whole client slows down
            delay = exc.retry_after if isinstance(exc, RateLimitError) else None
            if delay is None:
                delay = self.schedule.retry_delay(handle._failures)
            self._reschedule(handle, delay)

    def _reread(self, handle: Generation, exc: UnusableVideo) -> bool:
        """Whether a done answer without a usable video is read again before it is final."""
        assert handle.id is not None
        count = self._rereads.get(handle.id, 0)
        if count >= REREADS:
            return False
        self._rereads[handle.id] = count + 1
        logger.debug(
            "%s: reading the answer again (%d of %d): %s", handle.id, count + 1, REREADS, exc
        )
        if not self._gave_up(handle):
            self._reschedule(handle, self.schedule.retry_delay(count + 1))
        return True

    def _gave_up(self, handle: Generation) -> bool:
        waited = now() - handle._submitted_at
        if waited < self.give_up_after:
            return False
        self._resolve(
            handle,
            GenerationTimeout(handle.id, f"still not finished after {waited:.0f} s: gave up"),
        )
        return True

    def _reschedule(self, handle: Generation, delay: float) -> None:
        deadline = handle._submitted_at + self.give_up_after
        self._push(handle, min(now() + delay, deadline))

    def _resolve(self, handle: Generation, outcome: object) -> None:
        assert isinstance(outcome, BaseException) or not isinstance(outcome, type)
        if handle._resolve(outcome):  # type: ignore[arg-type]
            self.stats.resolved += 1

    def close(self, make_error: Callable[[Generation], BaseException]) -> list[Generation]:
        """Resolve every pending handle with ``make_error(handle)``; returns them."""
        self._closing = True
        for handle, video in list(self._billing.items()):
            self._resolve(handle, video)  # done: only its cost is missing
        self._billing.clear()
        pending = self.pending
        for handle in pending:
            handle._resolve(make_error(handle))
        self._heap.clear()
        return pending
