"""One task per client that checks every pending generation: a schedule, not a loop per job.

Pending generations sit in one heap of next-check times (``_due``; those accepted during a loop
turn are planned together after it, see ``Poller.add``). The poller sleeps until the earliest
is due (no request at all while nothing is pending), runs due checks with at most
``max_in_flight`` status requests at once, and reschedules or resolves each handle from the
answer. The request budget (shared with submissions) paces and pauses it on 429.

What the poller knows of a generation (when it is due, how often it was checked, whether it
scouts) sits in a ``Tracked`` entry of its own; the ``Generation`` is the user's handle, which
it resolves (see ``_tracker`` for who creates both).

A 404 for a generation younger than ``not_found_grace`` means "not visible yet" (a gateway's
read-after-write lag) and is checked again like a transient failure. A handle that wants its
cost (a batch with ``max_cost``, the CLI's results) and finishes with none in its status
answer is resolved once its billing record was read, by a lookup of its own, off the workers.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
from collections.abc import Awaitable, Callable, Iterator
from decimal import Decimal

import anyio
import anyio.abc
import attrs

from ._clock import now
from ._due import IN_FLIGHT, DueTimes, Tracked
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
from ._generation import Generation, record_status, resolve
from ._models import GenerationStatus, Video
from ._policy import Schedule
from ._responses import request_id_note
from ._watchdog import Watchdog

__all__ = ["Poller", "PollerStats"]

logger = logging.getLogger("chuizi_async")

REREADS = 2
"""How often a done answer without a usable video is read again (it may have been torn, or
read from a replica that lags) before the handle fails with it."""

StatusFetcher = Callable[[Generation], Awaitable[GenerationStatus | Video]]
"""A status check: the status read, or the video of a done generation (``parse_check``)."""
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
    _due: DueTimes = attrs.field(factory=DueTimes, init=False)
    # entries added since the heap last took them in (see ``add``); the loop ``run`` runs in
    _arrivals: list[Tracked] = attrs.field(factory=list, init=False)
    _loop: asyncio.AbstractEventLoop | None = attrs.field(default=None, init=False)
    _tracked: dict[str, Tracked] = attrs.field(factory=dict, init=False)
    _wakeup: anyio.Event = attrs.field(factory=anyio.Event, init=False)
    _in_flight: int = attrs.field(default=0, init=False)
    _closing: bool = attrs.field(default=False, init=False)
    _per_model: collections.Counter[str | None] = attrs.field(
        factory=collections.Counter, init=False
    )
    _lead: anyio.Lock = attrs.field(factory=lambda: anyio.Lock(fast_acquire=True), init=False)
    _rereads: dict[str, int] = attrs.field(factory=dict, init=False)  # by id, while unusable
    _tasks: anyio.abc.TaskGroup | None = attrs.field(default=None, init=False)
    _billing: dict[Tracked, Video] = attrs.field(factory=dict, init=False)
    _billing_limiter: anyio.CapacityLimiter = attrs.field(init=False)
    _watchdog: Watchdog[Tracked] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._billing_limiter = anyio.CapacityLimiter(self.max_in_flight)
        self._watchdog = Watchdog(self.check_timeout)

    # -- the entries -----------------------------------------------------------------------

    def entries(self) -> list[Tracked]:
        """The entries of the pending handles, oldest first."""
        return [e for e in self._tracked.values() if not e.handle.done()]

    def find(self, generation_id: str) -> Tracked | None:
        """The entry of the pending handle of ``generation_id``, if there is one."""
        entry = self._tracked.get(generation_id)
        return entry if entry is not None and not entry.handle.done() else None

    def add(self, entry: Tracked, generation_id: str) -> None:
        """Track a new entry (of the handle of ``generation_id``); its first check is planned
        by the schedule from its ``submitted_at``.

        While the poller runs, the planning waits for the end of the event loop's turn
        (``_take_arrivals``): a batch's submissions arrive several a turn, and the planning
        done in the middle of each request cost it ~7 us in submit-5000 (the same code run
        cold); together, after the turn, about half of that. Anything that reads the heap
        takes the arrivals in first.
        """
        self._tracked[generation_id] = entry
        self._per_model[entry.handle.model] += 1
        arrivals = self._arrivals
        arrivals.append(entry)
        if len(arrivals) == 1:
            loop = self._loop
            if loop is None or loop.is_closed():  # not running: nothing reads the heap
                self._take_arrivals()
            else:
                loop.call_soon(self._take_arrivals)

    def _take_arrivals(self) -> None:
        """Plan the first check of every entry added since the last call and push it."""
        arrivals, self._arrivals = self._arrivals, []
        plan_first = self.schedule.plan_first
        for entry in arrivals:
            if not entry.handle.done():  # not resolved (cancelled, closed) meanwhile
                delay, entry.scout = plan_first(entry.handle.model)
                self._push(entry, entry.submitted_at + delay)

    def forget(self, handle: Generation) -> None:
        """Drop the entry of a handle that resolved (the handle's ``on_resolved``)."""
        gen_id = handle.id
        if gen_id is None:
            return
        entry = self._tracked.get(gen_id)
        if entry is None or entry.handle is not handle:
            return
        del self._tracked[gen_id]
        self._per_model[handle.model] -= 1
        if self._rereads:
            self._rereads.pop(gen_id, None)
        if entry.scout and not self._closing and self.schedule.scout_ended(handle.model):
            self._promote_scout(handle.model)

    # -- the schedule ----------------------------------------------------------------------

    def _waiting(self, model: str | None) -> Iterator[Tracked]:
        """Entries of ``model`` that are in the heap (not being checked)."""
        if self._arrivals:
            self._take_arrivals()
        for entry in self._tracked.values():
            if entry.handle.model == model and not entry.handle.done() and entry.due != IN_FLIGHT:
                yield entry

    def _promote_scout(self, model: str | None) -> None:
        """A scout ended before anything was learned: another takes its place, soon."""
        for entry in self._waiting(model):
            if not entry.scout:
                entry.scout = True
                self._push(entry, now() + self.schedule.next_delay(0, model))
                return
        self.schedule.scout_ended(model)  # nobody left to scout: give the place back

    def _pull_in(self, model: str | None, start: float) -> None:
        """Completions now begin at ``start``: bring the waiting checks of this model forward."""
        current = now()
        for entry in list(self._waiting(model)):
            due = max(current, entry.submitted_at + start) + self.schedule.stagger(model)
            if entry.due > due:
                self._push(entry, due)

    def _push(self, entry: Tracked, due: float) -> None:
        if self._due.push(entry, due):  # now the earliest: the sleeper wakes for it
            self._wakeup.set()

    def _take_due(self) -> Tracked | None:
        """The earliest pending entry if it is due now, taken off the heap."""
        if self._arrivals:
            self._take_arrivals()
        return self._due.take(now())

    async def _next_due(self) -> Tracked:
        """Sleep until the earliest pending entry is due and take it off the heap."""
        while True:
            entry = self._take_due()
            if entry is not None:
                return entry
            earliest = self._due.earliest()
            self._wakeup = anyio.Event()
            with anyio.move_on_after(math.inf if earliest is None else earliest - now()):
                await self._wakeup.wait()

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """Check due generations forever; cancelled (and awaited) by the client's ``aclose``.

        ``max_in_flight`` workers take due handles off the heap. While something is due a
        worker goes from one check to the next without waiting; otherwise one of them (the
        one holding ``_lead``) sleeps until the earliest due time and the others queue for
        the lead: one timer per client, however many workers. A check still unanswered
        after ``check_timeout`` is abandoned by the watchdog: one timer too, not one each.
        """
        self._loop = asyncio.get_running_loop()
        try:
            async with anyio.create_task_group() as tg:
                self._tasks = tg
                for _ in range(self.max_in_flight):
                    tg.start_soon(self._work)
                if self.check_timeout < math.inf:
                    tg.start_soon(self._watchdog.run)
        finally:
            self._loop = None

    async def _work(self) -> None:
        worker = self._watchdog.watch()
        watchdog = self._watchdog
        while True:
            # cancelled only by the watchdog, when a check is stuck: then a new cancel scope
            with worker.cancel_scope:
                while True:
                    entry = self._take_due()
                    if entry is None:
                        async with self._lead:
                            entry = await self._next_due()
                    self._in_flight += 1
                    stats = self.stats
                    if self._in_flight > stats.max_in_flight_seen:
                        stats.max_in_flight_seen = self._in_flight
                    stats.checks += 1
                    worker.waiting_for = entry
                    worker.since = now()
                    if watchdog.idle is not None:
                        watchdog.wake()
                    try:  # the check, in this frame (one coroutine less per check)
                        status = await self.fetch(entry.handle)
                    except ChuiziError as exc:
                        self._on_error(entry, exc)
                    except Exception as exc:  # a bug must not kill the poller nor hang it
                        logger.exception("unexpected error checking %s", entry.handle.id)
                        error = f"{entry.handle.id}: unexpected error: {exc!r}"
                        self._resolve(entry, ChuiziError(error))
                    else:
                        self._checked(entry, status)
                    finally:
                        worker.waiting_for = None
                        self._in_flight -= 1
                    if worker.abandoned is not None:
                        # the watchdog came as the answer did, which won: leave the
                        # cancelled scope before anything else is awaited in it
                        worker.abandoned = None
                        break
                    # let the other workers' answers in before this one's next check goes
                    # out: the sends of one loop turn go together, which costs the kernel
                    # less per send (measured: ~10% of a check's CPU on loopback)
                    await asyncio.sleep(0)  # anyio's checkpoint, less two frames (asyncio only)
            worker.cancel_scope = anyio.CancelScope()
            stuck, worker.abandoned = worker.abandoned, None
            if stuck is not None:
                # a GET is cheap to send again: a stuck answer must not hold one of the
                # max_in_flight places (and every check queued behind it) for a whole timeout
                message = f"{stuck.handle.id}: no status after {self.check_timeout:.3g} s"
                self._on_error(stuck, APITimeoutError(message))

    def _checked(self, entry: Tracked, status: GenerationStatus | Video) -> None:
        """What a status check answered: resolve the handle, or check it again later."""
        handle = entry.handle
        record_status(handle, status)
        entry.failures = 0
        entry.checks += 1
        if isinstance(status, Video):
            video: Video | None = status
        elif status.state == "failed":
            error = status.error
            self._resolve(
                entry,
                GenerationFailed(
                    handle.id,
                    error.message if error else "generation failed",
                    error.type if error else None,
                ),
            )
            return
        else:
            video = status.video
        if video is not None:
            if video.latency_ms is not None:
                start = self.schedule.learn(handle.model, video.latency_ms / 1000.0)
                if start is not None:
                    self._pull_in(handle.model, start)
            if video.cost is None and entry.wants_cost and self._look_up_cost(entry, video):
                return
            self._resolve(entry, video)
        elif not self._gave_up(entry):
            age = now() - entry.submitted_at
            waiting = self._per_model[handle.model] if entry.scout else 0
            delay = self.schedule.next_delay(entry.checks, handle.model, age, scouting_for=waiting)
            self._reschedule(entry, delay)

    def _look_up_cost(self, entry: Tracked, video: Video) -> bool:
        """Resolve the handle once its billing record is read; False if there is no way to."""
        gen_id = entry.handle.id
        if self.billed_cost is None or self._tasks is None or gen_id is None:
            return False
        self._billing[entry] = video
        self._tasks.start_soon(self._fill_cost, entry, gen_id, video, self.billed_cost)
        return True

    async def _fill_cost(
        self, entry: Tracked, gen_id: str, video: Video, billed_cost: CostFetcher
    ) -> None:
        cost = None
        try:
            async with self._billing_limiter:
                cost = await billed_cost(gen_id)
        except Exception:  # the video is there either way: never lose it to a bug
            logger.exception("unexpected error reading the cost of %s", gen_id)
        self._billing.pop(entry, None)
        self._resolve(entry, video if cost is None else attrs.evolve(video, cost=cost))

    def _not_visible_yet(self, entry: Tracked, exc: ChuiziError) -> bool:
        """A 404 just after acceptance: the gateway may not show the id it gave out yet."""
        return isinstance(exc, NotFoundError) and now() - entry.submitted_at < self.not_found_grace

    def _on_error(self, entry: Tracked, exc: ChuiziError) -> None:
        if isinstance(exc, UnusableVideo) and self._reread(entry, exc):
            return
        gen_id = entry.handle.id
        if not is_transient(exc) and not self._not_visible_yet(entry, exc):
            logger.info("status check of %s failed: %s%s", gen_id, exc, request_id_note(exc))
            self._resolve(entry, exc)
            return
        self.stats.transient_failures += 1
        entry.failures += 1
        logger.debug(
            "status check of %s failed, checking again later: %s%s",
            gen_id,
            exc,
            request_id_note(exc),
        )
        if not self._gave_up(entry):
            # a 429 delays the check it refused, by its Retry-After; the budget decides
            # whether the whole client slows down
            delay = exc.retry_after if isinstance(exc, RateLimitError) else None
            if delay is None:
                delay = self.schedule.retry_delay(entry.failures)
            self._reschedule(entry, delay)

    def _reread(self, entry: Tracked, exc: UnusableVideo) -> bool:
        """Whether a done answer without a usable video is read again before it is final."""
        gen_id = entry.handle.id
        assert gen_id is not None
        count = self._rereads.get(gen_id, 0)
        if count >= REREADS:
            return False
        self._rereads[gen_id] = count + 1
        logger.debug("%s: reading the answer again (%d of %d): %s", gen_id, count + 1, REREADS, exc)
        if not self._gave_up(entry):
            self._reschedule(entry, self.schedule.retry_delay(count + 1))
        return True

    def _gave_up(self, entry: Tracked) -> bool:
        waited = now() - entry.submitted_at
        if waited < self.give_up_after:
            return False
        self._resolve(
            entry,
            GenerationTimeout(entry.handle.id, f"still not finished after {waited:.0f} s: gave up"),
        )
        return True

    def _reschedule(self, entry: Tracked, delay: float) -> None:
        deadline = entry.submitted_at + self.give_up_after
        self._push(entry, min(now() + delay, deadline))

    def _resolve(self, entry: Tracked, outcome: Video | BaseException) -> None:
        if resolve(entry.handle, outcome):
            self.stats.resolved += 1

    def stop(self) -> None:
        """Stop scheduling (the client closes): a handle whose cost was being looked up
        resolves with its video, the others stay for the tracker to resolve."""
        self._closing = True
        for entry, video in list(self._billing.items()):
            self._resolve(entry, video)  # done: only its cost is missing
        self._billing.clear()
        self._due.clear()
        self._arrivals.clear()
