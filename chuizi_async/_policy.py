"""When to check a pending generation: the user's ``PollPolicy`` and the schedule it drives.

The default policy learns when each model's videos finish and concentrates the checks there,
never spending more of them, on average, than the provider's own example (every 10 s).
"""

from __future__ import annotations

import bisect
import collections
import math
import random
import warnings
from collections.abc import Callable

import attrs

from ._catalogue import lookup_model
from ._exceptions import InvalidRequest

__all__ = ["PollPolicy", "Schedule"]

_DEFAULT_PRIOR = 60.0
_SAMPLES = 256
_ENOUGH = 5  # completions seen before their spread is trusted
_LATE_PRIOR = 1.3  # past the prior: where most generations are done
_SCOUTS = 10  # generations per cold model checked early, for all the others
_SCOUT_START = (0.2, 0.35)  # scouts' first checks, as fractions of the prior
_DEFERRED_PRIOR = 3.0  # the others' first check at the latest, if no scout has finished
_STEP_FEW = 0.35  # grid step (of interval) while fewer than _ENOUGH completions are known
_STEP_MIN, _STEP_MAX = 0.3, 0.5  # bounds of the grid step, as fractions of interval
_TAIL = 2.0  # past this multiple of the longest time seen, back to every interval
_MIN_DONE = 0.02  # the smallest fraction done that the spread is extrapolated from
_MAX_SPREAD = 10.0  # nor beyond this multiple of where completions begin
_CHECK_SHARE = 0.06  # of the loop's checks, kept for scouting
_SCOUT_SHARE = 4  # scouts check often when this many generations wait for each
_SCOUT_PACE = 0.2  # their delay then grows with their age: 20% of it
_SCOUT_FLOOR = 0.2  # but never below this fraction of interval


def _is_number(value: object) -> bool:
    """A finite int or float (a bool is not a number of seconds)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (_is_number(value) and value > 0):
        raise InvalidRequest(
            f"PollPolicy.{attribute.name} must be a positive number, not {value!r}"
        )


def _optional_positive(
    instance: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None:
        _positive(instance, attribute, value)  # type: ignore[arg-type]


def _non_negative_optional(
    instance: object, attribute: attrs.Attribute[float | None], value: float | None
) -> None:
    if value is not None and not (_is_number(value) and value >= 0):
        raise InvalidRequest(f"PollPolicy.{attribute.name} must be >= 0 seconds, not {value!r}")


def _non_negative(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (_is_number(value) and value >= 0):
        raise InvalidRequest(f"PollPolicy.{attribute.name} must be >= 0 seconds, not {value!r}")


_MOVED = {  # settings of the whole client, no longer the poller's
    "max_requests_per_second": "Client(limits=Limits(max_requests_per_second=...))",
    "time_scale": "Client(time_scale=...)",
}


@attrs.frozen
class PollPolicy:
    """How the client checks pending generations. Seconds throughout.

    :param first_poll_after: delay before the first check; None: adaptive, from the times
        this client has seen videos of the model take (see ``Schedule``). Given, it disables
        the adaptive schedule: first check then, then every ``interval`` grown by ``backoff``.
    :param interval: delay between checks after the first.
    :param max_interval: the longest delay ``backoff`` may grow to.
    :param backoff: factor applied to the delay after each check that finds "processing".
    :param jitter: each delay is multiplied by a uniform factor in ``[1 - jitter, 1 + jitter]``
        so that a batch submitted together does not poll in lockstep.
    :param max_in_flight: status requests in flight at once, over the whole client.
    :param max_requests_per_second: deprecated, the whole client's cap: pass
        ``Client(limits=Limits(max_requests_per_second=...))``.
    :param give_up_after: a generation still pending this long after submission resolves
        with ``GenerationTimeout``.
    :param time_scale: deprecated, the client's clock: pass ``Client(time_scale=...)``.
    :param not_found_grace: a 404 for a generation this young (from its acceptance, or from
        ``track()``) means "not visible yet": a gateway may lag behind the id it just gave out.
        It is checked again; after this long a 404 is a ``NotFoundError``.

    Every delay here is divided by the client's ``time_scale`` (simulators compress time).
    """

    first_poll_after: float | None = attrs.field(default=None, validator=_non_negative_optional)
    interval: float = attrs.field(default=10.0, validator=_positive)
    max_interval: float = attrs.field(default=30.0, validator=_positive)
    backoff: float = attrs.field(default=1.0, validator=_positive)
    jitter: float = 0.1
    max_in_flight: int = 16
    max_requests_per_second: float | None = attrs.field(default=None, validator=_optional_positive)
    give_up_after: float = attrs.field(default=3600.0, validator=_positive)
    time_scale: float | None = attrs.field(default=None, validator=_optional_positive)
    not_found_grace: float = attrs.field(default=30.0, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        for name, replacement in _MOVED.items():
            if getattr(self, name) is not None:
                warnings.warn(
                    f"PollPolicy({name}=...) is deprecated: pass {replacement}",
                    DeprecationWarning,
                    stacklevel=3,
                )
        if not (_is_number(self.jitter) and 0 <= self.jitter < 1):
            raise InvalidRequest(f"PollPolicy.jitter must be in [0, 1), not {self.jitter!r}")
        if self.backoff < 1:
            raise InvalidRequest(f"PollPolicy.backoff must be >= 1, not {self.backoff!r}")
        if self.max_interval < self.interval:
            raise InvalidRequest(
                f"PollPolicy.max_interval ({self.max_interval}) is below interval ({self.interval})"
            )
        if (
            not isinstance(self.max_in_flight, int)
            or isinstance(self.max_in_flight, bool)
            or self.max_in_flight < 1
        ):
            raise InvalidRequest(
                f"PollPolicy.max_in_flight must be a positive integer, not {self.max_in_flight!r}"
            )

    @classmethod
    def every(cls, seconds: float, **kwargs: float | int | None) -> PollPolicy:
        """Check every ``seconds``, the first check after ``seconds`` too."""
        return cls(
            first_poll_after=seconds,
            interval=seconds,
            max_interval=max(seconds, float(kwargs.pop("max_interval", None) or seconds)),
            **kwargs,  # type: ignore[arg-type]
        )


@attrs.define
class _Latencies:
    """A bounded sample of one model's processing times, in policy seconds."""

    recent: collections.deque[float] = attrs.field(
        factory=lambda: collections.deque(maxlen=_SAMPLES)
    )
    ordered: list[float] = attrs.field(factory=list)
    total: float = 0.0  # of the samples kept: their mean without a pass over them

    def add(self, seconds: float) -> None:
        """Add one processing time; the oldest is forgotten past ``_SAMPLES``."""
        if len(self.recent) == self.recent.maxlen:
            old = self.recent[0]
            del self.ordered[bisect.bisect_left(self.ordered, old)]
            self.total -= old
        self.recent.append(seconds)
        bisect.insort(self.ordered, seconds)
        self.total += seconds

    @property
    def mean(self) -> float:
        return self.total / len(self.ordered)

    def quantile(self, q: float) -> float:
        return self.ordered[min(len(self.ordered) - 1, int(q * len(self.ordered)))]


def _never() -> bool:
    return False


@attrs.define
class _Model:
    """What the schedule knows of one model: its completion times, and its scouts."""

    seen: _Latencies = attrs.field(factory=_Latencies)
    accepted: int = 0
    completed: int = 0
    scouts: int = 0
    pulled_to: float = math.inf


@attrs.define(eq=False)
class Schedule:
    """Turns a policy and what this client has seen into delays between checks.

    With the default policy, for each model:

    * **cold** (no completion seen yet): the first few generations are scouts, checked from a
      quarter of the catalogue's prior on, every ``interval``; the others wait for them
      instead of guessing (and are checked at three times the prior at the latest);
    * **learned** (``x_chuizi.latency_ms`` of completions seen): every generation is checked
      on a grid from where completions begin, its step chosen from the spread seen so that a
      generation gets no more checks than the provider's 10 s loop would give it, with
      a detection lag of a fraction of it; past the longest time seen, every ``interval``;
    * **scarce requests** (the budget had to hold some back lately): a check that finds
      "processing" costs someone else's request, so the schedule aims late (the 90th
      percentile seen, or past the prior) and one check mostly suffices.

    ``first_poll_after`` given explicitly disables all of this: first check then, then every
    ``interval`` grown by ``backoff`` up to ``max_interval``.
    """

    policy: PollPolicy
    rng: random.Random = attrs.field(factory=random.Random)
    saturated: Callable[[], bool] = _never
    time_scale: float = attrs.field(default=1.0, kw_only=True)  # the client's clock
    _models: dict[str | None, _Model] = attrs.field(factory=dict, init=False)

    def _model(self, model: str | None) -> _Model:
        stats = self._models.get(model)
        if stats is None:
            stats = self._models[model] = _Model()
        return stats

    @property
    def _interval(self) -> float:
        return self.policy.interval / self.time_scale

    def _prior(self, model: str | None) -> float:
        info = lookup_model(model) if model is not None else None
        prior = info.typical_latency if info is not None else _DEFAULT_PRIOR
        return prior / self.time_scale

    # -- learning ----------------------------------------------------------------------------

    def learn(self, model: str | None, latency_seconds: float) -> float | None:
        """Record a completion's server processing time (``x_chuizi.latency_ms``).

        Returns the age at which the waiting generations of this model should now be
        checked, when that moved earlier (the first completion seen, say); else None.
        """
        if model is None or not math.isfinite(latency_seconds) or latency_seconds < 0:
            return None
        stats = self._model(model)
        stats.seen.add(latency_seconds / self.time_scale)
        stats.completed += 1
        if self.policy.first_poll_after is not None:
            return None  # the user's schedule, not a learned one: nothing is brought forward
        start, step = self._grid(stats)
        if start < stats.pulled_to - step / 2:
            stats.pulled_to = start
            return start
        return None

    def _grid(self, stats: _Model, age: float = 0.0) -> tuple[float, float]:
        """Where completions begin, and the step between checks from there (at ``age``)."""
        seen = stats.seen
        interval = self._interval
        if len(seen.ordered) < _ENOUGH:
            return seen.ordered[0], _STEP_FEW * interval
        start = seen.quantile(0.02)
        mean = seen.mean
        # The first completions are the short ones: while a batch is under way, the times seen
        # understate the spread. If a fraction f of the generations is done at ``age``, and
        # completions spread evenly from ``start``, they end near start + (age - start) / f.
        done = stats.completed / max(stats.accepted, 1)
        if age > start and done > 0:
            end = start + (age - start) / max(done, _MIN_DONE)
            mean = max(mean, (start + min(end, _MAX_SPREAD * max(start, interval))) / 2)
        # The 10 s loop spends about mean/interval + 0.5 checks on a generation; a grid of
        # this step, its first check somewhere in the first step, about
        # 1 + (mean - start) / step. Keep a share of the loop's for the scouts.
        loop_checks = mean / interval + 0.5
        budget = max(loop_checks * (1 - _CHECK_SHARE) - 1, 1.0)
        step = (mean - start) / budget
        return start, min(max(step, _STEP_MIN * interval), _STEP_MAX * interval)

    def typical_latency(self, model: str | None, *, late: bool = False) -> float:
        """Where completions of this model begin (or, ``late``, where most are done)."""
        stats = self._models.get(model)
        if stats is not None and len(stats.seen.ordered) >= _ENOUGH:
            return stats.seen.quantile(0.9 if late else 0.05)
        return self._prior(model) * (_LATE_PRIOR if late else 1.0)

    # -- planning ----------------------------------------------------------------------------

    def plan_first(self, model: str | None) -> tuple[float, bool]:
        """Seconds from acceptance to the first check, and whether it scouts for its model."""
        policy = self.policy
        if policy.first_poll_after is not None:
            return self._jittered(policy.first_poll_after / self.time_scale), False
        stats = self._model(model)
        stats.accepted += 1
        if self.saturated():
            late = self.typical_latency(model, late=True)
            return self._jittered(max(self._interval, late)), False
        if stats.seen.ordered:
            start, step = self._grid(stats)
            return max(0.0, start + self.rng.uniform(0.0, step)), False
        prior = self._prior(model)
        if stats.scouts < _SCOUTS:
            stats.scouts += 1
            return max(self._interval, prior * self.rng.uniform(*_SCOUT_START)), True
        return self._jittered(prior * _DEFERRED_PRIOR), False

    def stagger(self, model: str | None) -> float:
        """A random part of the grid step: spreads the checks that learning brings forward."""
        stats = self._models.get(model)
        if stats is None or not stats.seen.ordered:
            return 0.0
        return self.rng.uniform(0.0, self._grid(stats)[1] / 2)

    def scout_ended(self, model: str | None) -> bool:
        """A scout resolved; whether its model still needs one (nothing learned yet)."""
        stats = self._model(model)
        stats.scouts = max(0, stats.scouts - 1)
        if stats.seen.ordered or self.policy.first_poll_after is not None:
            return False
        stats.scouts += 1
        return True

    def next_delay(
        self,
        checks_done: int,
        model: str | None = None,
        age: float = 0.0,
        *,
        scouting_for: int = 0,
    ) -> float:
        """Seconds until the next check, after ``checks_done`` checks found it pending.

        ``scouting_for``: how many generations wait for this one, a scout, to learn from.
        Scouts of a large batch check often while young (their checks are shared by all);
        a lone one no more often than ``interval``.
        """
        policy = self.policy
        stats = self._models.get(model)
        seen = stats.seen if stats is not None else None
        if seen is not None and seen.ordered and policy.first_poll_after is None:
            if self.saturated() and len(seen.ordered) >= _ENOUGH:
                later = [t for t in seen.ordered if t > age]
                if later:
                    target = later[min(len(later) - 1, int(0.8 * len(later)))]
                    return self._jittered(max(target - age, self._interval / 4))
            elif age < _TAIL * seen.ordered[-1]:
                assert stats is not None
                return self._jittered(self._grid(stats, age)[1])
        cold = seen is None or not seen.ordered
        if scouting_for and cold and policy.first_poll_after is None:
            interval = self._interval
            if scouting_for >= _SCOUTS * _SCOUT_SHARE:
                pace = _SCOUT_PACE * age
                return self._jittered(min(max(pace, _SCOUT_FLOOR * interval), interval))
            until_prior = self._prior(model) - age
            if until_prior > interval:
                # too few wait to pay for early checks: back to the catalogue's guess
                return self._jittered(until_prior)
        grown = policy.interval * policy.backoff ** max(0, min(checks_done - 1, 64))
        return self._jittered(min(grown, policy.max_interval) / self.time_scale)

    def retry_delay(self, failures: int) -> float:
        """Seconds until a check that failed transiently is tried again (capped backoff)."""
        policy, scale = self.policy, self.time_scale
        base = min(policy.interval, 1.0 * scale) / scale
        cap = policy.max_interval / scale
        return self.rng.uniform(0.5, 1.0) * min(cap, base * 2.0 ** min(failures, 16))

    def _jittered(self, seconds: float) -> float:
        jitter = self.policy.jitter
        if jitter <= 0:
            return seconds
        factor: float = self.rng.uniform(1 - jitter, 1 + jitter)
        return seconds * factor
