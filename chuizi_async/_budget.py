"""One request budget per client, shared by submissions, status checks and every other call.

It paces requests from what the server says and does, never from an invented number:

* ``X-RateLimit-Remaining`` / ``-Reset``: spend what the window has left, counting requests
  still in flight, then wait for the reset and probe. The reset is read in every form
  gateways use (``_rate_headers.parse_reset``); absent or unreadable, it is the documented
  60 s window;
* a 429 delays the request it refused (its ``Retry-After``, or backoff: the retry loop and
  the poller do that); the whole client pauses and slows only on evidence that its own rate
  causes them (``_rate_learning.RateLearner``: a spent window, a burst; AIMD);
* a 429 while the overall window still has room is a narrower limit (per model): the model's
  scope learns how many requests its window holds, from our own history, and keeps under it (a
  429 showing the overall window spent is that window, spent by others sharing the API key);
* ``Limits(max_requests_per_second=...)``, a cap the user knows up front, spaces requests
  evenly.

``saturated()`` (requests are scarce: the schedule spends few checks) is set only by a
limit the server has shown: a window, a model's scope, a pause, a rate confirmed by a burst or a
spent window, the user's cap; never by a cut on trial. Until the first answer arrives, one
request at a time: it tells whether the server sends a rate window at all, before a burst
could overrun one. Status checks have priority over submissions: a flood of submissions
never starves the checks of generations that are already running (and paid for).
"""

from __future__ import annotations

import bisect
import collections
import enum
import math
import random
from collections.abc import Mapping

import anyio
import attrs

from . import _clock
from ._rate_headers import DOCUMENTED_WINDOW, RateWindow, parse_rate_window
from ._rate_learning import RateLearner
from ._retries import parse_retry_after

__all__ = ["Priority", "RequestBudget", "Ticket"]

_SATURATION_MEMORY = 60.0
_MODEL_SCOPE_MARGIN = 1.05
_HISTORY = 4096
_RESET_MARGIN = 0.005  # seconds after a window's reset before its probe goes


class Priority(enum.IntEnum):
    """Who goes first when both are waiting: lower values."""

    POLL = 0
    OTHER = 1
    SUBMIT = 2


@attrs.define
class _ModelScope:
    """A narrower limit learned from 429s (per model): ``cap`` requests per ``window`` s.

    Only requests the server accepted count, and those still in flight, as the server's
    own window would count them.
    """

    accepted: collections.deque[float] = attrs.field(
        factory=lambda: collections.deque(maxlen=_HISTORY)
    )
    in_flight: int = 0
    cap: int | None = None
    window: float = 0.0
    paused_until: float = 0.0

    def wait_time(self, now: float) -> float:
        """Seconds until this model may send again: 0 unless ``cap`` is set or
        ``paused_until`` is ahead (``RequestBudget._wait_time`` skips the call then: a new
        reason to wait here must be added to its guard too)."""
        wait = self.paused_until - now
        if self.cap is not None:
            # The window only grows: what left it twice over never counts again. Without
            # this, every admission of a batch would scan thousands of old entries.
            while self.accepted and self.accepted[0] <= now - 2 * self.window:
                self.accepted.popleft()
            recent = [t for t in self.accepted if t > now - self.window]
            excess = len(recent) + self.in_flight - self.cap
            if excess >= 0:
                # wait until enough of the accepted ones leave the window
                wait = max(
                    wait, recent[excess] + self.window - now if excess < len(recent) else math.inf
                )
        return max(0.0, wait)

    def learn(self, now: float, pause: float) -> None:
        """A 429 from this model: the window holds what it accepted lately, and is this long."""
        self.paused_until = max(self.paused_until, now + pause)
        horizon = max(self.window, pause, 1e-3) * 4
        recent = [t for t in self.accepted if t > now - horizon]
        if not recent:
            return
        # The oldest request in the server's window leaves it when the pause ends; the
        # margin covers how much later than its answer the server may have counted it.
        cap = len(recent) + self.in_flight - 1  # the refused one is still counted in flight
        self.cap = cap if self.cap is None else min(self.cap, cap)
        self.window = max(self.window, (now + pause - recent[0]) * _MODEL_SCOPE_MARGIN)


@attrs.define(eq=False)
class Ticket:
    """One admitted request: when it was sent, for which model, what the budget knew then."""

    sent_at: float
    model_scope: str | None
    probe: bool = False
    windows_seen: int = 0


@attrs.define(eq=False)
class RequestBudget:
    """Admission control for every request of one client. See the module docstring."""

    max_rate: float | None = None
    time_scale: float = 1.0
    rng: random.Random = attrs.field(factory=random.Random)
    _next_at: float = attrs.field(default=0.0, init=False)
    _paused_until: float = attrs.field(default=0.0, init=False)
    _window: RateWindow | None = attrs.field(default=None, init=False)
    _window_seen_at: float = attrs.field(default=0.0, init=False)
    _window_reset_at: float = attrs.field(default=0.0, init=False)
    _probes: int = attrs.field(default=0, init=False)
    _answered: bool = attrs.field(default=False, init=False)
    _windows_seen: int = attrs.field(default=0, init=False)
    _scarce_at: float = attrs.field(default=-math.inf, init=False)
    _in_flight: int = attrs.field(default=0, init=False)
    _sent: collections.deque[float] = attrs.field(
        factory=lambda: collections.deque(maxlen=_HISTORY), init=False
    )
    _learner: RateLearner = attrs.field(init=False)  # the rate learned from 429s
    _model_scopes: dict[str, _ModelScope] = attrs.field(factory=dict, init=False)
    _waiting: collections.Counter[Priority] = attrs.field(factory=collections.Counter, init=False)
    _queued: int = attrs.field(default=0, init=False)  # the total of _waiting
    _changed: anyio.Event = attrs.field(factory=anyio.Event, init=False)
    rate_limited: int = attrs.field(default=0, init=False)
    """How many 429 answers this budget has seen."""

    def __attrs_post_init__(self) -> None:
        self._learner = RateLearner(self._sent, self.time_scale, self.rng)

    @property
    def rate(self) -> float | None:
        """The learned admissible rate in requests per second, or None when none was learned."""
        return self._learner.rate

    def new_event_loop(self) -> None:
        """Forget the waiters' event of a loop that ended; what was learned of the limits stays."""
        self._changed = anyio.Event()

    def saturated(self) -> bool:
        """Whether a request had to wait for a limit lately: requests are scarce, spend few."""
        return _clock.now() - self._scarce_at < _SATURATION_MEMORY / self.time_scale

    @property
    def paused_until(self) -> float:
        """Until when (``time.monotonic()``) the whole client is paused by a 429."""
        return self._paused_until

    # -- admission ---------------------------------------------------------------------------

    def try_acquire(self, priority: Priority, model_scope: str | None = None) -> Ticket | None:
        """A place at once if nobody is queued and no limit says wait (no await), else None."""
        now = _clock.now()
        if self._queued or self._wait_time(now, model_scope) > 0:
            return None
        return self._take(now, model_scope)

    async def acquire(self, priority: Priority, model_scope: str | None = None) -> Ticket:
        """Wait for a place; every ticket is given back with ``release``."""
        self._waiting[priority] += 1
        self._queued += 1
        try:
            while True:
                now = _clock.now()
                wait = self._wait_time(now, model_scope)
                if wait <= 0 and not self._outranked(priority):
                    return self._take(now, model_scope)
                if wait > 0 and self._answered:
                    self._learner.held_back(now)  # a limit held it (not the first-answer gate)
                    if self._limit_wait(now, model_scope) > 0:
                        self._scarce_at = now  # ... one shown to be the server's
                changed = self._changed
                with anyio.move_on_after(wait if wait > 0 else math.inf):
                    await changed.wait()
        finally:
            self._waiting[priority] -= 1
            self._queued -= 1
            self._notify()

    def release(self, ticket: Ticket) -> None:
        """Give the place back once the request is answered (or failed)."""
        self._in_flight -= 1
        if ticket.model_scope is not None:
            self._model_scopes[ticket.model_scope].in_flight -= 1
        if ticket.probe and self._windows_seen == ticket.windows_seen:
            self._probes -= 1  # the probe taught nothing (no answer, no headers): next
        if self._queued:  # a call less on every answer when nobody waits
            self._notify()

    def _outranked(self, priority: Priority) -> bool:
        return any(n > 0 for p, n in self._waiting.items() if p < priority)

    def _wait_time(self, now: float, model_scope: str | None) -> float:
        if not self._answered and self._in_flight:
            return math.inf  # the first answer tells whether the server sends a rate window
        wait = max(self._paused_until, self._next_at, now) - now
        if self._window is not None:
            wait = max(wait, self._window_wait(now))
        if model_scope is not None:
            scoped = self._model_scopes.get(model_scope)
            # a model with no cap learned and no pause has no wait of its own
            if scoped is not None and (scoped.cap is not None or scoped.paused_until > now):
                wait = max(wait, scoped.wait_time(now))
        return wait

    def _limit_wait(self, now: float, model_scope: str | None) -> float:
        """The wait a known limit imposes: a rate cut on trial, for strays maybe, is none."""
        if self._learner.confirmed or self.max_rate is not None:
            return self._wait_time(now, model_scope)
        wait = max(self._paused_until - now, self._window_wait(now))
        if model_scope is not None and model_scope in self._model_scopes:
            wait = max(wait, self._model_scopes[model_scope].wait_time(now))
        return wait

    def _window_wait(self, now: float) -> float:
        window = self._window
        if window is None:
            return 0.0
        reset_at = self._window_reset_at
        if now < reset_at and self._room(now) > 0:
            return 0.0
        # The reset is rounded (to the millisecond, or the second) and read a moment after the
        # server wrote it: a probe sent at once can arrive before the server's window turns.
        turnover = reset_at + _RESET_MARGIN
        if now < turnover:
            return turnover - now
        # The window has turned over since the last answer: one probe learns what it holds.
        return 0.0 if self._probes == 0 else math.inf

    def _room(self, now: float, *, excluding: int = 0) -> int:
        """Requests the last known window still admits, counting those in flight."""
        window = self._window
        if window is None or now >= self._window_reset_at:
            return 0
        return window.remaining - (self._in_flight - excluding)

    def _take(self, now: float, model_scope: str | None) -> Ticket:
        if self._learner.rate is not None or self.max_rate is not None:
            rate = self._effective_rate()
            self._next_at = max(now, self._next_at) + 1.0 / rate
        window = self._window
        probe = window is not None and now >= self._window_reset_at
        self._probes += probe
        self._in_flight += 1
        self._sent.append(now)
        if model_scope is not None:
            scoped = self._model_scopes.get(model_scope)
            if scoped is None:
                scoped = self._model_scopes[model_scope] = _ModelScope()
            scoped.in_flight += 1
        return Ticket(now, model_scope, probe, self._windows_seen)

    def _effective_rate(self) -> float:
        """The rate requests are spaced at: the learned one, the user's cap, or the lower."""
        rate, cap = self._learner.rate, self.max_rate
        if rate is None or cap is None:
            result = cap if rate is None else rate
            assert result is not None, "no rate to space requests at"
            return result
        return min(rate, cap)

    def _notify(self) -> None:
        if self._queued:
            self._changed.set()
            self._changed = anyio.Event()

    # -- feedback ----------------------------------------------------------------------------

    def observe(self, ticket: Ticket, status: int, headers: Mapping[str, str]) -> None:
        """Learn from the answer to an admitted request: its rate window, and a 429."""
        now = _clock.now()
        self._answered = True
        window = parse_rate_window(headers)
        if status != 429:
            if window is not None:
                self._set_window(window, now, ticket)
            elif ticket.probe:
                self._window = None  # the server stopped telling: 429s will teach instead
            if ticket.model_scope is not None:
                # when we heard of it: the server counted it no later (its clock is ahead
                # of our send time by up to the time a burst takes to get through)
                self._model_scopes[ticket.model_scope].accepted.append(now)
            self._learner.answered(now, ticket.sent_at)
        elif ticket.model_scope is not None and self._narrower(now, window):
            # The overall window had room: a narrower limit (per model) refused this one.
            self.rate_limited += 1
            retry_after = parse_retry_after(headers)
            if retry_after is None:
                retry_after = self._reset_in(window, now) if window is not None else 1.0
            self._model_scopes[ticket.model_scope].learn(now, retry_after)
        else:
            self.rate_limited += 1
            # what the window said before this answer: was it spent?
            if window is not None:
                spent = window.remaining == 0
            else:
                spent = self._window is not None and self._room(now, excluding=1) <= 0
            if window is not None:
                self._set_window(window, now, ticket)
            retry_after = parse_retry_after(headers)
            if retry_after is None and window is not None and spent:
                retry_after = self._reset_in(window, now)  # the spent window says when
            pause = self._learner.refused(now, ticket.sent_at, retry_after, spent=spent)
            if pause is not None:  # the whole client's limit, shown: everyone waits
                self._paused_until = max(self._paused_until, now + pause)
                self._next_at = max(self._next_at, self._paused_until)
        if self._queued:  # a call less on every answer when nobody waits
            self._notify()

    def _narrower(self, now: float, window: RateWindow | None) -> bool:
        """Whether a 429 came from a limit narrower than the overall window (per model)."""
        if window is None:
            return self._room(now, excluding=1) > 0  # the overall window had room
        if window.remaining > 0:
            return True  # the 429 says so itself
        # A spent window of another size is another layer's; of the same size it is the
        # overall one, spent by others sharing the API key (a service's other processes).
        current = self._window
        return (
            current is not None
            and window.limit is not None
            and current.limit is not None
            and window.limit != current.limit
        )

    def _set_window(self, window: RateWindow, now: float, ticket: Ticket) -> None:
        current = self._window
        if current is not None and not ticket.probe:
            # Answers overtake each other on a pool of connections, and the server does not
            # handle requests in the order they were sent: until its reset, a window only
            # fills up, so an answer that shows more room describes an older state of it.
            current_reset = self._window_reset_at
            tolerance = max(0.05 * (current_reset - self._window_seen_at), 0.005)
            if (
                now < current_reset
                and now + self._reset_in(window, now) <= current_reset + tolerance
                and window.remaining > current.remaining
            ):
                return
        self._windows_seen += 1
        self._window = window
        self._window_seen_at = now
        self._window_reset_at = now + self._reset_in(window, now)
        self._probes = 0

    def _reset_in(self, window: RateWindow, now: float) -> float:
        """Seconds until the window resets; without a readable reset, the documented window.

        A sliding window that says it is spent frees its first slot when its oldest request
        leaves it: no later than our own oldest request of the last window (others sharing
        the API key may have sent older ones, which leave earlier).
        """
        if window.reset_in is not None:
            return window.reset_in
        length = DOCUMENTED_WINDOW / self.time_scale
        if window.remaining > 0:
            return length  # the count holds for a window at most
        sent = self._sent
        oldest = bisect.bisect_right(sent, now - length)
        if oldest == len(sent):
            return length
        return max(sent[oldest] + length - now, 0.0)
