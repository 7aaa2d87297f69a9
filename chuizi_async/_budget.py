"""One request budget per client, shared by submissions, status checks and every other call.

It paces requests from what the server says and does, never from an invented number:

* ``X-RateLimit-Remaining`` / ``-Reset``: spend what the window has left, counting requests
  still in flight, then wait for the reset and probe. The reset is read in every form
  gateways use (``parse_reset``: epoch seconds or milliseconds, seconds from now, a duration
  such as ``1m30s``, an HTTP date); absent or unreadable, it is the documented 60 s window;
* a 429 delays the request it refused (its ``Retry-After``, or backoff: the retry loop and
  the poller do that). One 429 is not proof that this client's rate is too high (a gateway,
  an upstream, another layer may refuse at random), so the whole client slows only on
  evidence: the window says it is spent, or the 429s come in a burst (far more of the last
  answers than strays would give). Then it pauses (``Retry-After``, or exponential backoff
  with full jitter) and cuts its rate to 70% (at the first, of the rate it was sending at
  over the server's window, whose length the ``Retry-After`` tells);
* any other 429 cuts the rate *on trial*: if the share of 429s among the answers to the
  next requests does not fall, the 429s are not ours to pace, the cut is undone, and only a
  share above that one cuts again;
* a kept rate, while it holds requests back, climbs back additively within four server
  windows (AIMD), so the client never stays slower than the server allows;
* a 429 while the overall window still has room is a narrower limit (per model): the scope
  learns how many requests its window holds, from our own history, and keeps under it (a
  429 showing the overall window spent is that window, spent by others sharing the key);
* ``max_requests_per_second``, when the user knows a cap up front, spaces requests evenly.

``saturated()`` (requests are scarce: the schedule spends few checks) is set only by a
limit the server has shown: a window, a scope, a pause, a rate confirmed by a burst or a
spent window, the user's cap; never by a cut on trial. Until the first answer arrives, one
request at a time: it tells whether the server sends a rate window at all, before a burst
could overrun one. Status checks have priority over submissions: a flood of submissions
never starves the checks of generations that are already running (and paid for).
"""

from __future__ import annotations

import bisect
import collections
import datetime
import email.utils
import enum
import itertools
import math
import random
import re
import time
from collections.abc import Mapping

import anyio
import attrs

from . import _clock
from ._retries import header, parse_retry_after, retry_delay

__all__ = [
    "DOCUMENTED_WINDOW",
    "MAX_RESET",
    "Priority",
    "RateWindow",
    "RequestBudget",
    "Ticket",
    "parse_rate_window",
    "parse_reset",
]

_MIN_RATE = 0.05
_DECREASE = 0.7  # the sawtooth of AIMD then averages ~85% of the limit (CUBIC's beta)
_RECOVERY_WINDOWS = 4
_SATURATION_MEMORY = 60.0
_SCOPE_MARGIN = 1.05
_HISTORY = 4096
_RESET_MARGIN = 0.005  # seconds after a window's reset before its probe goes
_RECENT_ANSWERS = 100  # the share of 429s is taken over this many answers
_BURST_ANSWERS = 12  # a burst: more 429s among this many answers than strays would give
_STRAY_PRIOR = 0.05  # the share of stray 429s assumed before any is seen (5%: the issue's)
_STRAY_MAX = 0.2  # a share of 429s above this is never taken for strays
_TRIAL_ANSWERS = 100  # answers after a cut on trial that judge it
# how improbable, by chance, what is seen must be: a burst, a share that fell after a cut,
# 429s more frequent than the strays seen so far
_BURST_LEVEL = 1e-4
_TRIAL_LEVEL = 0.01
_NEWS_LEVEL = 1e-3


class Priority(enum.IntEnum):
    """Who goes first when both are waiting: lower values."""

    POLL = 0
    OTHER = 1
    SUBMIT = 2


@attrs.frozen
class RateWindow:
    """What one answer's ``X-RateLimit-*`` headers say, ``reset_in`` in seconds from now.

    ``reset_in`` is None when the answer names no reset, or one that cannot be read: the
    budget then assumes the documented 60 s sliding window.
    """

    limit: int | None
    remaining: int
    reset_in: float | None


DOCUMENTED_WINDOW = 60.0
"""The provider's rate windows: 60 s, sliding. Assumed when an answer names no reset."""
MAX_RESET = 3600.0
"""A reset further away than this is read as this far (a misread must never stall a client)."""

_EPOCH_SECONDS = 1e9  # 2001-09-09: a larger number is a date, a smaller one seconds from now
_EPOCH_MILLISECONDS = 1e11  # 1973 in milliseconds, or the year 5138 in seconds
_EPOCH_MICROSECONDS = 1e14
_DURATION = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:h|ms|m|s|us|\u00b5s|ns)", re.ASCII)
_DURATION_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "\u00b5s": 1e-6}
_DURATION_UNITS["ns"] = 1e-9


def parse_reset(raw: str, *, wall_now: float | None = None) -> float | None:
    """Seconds from now until an ``X-RateLimit-Reset`` value, or None when it cannot be read.

    Gateways write it every way: epoch seconds (``1764250000``, ``1764250000.25``), epoch
    milliseconds (``1764250000250``), seconds from now (``30``, ``0.25``), a duration as
    OpenAI-compatible gateways send (``1m30s``, ``250ms``, ``6m0s``, ``1h``), or an HTTP
    date. A number is a date when it is large (epoch seconds are ~1.7e9, milliseconds
    ~1.7e12), seconds from now otherwise. A reset in the past is now (0); one further than
    ``MAX_RESET`` is ``MAX_RESET``.
    """
    text = raw.strip()
    if not text:
        return None
    now = time.time() if wall_now is None else wall_now
    seconds: float | None
    try:
        number = float(text)
    except ValueError:
        seconds = _duration(text)
        if seconds is None:
            seconds = _date(text, now)
    else:
        if number >= _EPOCH_MICROSECONDS:
            seconds = number / 1e6 - now
        elif number >= _EPOCH_MILLISECONDS:
            seconds = number / 1e3 - now
        elif number >= _EPOCH_SECONDS:
            seconds = number - now
        else:
            seconds = number
    # float() reads "nan", "inf" and "1e400" too: no reset
    if seconds is None or not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RESET)


def _duration(text: str) -> float | None:
    """Seconds of a Go-style duration (``1m30s``, ``250ms``, ``1.5s``), else None."""
    parts = _DURATION.findall(text)
    if not parts or "".join(parts) != text:
        return None
    total = 0.0
    for part in parts:
        number = part.rstrip("hmsuna\u00b5")
        total += float(number) * _DURATION_UNITS[part[len(number) :]]
    return total


def _date(text: str, now: float) -> float | None:
    """Seconds until an HTTP date (or an ISO 8601 one), else None."""
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        try:
            when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp() - now


def parse_rate_window(
    headers: Mapping[str, str], *, wall_now: float | None = None
) -> RateWindow | None:
    """The rate window of an answer, or None when it carries no usable ``X-RateLimit-*``."""
    remaining = _count(header(headers, "x-ratelimit-remaining"))
    if remaining is None:
        return None
    limit = _count(header(headers, "x-ratelimit-limit"))
    reset_raw = header(headers, "x-ratelimit-reset")
    reset_in = None if reset_raw is None else parse_reset(reset_raw, wall_now=wall_now)
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


def _chance(refused: range, answers: int, share: float) -> float:
    """The chance that the number of 429s among ``answers`` falls in ``refused``, if each
    answer is a 429 with probability ``share`` (binomial)."""
    return sum(
        math.comb(answers, k) * share**k * (1.0 - share) ** (answers - k)
        for k in refused
        if 0 <= k <= answers
    )


@attrs.define
class _Trial:
    """A cut of the rate on trial: the share of 429s must fall once it acts (``settled_at``)."""

    rate_before: float | None
    decreased_before: float
    share_before: float
    settled_at: float
    answers: int = 0
    refused: int = 0


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
    _window_reset_at: float = attrs.field(default=0.0, init=False)
    _probes: int = attrs.field(default=0, init=False)
    _answered: bool = attrs.field(default=False, init=False)
    _windows_seen: int = attrs.field(default=0, init=False)
    _limited_at: float = attrs.field(default=-math.inf, init=False)
    _scarce_at: float = attrs.field(default=-math.inf, init=False)
    _in_flight: int = attrs.field(default=0, init=False)
    _sent: collections.deque[float] = attrs.field(
        factory=lambda: collections.deque(maxlen=_HISTORY), init=False
    )
    _retry_after_seen: float | None = attrs.field(default=None, init=False)
    # whether 429s have shown to come from our rate (a burst, a spent window): only then
    # does waiting for the learned rate make requests scarce (``saturated``)
    _rate_confirmed: bool = attrs.field(default=False, init=False)
    _trial: _Trial | None = attrs.field(default=None, init=False)
    _background: float = attrs.field(default=0.0, init=False)  # the share of stray 429s
    # the answers and 429s of the cuts undone: the share of strays, at a rate that was lower
    _strays: list[int] = attrs.field(factory=lambda: [0, 0], init=False)
    _answers: collections.deque[bool] = attrs.field(
        factory=lambda: collections.deque(maxlen=_RECENT_ANSWERS), init=False
    )
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
        return _clock.now() - self._scarce_at < _SATURATION_MEMORY / self.time_scale

    @property
    def paused_until(self) -> float:
        """Until when (``time.monotonic()``) the whole client is paused by a 429."""
        return self._paused_until

    # -- admission ---------------------------------------------------------------------------

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
                    if self._limit_wait(now, scope) > 0:
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

    def _limit_wait(self, now: float, scope: str | None) -> float:
        """The wait a known limit imposes: a rate cut on trial, for strays maybe, is none."""
        if self._rate_confirmed or self.max_rate is not None:
            return self._wait_time(now, scope)
        wait = max(self._paused_until - now, self._window_wait(now))
        if scope is not None and scope in self._scopes:
            wait = max(wait, self._scopes[scope].wait_time(now))
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

    def _take(self, now: float, scope: str | None) -> Ticket:
        rate = self._effective_rate()
        if rate is not None:
            self._next_at = max(now, self._next_at) + 1.0 / rate
        window = self._window
        probe = window is not None and now >= self._window_reset_at
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
            self._record(ticket, refused=False)
            self._on_success(now)
        elif ticket.scope is not None and self._narrower(now, window):
            # The overall window had room: a narrower limit (per model) refused this one.
            self.rate_limited += 1
            retry_after = parse_retry_after(headers)
            if retry_after is None:
                retry_after = self._reset_in(window, now) if window is not None else 1.0
            self._scopes[ticket.scope].learn(now, retry_after)
        else:
            self.rate_limited += 1
            # what the window said before this answer: was it spent?
            if window is not None:
                spent = window.remaining == 0
            else:
                spent = self._window is not None and self._room(now, excluding=1) <= 0
            if window is not None:
                self._set_window(window, now, ticket)
            self._record(ticket, refused=True)
            retry_after = parse_retry_after(headers)
            if retry_after is None and window is not None and spent:
                retry_after = self._reset_in(window, now)  # the spent window says when
            self._on_429(now, ticket.sent_at, retry_after, spent=spent)
        self._notify()

    def _narrower(self, now: float, window: RateWindow | None) -> bool:
        """Whether a 429 came from a limit narrower than the overall window (per model)."""
        if window is None:
            return self._room(now, excluding=1) > 0  # the overall window had room
        if window.remaining > 0:
            return True  # the 429 says so itself
        # A spent window of another size is another layer's; of the same size it is the
        # overall one, spent by others sharing the key (a service's other processes).
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
        the key may have sent older ones, which leave earlier).
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

    def _record(self, ticket: Ticket, *, refused: bool) -> None:
        """Keep the share of 429s among recent answers, and feed a cut on trial."""
        self._answers.append(refused)
        trial = self._trial
        if trial is None or ticket.sent_at < trial.settled_at:
            return
        trial.answers += 1
        trial.refused += refused
        if trial.answers >= _TRIAL_ANSWERS:
            self._judge(trial)

    def _judge(self, trial: _Trial) -> None:
        """A cut on trial has its answers: did it lower the share of 429s?"""
        self._trial = None
        share = trial.refused / trial.answers
        expected = max(trial.share_before, _STRAY_PRIOR)
        lowered = _chance(range(trial.refused + 1), trial.answers, expected) < _TRIAL_LEVEL
        if lowered or share > _STRAY_MAX:
            # Lower: our rate caused them. Still high: more than strays, slow down further.
            # (A trial alone does not make requests scarce: at a low share, strays can
            # look the same, and the cut climbs back while it holds requests back.)
            return
        # As many 429s at the lower rate: they are not ours to pace (a gateway's, an
        # upstream's). Undo the cut; from now on only a share above this one is news.
        self._rate = trial.rate_before
        self._strays[0] += trial.answers
        self._strays[1] += trial.refused
        self._background = self._strays[1] / self._strays[0]  # over every undone cut

    def _on_success(self, now: float) -> None:
        self._consecutive_429 = 0
        # Climb only while the rate is what holds requests back: a client that sends less
        # than it may learns nothing about the limit by succeeding, and a rate grown far
        # past its use would take many 429s to come down (RFC 7661's lesson for TCP).
        if (
            self._rate is not None
            and self._trial is None
            and now - self._limited_at < self._recovery_time()
        ):
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

    def _on_429(
        self, now: float, sent_at: float, retry_after: float | None, *, spent: bool
    ) -> None:
        """A 429 of the whole client's limit, or a stray one: slow down only on evidence.

        The refused request waits for its own ``Retry-After`` (the retry loop, the poller).
        The whole client pauses and cuts its rate only when the window said it was spent, or
        the 429s come in a burst. A 429 above the share seen from strays cuts the rate on
        trial: if the share of 429s does not fall at the lower rate, the cut is undone.
        """
        self._consecutive_429 += 1
        if retry_after:
            self._retry_after_seen = retry_after
        if spent or self._burst():
            pause = retry_after
            if pause is None:
                pause = retry_delay(self._consecutive_429, base=1.0, cap=60.0, rng=self.rng)
                pause /= self.time_scale
            self._paused_until = max(self._paused_until, now + pause)
            self._next_at = max(self._next_at, self._paused_until)
            trial = self._trial
            if trial is not None:
                # the cut on trial was a probe, just under the rate sent at; the evidence
                # asks for the cut of the rate the server's window saw
                self._rate, self._last_decrease = trial.rate_before, trial.decreased_before
                self._trial = None
            self._rate_confirmed = True
            self._decrease(now, sent_at)
        elif self._trial is None and self._above_background():
            rate_before, decreased_before = self._rate, self._last_decrease
            if self._decrease(now, sent_at, trial=True):
                # below a limit, the 429s stop at once: the requests sent from now on judge
                # (over as many answers as a full record holds: a few answers, one of
                # them this 429, say little)
                share = sum(self._answers) / _RECENT_ANSWERS
                self._trial = _Trial(rate_before, decreased_before, share, now)

    def _decrease(self, now: float, sent_at: float, *, trial: bool = False) -> bool:
        """Cut the rate to 70% of what met the 429, unless a cut already answered it."""
        if sent_at < self._last_decrease:
            return False  # sent before the last decrease: that decrease already answered it
        # the rate that met the 429: the one allowed, or at the first what was sent (a cut
        # on trial: just under the rate sent at now, to tell whether the 429s follow it)
        current = self._rate
        if current is None:
            current = self._sent_rate(now, recent=trial)
        if current is None:
            return False
        self._rate_at_decrease = current
        self._rate = max(_MIN_RATE * self.time_scale, current * _DECREASE)
        self._last_decrease = now
        return True

    def _burst(self) -> bool:
        """Whether the last answers hold more 429s than strays would give, by far."""
        recent = list(itertools.islice(reversed(self._answers), _BURST_ANSWERS))
        refused, share = sum(recent), max(self._background, _STRAY_PRIOR)
        return _chance(range(refused, len(recent) + 1), len(recent), share) < _BURST_LEVEL

    def _above_background(self) -> bool:
        """Whether 429s are more frequent lately than the strays seen so far explain."""
        if self._background <= 0.0:
            return True
        refused, answers = sum(self._answers), len(self._answers)
        return _chance(range(refused, answers + 1), answers, self._background) < _NEWS_LEVEL

    def _sent_rate(self, now: float, *, recent: bool = False) -> float | None:
        """Requests sent per second over the server's last window: the rate that met a 429.

        ``recent``: over the part of that window in which requests were sent, the rate this
        client sends at now (what a window counts, at its start, is less).
        """
        window = self._server_window()
        count, first = 0, now
        for at in reversed(self._sent):
            if at <= now - window:
                break
            count += 1
            first = at
        if count <= 1:
            return None  # one request tells no rate
        span = window if not recent else max(now - first, window / 10)
        return count / min(span, window)
