"""One request budget per client, shared by submissions, status checks and every other call.

It paces requests from what the server says and does, never from an invented number:

* ``X-RateLimit-Remaining`` / ``-Reset`` (epoch seconds or seconds from now): spend what the
  window has left, counting requests still in flight, then wait for the reset and probe;
* a 429 cuts the whole client's rate to 70% (at the first, of the rate it was sending at over
  the server's window), then, while that rate holds requests back, climbs back additively
  within four such windows (AIMD, like botocore's adaptive retry mode; the window's length is
  the ``Retry-After`` seen), so the client never stays slower than the server allows. The
  first 429, and a second in a row, also pause the whole client (``Retry-After``, or
  exponential backoff with full jitter);
* a 429 while the overall window still has room is a narrower limit (per model): the scope
  learns how many requests its window holds, from our own history, and keeps under it;
* ``max_requests_per_second``, when the user knows a cap up front, spaces requests evenly.

Until the first answer arrives, one request at a time: it tells whether the server sends a
rate window at all, before a burst could overrun one. Status checks have priority over
submissions: a flood of submissions never starves the
checks of generations that are already running (and paid for).
"""

from __future__ import annotations

import collections
import enum
import math
import random
import time
from collections.abc import Mapping

import anyio
import attrs

from . import _clock
from ._retries import header, parse_retry_after, retry_delay

__all__ = ["Priority", "RateWindow", "RequestBudget", "Ticket", "parse_rate_window"]

_MIN_RATE = 0.05
_DECREASE = 0.7  # the sawtooth of AIMD then averages ~85% of the limit (CUBIC's beta)
_RECOVERY_WINDOWS = 4
_SATURATION_MEMORY = 60.0
_SCOPE_MARGIN = 1.05
_HISTORY = 4096
_RESET_MARGIN = 0.005  # seconds after a window's reset before its probe goes


class Priority(enum.IntEnum):
    """Who goes first when both are waiting: lower values."""

    POLL = 0
    OTHER = 1
    SUBMIT = 2


@attrs.frozen
class RateWindow:
    """What one answer's ``X-RateLimit-*`` headers say, ``reset_in`` in seconds from now."""

    limit: int | None
    remaining: int
    reset_in: float


def parse_rate_window(
    headers: Mapping[str, str], *, wall_now: float | None = None
) -> RateWindow | None:
    """The rate window of an answer, or None when it carries no usable ``X-RateLimit-*``."""
    remaining = _count(header(headers, "x-ratelimit-remaining"))
    if remaining is None:
        return None
    limit = _count(header(headers, "x-ratelimit-limit"))
    reset_raw = header(headers, "x-ratelimit-reset")
    reset_in = 0.0
    if reset_raw is not None:
        try:
            reset = float(reset_raw.rstrip("s"))
        except ValueError:
            reset = 0.0
        if not math.isfinite(reset):
            reset = 0.0
        # Epoch seconds are large; a delta is a window's length at most.
        if reset > 1e9:
            reset -= time.time() if wall_now is None else wall_now
        reset_in = max(0.0, min(reset, 3600.0))
    return RateWindow(limit=limit, remaining=remaining, reset_in=reset_in)


def _count(raw: str | None) -> int | None:
    """A non-negative request count from a header, or None when absent or not a number."""
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return max(0, int(value)) if math.isfinite(value) else None


@attrs.define
class _Scope:
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
        """A 429 from this scope: the window holds what it accepted lately, and is this long."""
        self.paused_until = max(self.paused_until, now + pause)
        horizon = max(self.window, pause, 1e-3) * 4
        recent = [t for t in self.accepted if t > now - horizon]
        if not recent:
            return
        # The oldest request in the server's window leaves it when the pause ends; the
        # margin covers how much later than its answer the server may have counted it.
        cap = len(recent) + self.in_flight - 1  # the refused one is still counted in flight
        self.cap = cap if self.cap is None else min(self.cap, cap)
        self.window = max(self.window, (now + pause - recent[0]) * _SCOPE_MARGIN)


@attrs.define(eq=False)
class Ticket:
    """One admitted request: when it was sent, in which scope, what the budget knew then."""

    sent_at: float
    scope: str | None
    probe: bool = False
    windows_seen: int = 0


@attrs.define(eq=False)
class RequestBudget:
    """Admission control for every request of one client. See the module docstring."""

    max_rate: float | None = None
    time_scale: float = 1.0
    rng: random.Random = attrs.field(factory=random.Random)
    # learned from 429s; None means "no limit seen yet"
    _rate: float | None = attrs.field(default=None, init=False)
    _last_decrease: float = attrs.field(default=-math.inf, init=False)
    _rate_at_decrease: float = attrs.field(default=0.0, init=False)
    _next_at: float = attrs.field(default=0.0, init=False)
    _paused_until: float = attrs.field(default=0.0, init=False)
    _consecutive_429: int = attrs.field(default=0, init=False)
    _window: RateWindow | None = attrs.field(default=None, init=False)
    _window_seen_at: float = attrs.field(default=0.0, init=False)
    _probes: int = attrs.field(default=0, init=False)
    _answered: bool = attrs.field(default=False, init=False)
    _windows_seen: int = attrs.field(default=0, init=False)
    _limited_at: float = attrs.field(default=-math.inf, init=False)
    _in_flight: int = attrs.field(default=0, init=False)
    _sent: collections.deque[float] = attrs.field(
        factory=lambda: collections.deque(maxlen=_HISTORY), init=False
    )
    _retry_after_seen: float | None = attrs.field(default=None, init=False)
    _scopes: dict[str, _Scope] = attrs.field(factory=dict, init=False)
    _waiting: collections.Counter[Priority] = attrs.field(factory=collections.Counter, init=False)
    _queued: int = attrs.field(default=0, init=False)  # the total of _waiting
    _changed: anyio.Event = attrs.field(factory=anyio.Event, init=False)
    rate_limited: int = attrs.field(default=0, init=False)
    """How many 429 answers this budget has seen."""

    @property
    def rate(self) -> float | None:
        """The learned admissible rate in requests per second, or None when none was learned."""
        return self._rate

    def new_event_loop(self) -> None:
        """Forget the waiters' event of a loop that ended; what was learned of the limits stays."""
        self._changed = anyio.Event()

    def saturated(self) -> bool:
        """Whether a request had to wait for a limit lately: requests are scarce, spend few."""
        return _clock.now() - self._limited_at < _SATURATION_MEMORY / self.time_scale

    @property
    def paused_until(self) -> float:
        """Until when (``time.monotonic()``) the whole client is paused by a 429."""
        return self._paused_until

    # -- admission ---------------------------------------------------------------------------

    def slot(self, priority: Priority = Priority.OTHER, scope: str | None = None) -> _Slot:
        """Hold a place for one request (``async with``); ``observe`` its answer inside."""
        return _Slot(self, priority, scope)

    def try_acquire(self, priority: Priority, scope: str | None = None) -> Ticket | None:
        """A place at once if nobody is queued and no limit says wait (no await), else None."""
        now = _clock.now()
        if self._queued or self._wait_time(now, scope) > 0:
            return None
        return self._take(now, scope)

    async def acquire(self, priority: Priority, scope: str | None = None) -> Ticket:
        """Wait for a place; every ticket is given back with ``release``."""
        self._waiting[priority] += 1
        self._queued += 1
        try:
            while True:
                now = _clock.now()
                wait = self._wait_time(now, scope)
                if wait <= 0 and not self._outranked(priority):
                    return self._take(now, scope)
                if wait > 0 and self._answered:
                    self._limited_at = now  # a limit held it back (not the first-answer gate)
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
        if ticket.scope is not None:
            self._scopes[ticket.scope].in_flight -= 1
        if ticket.probe and self._windows_seen == ticket.windows_seen:
            self._probes -= 1  # the probe taught nothing (no answer, no headers): next
        self._notify()

    def _outranked(self, priority: Priority) -> bool:
        return any(n > 0 for p, n in self._waiting.items() if p < priority)

    def _wait_time(self, now: float, scope: str | None) -> float:
        if not self._answered and self._in_flight:
            return math.inf  # the first answer tells whether the server sends a rate window
        wait = max(self._paused_until - now, self._next_at - now, self._window_wait(now))
        if scope is not None and scope in self._scopes:
            wait = max(wait, self._scopes[scope].wait_time(now))
        return wait

    def _window_wait(self, now: float) -> float:
        window = self._window
        if window is None:
            return 0.0
        reset_at = self._window_seen_at + window.reset_in
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
        if window is None or now >= self._window_seen_at + window.reset_in:
            return 0
        return window.remaining - (self._in_flight - excluding)

    def _take(self, now: float, scope: str | None) -> Ticket:
        rate = self._effective_rate()
        if rate is not None:
            self._next_at = max(now, self._next_at) + 1.0 / rate
        window = self._window
        probe = window is not None and now >= self._window_seen_at + window.reset_in
        self._probes += probe
        self._in_flight += 1
        self._sent.append(now)
        if scope is not None:
            scoped = self._scopes.get(scope)
            if scoped is None:
                scoped = self._scopes[scope] = _Scope()
            scoped.in_flight += 1
        return Ticket(now, scope, probe, self._windows_seen)

    def _effective_rate(self) -> float | None:
        rate, cap = self._rate, self.max_rate
        if rate is None or cap is None:
            return cap if rate is None else rate
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
            if ticket.scope is not None:
                # when we heard of it: the server counted it no later (its clock is ahead
                # of our send time by up to the time a burst takes to get through)
                self._scopes[ticket.scope].accepted.append(now)
            self._on_success(now)
        elif ticket.scope is not None and (
            (window is not None and window.remaining > 0) or self._room(now, excluding=1) > 0
        ):
            # The overall window had room: a narrower limit (per model) refused this one.
            self.rate_limited += 1
            retry_after = parse_retry_after(headers)
            if retry_after is None:
                retry_after = window.reset_in if window is not None else 1.0
            self._scopes[ticket.scope].learn(now, retry_after)
        else:
            self.rate_limited += 1
            if window is not None:
                self._set_window(window, now, ticket)
            self._pause_all(now, ticket.sent_at, parse_retry_after(headers))
        self._notify()

    def _set_window(self, window: RateWindow, now: float, ticket: Ticket) -> None:
        current = self._window
        if current is not None and not ticket.probe:
            # Answers overtake each other on a pool of connections, and the server does not
            # handle requests in the order they were sent: until its reset, a window only
            # fills up, so an answer that shows more room describes an older state of it.
            current_reset = self._window_seen_at + current.reset_in
            tolerance = max(0.05 * current.reset_in, 0.005)
            if (
                now < current_reset
                and now + window.reset_in <= current_reset + tolerance
                and window.remaining > current.remaining
            ):
                return
        self._windows_seen += 1
        self._window = window
        self._window_seen_at = now
        self._probes = 0

    def _on_success(self, now: float) -> None:
        self._consecutive_429 = 0
        # Climb only while the rate is what holds requests back: a client that sends less
        # than it may learns nothing about the limit by succeeding, and a rate grown far
        # past its use would take many 429s to come down (RFC 7661's lesson for TCP).
        if self._rate is not None and now - self._limited_at < self._recovery_time():
            # Additive increase: back to the rate that met the last 429 within
            # _RECOVERY_WINDOWS of the server's windows, then on upward at the same slope.
            climb = self._rate_at_decrease * (1.0 - _DECREASE)
            self._rate += climb / self._recovery_time() / self._rate

    def _server_window(self) -> float:
        """The time scale of the server's limiter: its ``Retry-After``, else a second."""
        if self._retry_after_seen is not None:
            return self._retry_after_seen
        return 1.0 / self.time_scale

    def _recovery_time(self) -> float:
        return _RECOVERY_WINDOWS * self._server_window()

    def _pause_all(self, now: float, sent_at: float, retry_after: float | None) -> None:
        self._consecutive_429 += 1
        if retry_after:
            self._retry_after_seen = retry_after
        # The first 429 (nothing learned yet), a rate window that says so, or a second 429
        # in a row pause the whole client; a later lone 429 is answered by the decrease
        # below (and its own request waits for Retry-After), which pausing would double.
        if self._rate is None or self._window is not None or self._consecutive_429 > 1:
            pause = retry_after
            if pause is None:
                pause = retry_delay(self._consecutive_429, base=1.0, cap=60.0, rng=self.rng)
                pause /= self.time_scale
            self._paused_until = max(self._paused_until, now + pause)
            self._next_at = max(self._next_at, self._paused_until)
        if sent_at < self._last_decrease:
            return  # sent before the last decrease: that decrease already answered it
        # the rate that met the 429: the one allowed, or at the first what was sent
        current = self._rate if self._rate is not None else self._sent_rate(now)
        if current is not None:
            self._rate_at_decrease = current
            self._rate = max(_MIN_RATE * self.time_scale, current * _DECREASE)
            self._last_decrease = now

    def _sent_rate(self, now: float) -> float | None:
        """Requests sent per second over the server's last window: the rate that met a 429."""
        window = self._server_window()
        count = 0
        for at in reversed(self._sent):
            if at <= now - window:
                break
            count += 1
        return count / window if count > 1 else None  # one request tells no rate


class _Slot:
    """``async with budget.slot(...) as ticket``: ``acquire``, then ``release`` on the way out."""

    __slots__ = ("_budget", "_priority", "_scope", "_ticket")

    def __init__(self, budget: RequestBudget, priority: Priority, scope: str | None) -> None:
        self._budget = budget
        self._priority = priority
        self._scope = scope

    async def __aenter__(self) -> Ticket:
        ticket = self._budget.try_acquire(self._priority, self._scope)
        if ticket is None:
            ticket = await self._budget.acquire(self._priority, self._scope)
        self._ticket = ticket
        return ticket

    async def __aexit__(self, *exc_info: object) -> None:
        self._budget.release(self._ticket)
