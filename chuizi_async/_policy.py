"""When to check a pending generation: the user's ``PollPolicy`` and the schedule it drives.

The default policy never checks a generation more often, on average, than the provider's own
example (every 10 s): the first check waits for the model's typical processing time (learned
from this client's own completions, else the catalogue's prior), then checks come every
``interval`` seconds, growing by ``backoff`` up to ``max_interval``.
"""

from __future__ import annotations

import bisect
import collections
import math
import random
from collections.abc import Callable

import attrs

from ._catalogue import lookup_model
from ._exceptions import InvalidRequest

__all__ = ["PollPolicy", "Schedule"]

_DEFAULT_PRIOR = 60.0
_SAMPLES = 256
_ENOUGH = 5  # completions seen before they outweigh the catalogue's prior
_LATE_PRIOR = 1.3  # past the prior: where most generations are done


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
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
    if value is not None and not (
        isinstance(value, (int, float)) and math.isfinite(value) and value >= 0
    ):
        raise InvalidRequest(f"PollPolicy.{attribute.name} must be >= 0 seconds, not {value!r}")


@attrs.frozen
class PollPolicy:
    """How the client checks pending generations. Seconds throughout.

    :param first_poll_after: delay before the first check; None: the model's typical
        processing time (learned from this client's completions, else the catalogue's prior).
    :param interval: delay between checks after the first.
    :param max_interval: the longest delay ``backoff`` may grow to.
    :param backoff: factor applied to the delay after each check that finds "processing".
    :param jitter: each delay is multiplied by a uniform factor in ``[1 - jitter, 1 + jitter]``
        so that a batch submitted together does not poll in lockstep.
    :param max_in_flight: status requests in flight at once, over the whole client.
    :param max_requests_per_second: a cap on all requests of the client, when you know one.
    :param give_up_after: a generation still pending this long after submission resolves
        with ``GenerationTimeout``.
    :param time_scale: divides every delay the client chooses by itself (the delays above,
        the model priors, retry backoff, 429 pauses without ``Retry-After``); for simulators
        that compress time: ``FakeChuizi(speed=100)`` pairs with ``time_scale=100``.
    """

    first_poll_after: float | None = attrs.field(default=None, validator=_non_negative_optional)
    interval: float = attrs.field(default=10.0, validator=_positive)
    max_interval: float = attrs.field(default=30.0, validator=_positive)
    backoff: float = attrs.field(default=1.0, validator=_positive)
    jitter: float = 0.1
    max_in_flight: int = 16
    max_requests_per_second: float | None = attrs.field(default=None, validator=_optional_positive)
    give_up_after: float = attrs.field(default=3600.0, validator=_positive)
    time_scale: float = attrs.field(default=1.0, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.jitter < 1:
            raise InvalidRequest(f"PollPolicy.jitter must be in [0, 1), not {self.jitter!r}")
        if self.backoff < 1:
            raise InvalidRequest(f"PollPolicy.backoff must be >= 1, not {self.backoff!r}")
        if self.max_interval < self.interval:
            raise InvalidRequest(
                f"PollPolicy.max_interval ({self.max_interval}) is below interval ({self.interval})"
            )
        if not isinstance(self.max_in_flight, int) or self.max_in_flight < 1:
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

    def add(self, seconds: float) -> None:
        if len(self.recent) == self.recent.maxlen:
            old = self.recent[0]
            del self.ordered[bisect.bisect_left(self.ordered, old)]
        self.recent.append(seconds)
        bisect.insort(self.ordered, seconds)

    def quantile(self, q: float) -> float:
        return self.ordered[min(len(self.ordered) - 1, int(q * len(self.ordered)))]


def _never() -> bool:
    return False


@attrs.define(eq=False)
class Schedule:
    """Turns a policy and what this client has seen into delays between checks.

    When requests are scarce (the budget had to hold some back lately), a check that finds
    "processing" costs someone else's request: the schedule then aims late in the model's
    completion times (the 90th percentile seen, or past the prior) so that one check mostly
    suffices. Otherwise it aims early (the 5th percentile) for a short detection lag.
    """

    policy: PollPolicy
    rng: random.Random = attrs.field(factory=random.Random)
    saturated: Callable[[], bool] = _never
    _latencies: dict[str, _Latencies] = attrs.field(factory=dict, init=False)

    def learn(self, model: str | None, latency_seconds: float) -> None:
        """Record a completion's server processing time (``x_chuizi.latency_ms``)."""
        if model is not None and math.isfinite(latency_seconds) and latency_seconds >= 0:
            scaled = latency_seconds / self.policy.time_scale
            self._latencies.setdefault(model, _Latencies()).add(scaled)

    def _seen(self, model: str | None) -> _Latencies | None:
        seen = self._latencies.get(model) if model is not None else None
        return seen if seen is not None and len(seen.ordered) >= _ENOUGH else None

    def typical_latency(self, model: str | None, *, late: bool = False) -> float:
        """Where completions of this model begin (or, ``late``, where most are done)."""
        seen = self._seen(model)
        if seen is not None:
            return seen.quantile(0.9 if late else 0.05)
        info = lookup_model(model) if model is not None else None
        prior = info.typical_latency if info is not None else _DEFAULT_PRIOR
        return prior * (_LATE_PRIOR if late else 1.0) / self.policy.time_scale

    def first_delay(self, model: str | None) -> float:
        """Seconds from acceptance to the first check."""
        policy = self.policy
        if policy.first_poll_after is not None:
            return self._jittered(policy.first_poll_after / policy.time_scale)
        interval = policy.interval / policy.time_scale
        latency = self.typical_latency(model, late=self.saturated())
        return self._jittered(max(interval, latency))

    def next_delay(self, checks_done: int, model: str | None = None, age: float = 0.0) -> float:
        """Seconds until the next check, after ``checks_done`` checks found it pending."""
        policy = self.policy
        seen = self._seen(model)
        if seen is not None and policy.first_poll_after is None and self.saturated():
            later = [t for t in seen.ordered if t > age]
            if later:
                target = later[min(len(later) - 1, int(0.8 * len(later)))]
                floor = policy.interval / policy.time_scale / 4
                return self._jittered(max(target - age, floor))
        grown = policy.interval * policy.backoff ** max(0, min(checks_done - 1, 64))
        return self._jittered(min(grown, policy.max_interval) / policy.time_scale)

    def retry_delay(self, failures: int) -> float:
        """Seconds until a check that failed transiently is tried again (capped backoff)."""
        policy = self.policy
        base = min(policy.interval, 1.0 * policy.time_scale) / policy.time_scale
        cap = policy.max_interval / policy.time_scale
        return self.rng.uniform(0.5, 1.0) * min(cap, base * 2.0 ** min(failures, 16))

    def _jittered(self, seconds: float) -> float:
        jitter = self.policy.jitter
        if jitter <= 0:
            return seconds
        factor: float = self.rng.uniform(1 - jitter, 1 + jitter)
        return seconds * factor
