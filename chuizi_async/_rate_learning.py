"""The rate one client may send at, learned from the 429s among its answers (AIMD).

One 429 is not proof that this client's rate is too high (a gateway, an upstream, another
layer may refuse at random), so the whole client slows only on evidence: the window says it
is spent, or the 429s come in a burst (far more of the last answers than strays would give).
Then it pauses and cuts its rate to 70% (at the first, of the rate it was sending at over the
server's window: as long as a ``Retry-After`` says, else the documented minute). The pause is
the ``Retry-After``; without one, until the window can have room again (the oldest request it
accepted within the window's length leaves it, as a sliding window forgets it and no later than
a fixed one turns); with no accepted request to go by, exponential backoff with full jitter. A
jittered second would resume a client into a window that is still spent, and a per-minute
limit would refuse every request of the next burst too. Any other 429 cuts the rate *on
trial*: if the share of 429s among the answers to the next requests does not fall, the 429s
are not ours to pace, the cut is undone, and only a share above that one cuts again. A kept
rate, while it holds requests back, climbs back additively within four server windows, so the
client never stays slower than the server allows. The request budget (``_budget``) admits
requests at the rate learned here.
"""

from __future__ import annotations

import collections
import itertools
import math
import random

import attrs

from ._rate_headers import DOCUMENTED_WINDOW
from ._retries import retry_delay

__all__ = ["RateLearner"]

_MIN_RATE = 0.05
_DECREASE = 0.7  # the sawtooth of AIMD then averages ~85% of the limit (CUBIC's beta)
_RECOVERY_WINDOWS = 4
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
_MIN_SPAN = 0.1  # the shortest time a rate is measured over: two requests tell no rate
_ACCEPTED_HISTORY = 4096  # more accepted in one window: the pause ends a little late, no harm


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
class RateLearner:
    """The learned admissible rate of one client. See the module docstring.

    ``sent``: the send times of the client's last requests (the budget's own record).
    """

    sent: collections.deque[float]
    time_scale: float = 1.0
    rng: random.Random = attrs.field(factory=random.Random)
    rate: float | None = attrs.field(default=None, init=False)
    """Requests per second the learned limit admits; None while no limit was learned."""
    confirmed: bool = attrs.field(default=False, init=False)
    """Whether 429s have shown to come from our rate (a burst, a spent window): only then
    does waiting for the learned rate make requests scarce."""
    _last_decrease: float = attrs.field(default=-math.inf, init=False)
    _rate_at_decrease: float = attrs.field(default=0.0, init=False)
    _consecutive_429: int = attrs.field(default=0, init=False)
    _limited_at: float = attrs.field(default=-math.inf, init=False)
    _retry_after_seen: float | None = attrs.field(default=None, init=False)
    _trial: _Trial | None = attrs.field(default=None, init=False)
    _background: float = attrs.field(default=0.0, init=False)  # the share of stray 429s
    # the answers and 429s of the cuts undone: the share of strays, at a rate that was lower
    _strays: list[int] = attrs.field(factory=lambda: [0, 0], init=False)
    _answers: collections.deque[bool] = attrs.field(
        factory=lambda: collections.deque(maxlen=_RECENT_ANSWERS), init=False
    )
    # when the last requests the server accepted were answered: it counted each no later
    _accepted: collections.deque[float] = attrs.field(
        factory=lambda: collections.deque(maxlen=_ACCEPTED_HISTORY), init=False
    )

    def held_back(self, now: float) -> None:
        """A limit held a request back: the rate, if learned, may climb while that lasts."""
        self._limited_at = now

    def answered(self, now: float, sent_at: float) -> None:
        """A request sent at ``sent_at`` was answered, not with a 429."""
        self._answers.append(False)
        if (trial := self._trial) is not None:  # a call less on every answer without one
            self._on_trial(trial, sent_at, False)
        self._accepted.append(now)
        self._consecutive_429 = 0
        # Climb only while the rate is what holds requests back: a client that sends less
        # than it may learns nothing about the limit by succeeding, and a rate grown far
        # past its use would take many 429s to come down (RFC 7661's lesson for TCP).
        if (
            self.rate is not None
            and self._trial is None
            and now - self._limited_at < self._recovery_time()
        ):
            # Additive increase: back to the rate that met the last 429 within
            # _RECOVERY_WINDOWS of the server's windows, then on upward at the same slope.
            climb = self._rate_at_decrease * (1.0 - _DECREASE)
            self.rate += climb / self._recovery_time() / self.rate

    def refused(
        self, now: float, sent_at: float, retry_after: float | None, *, spent: bool
    ) -> float | None:
        """A 429 of the whole client's limit, or a stray one: slow down only on evidence.

        Returns the seconds the whole client must pause, or None. The refused request
        waits for its own ``Retry-After`` (the retry loop, the poller). The whole client
        pauses and cuts its rate only when the window said it was spent (``spent``), or the
        429s come in a burst. A 429 above the share seen from strays cuts the rate on trial:
        if the share of 429s does not fall at the lower rate, the cut is undone.
        """
        self._answers.append(True)
        if (trial := self._trial) is not None:
            self._on_trial(trial, sent_at, True)
        self._consecutive_429 += 1
        if retry_after:
            self._retry_after_seen = retry_after
        if spent or self._burst():
            pause = retry_after
            if pause is None:
                pause = self._until_room(now)
            if pause is None:
                pause = retry_delay(self._consecutive_429, base=1.0, cap=60.0, rng=self.rng)
                pause /= self.time_scale
            trial = self._trial
            if trial is not None:
                # the cut on trial was a probe, just under the rate sent at; the evidence
                # asks for the cut of the rate the server's window saw
                self.rate, self._last_decrease = trial.rate_before, trial.decreased_before
                self._trial = None
            self.confirmed = True
            self._decrease(now, sent_at)
            return pause
        if self._trial is None and self._above_background():
            rate_before, decreased_before = self.rate, self._last_decrease
            if self._decrease(now, sent_at, trial=True):
                # below a limit, the 429s stop at once: the requests sent from now on judge
                # (over as many answers as a full record holds: a few answers, one of
                # them this 429, say little)
                share = sum(self._answers) / _RECENT_ANSWERS
                self._trial = _Trial(rate_before, decreased_before, share, now)
        return None

    def _on_trial(self, trial: _Trial, sent_at: float, refused: bool) -> None:
        """Feed an answer to the cut on ``trial`` (``_answers`` keeps the share of 429s)."""
        if sent_at < trial.settled_at:
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
        self.rate = trial.rate_before
        self._strays[0] += trial.answers
        self._strays[1] += trial.refused
        self._background = self._strays[1] / self._strays[0]  # over every undone cut

    def _server_window(self) -> float:
        """The length of the server's window: its ``Retry-After``, else the documented minute."""
        if self._retry_after_seen is not None:
            return self._retry_after_seen
        return DOCUMENTED_WINDOW / self.time_scale

    def _until_room(self, now: float) -> float | None:
        """Seconds until the oldest request accepted within the server's window leaves it;
        None when none was (the 429s are someone else's use of the key: nothing to go by)."""
        oldest = now - self._server_window()
        for answered_at in self._accepted:
            if answered_at > oldest:
                return answered_at - oldest
        return None

    def _recovery_time(self) -> float:
        return _RECOVERY_WINDOWS * self._server_window()

    def _decrease(self, now: float, sent_at: float, *, trial: bool = False) -> bool:
        """Cut the rate to 70% of what met the 429, unless a cut already answered it."""
        if sent_at < self._last_decrease:
            return False  # sent before the last decrease: that decrease already answered it
        # the rate that met the 429: the one allowed, or at the first what was sent (a cut
        # on trial: just under the rate sent at now, to tell whether the 429s follow it)
        current = self.rate
        if current is None:
            current = self._sent_rate(now, recent=trial)
        if current is None:
            return False
        self._rate_at_decrease = current
        self.rate = max(_MIN_RATE * self.time_scale, current * _DECREASE)
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
        for at in reversed(self.sent):
            if at <= now - window:
                break
            count += 1
            first = at
        if count <= 1:
            return None  # one request tells no rate
        span = window if not recent else max(now - first, _MIN_SPAN / self.time_scale)
        return count / min(span, window)
